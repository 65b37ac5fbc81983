"""`rtu-control warmup` compiles every agent configuration; each exercise leaves a usable agent."""
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from controller.warmup import warm_up_agents
from launch.cli import main
from tests import background

ROOT = Path(__file__).resolve().parents[2]


def test_warm_up_agents_covers_each_cell_dtype_and_action_kind():
    """The configurations it reports are the ones promised (each cell and action kind, and the
    critic-thread agent for one cell), its total covers their times, and afterwards numba's cache holds
    the agent's kernels for every calling order it exercised."""
    import re

    from controller.warmup import kernels_cached

    lines = []
    count, seconds = warm_up_agents(dtypes=("float32",), cells=("rtu-linear", "none"), echo=lines.append)
    timed = [re.fullmatch(r"  (agent .+?) +(\d+\.\d) s", line) for line in lines]
    assert all(timed), lines
    assert [m.group(1) for m in timed] == [
        "agent rtu-linear float32 Box", "agent rtu-linear float32 Box critic_thread",
        "agent rtu-linear float32 Discrete", "agent rtu-linear float32 Discrete critic_thread",
        "agent none float32 Box", "agent none float32 Discrete"]
    assert count == len(timed) == 6
    assert seconds >= sum(float(m.group(2)) for m in timed) - 0.05 * count   # lines are rounded to 0.1 s
    for discrete in (False, True):
        for protocol in ("gymnasium", "loop", "critic_thread"):
            assert kernels_cached("float32", discrete, protocol) is True, (discrete, protocol)


def test_warmup_command(capsys):
    assert main(["warmup"]) == 0
    out = capsys.readouterr().out
    assert "cell configurations" in out and "20 agent configurations" in out


def test_kernels_cached_is_false_on_an_empty_numba_cache(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "empty"),
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    script = ("from controller.warmup import kernels_cached\n"
              "print(kernels_cached('float32', False, 'loop'), kernels_cached('float64', True, 'gymnasium'))")
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]


LEARNED_BOX_AGENT = (
    "import numpy as np, gymnasium as gym\n"
    "from controller.agent import Agent, AgentConfig\n"
    "from controller.warmup import kernels_cached\n"
    "agent = Agent(gym.spaces.Box(-np.inf, np.inf, (3,), np.float64), gym.spaces.Box(-1, 1, (2,)),\n"
    "              AgentConfig(n_units=2, encoder_width=2, head_width=2))\n"
    "agent.act(np.ones(3))\n"
    "agent.learn(0.0, np.ones(3), False, False)\n"
    "print(kernels_cached('float32', False, 'gymnasium'), kernels_cached('float32', True, 'gymnasium'),\n"
    "      kernels_cached('float32', False, 'critic_thread'))")


def _learned_box_agent_in_an_empty_cache():
    """LEARNED_BOX_AGENT's output in a fresh process with an empty NUMBA_CACHE_DIR (a cold compile)."""
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, NUMBA_CACHE_DIR=str(Path(tmp) / "cache"),
                   PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        done = subprocess.run([sys.executable, "-c", LEARNED_BOX_AGENT], cwd=tmp, env=env, capture_output=True,
                              text=True, timeout=1200)
        assert done.returncode == 0, done.stderr
        return done.stdout.split()


BOX_AGENT_RUN = background.Job("a Box agent in an empty cache", _learned_box_agent_in_an_empty_cache)


def start_background(items):
    background.submit_if_selected(
        items, "test_kernels_cached_tells_the_head_and_the_threading_of_credit_and_apply_apart", BOX_AGENT_RUN)


def test_kernels_cached_tells_the_head_and_the_threading_of_credit_and_apply_apart():
    """credit_and_apply is one kernel with a specialisation per head kind and threading: after a Box
    agent learned in gymnasium order (own empty cache), that order is cached for Box actions only."""
    assert BOX_AGENT_RUN.wait() == ["True", "False", "False"]


def test_kernels_cached_is_true_once_a_configuration_was_compiled():
    import numpy as np
    from gymnasium import spaces

    from controller.agent import AgentConfig
    from controller.warmup import kernels_cached, warm_up_for_loop

    obs = spaces.Box(-np.inf, np.inf, (3,), np.float64)
    act = spaces.Box(-1.0, 1.0, (2,), np.float32)
    warm_up_for_loop(AgentConfig(n_units=4, encoder_width=4, head_width=4), obs, act)
    assert kernels_cached("float32", False, "loop") is True


def test_warmup_prints_one_line_per_configuration_with_its_time(capsys):
    import re

    assert main(["warmup"]) == 0
    out = capsys.readouterr().out
    timed = [line for line in out.splitlines() if re.search(r"\b\d+\.\d s\b", line)]
    assert sum(line.lstrip().startswith("cell ") for line in timed) == 14
    assert sum(line.lstrip().startswith("agent ") for line in timed) == 20
    assert "numba" in out.splitlines()[0]


def _compiled_signatures():
    """Number of compiled signatures of every numba dispatcher in controller.kernels."""
    import importlib
    import pkgutil

    from numba.core.registry import CPUDispatcher

    import controller.kernels as package

    count = 0
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"controller.kernels.{info.name}")
        count += sum(len(obj.overloads) for obj in vars(module).values() if isinstance(obj, CPUDispatcher))
    return count


def test_after_warm_up_the_learner_options_compile_nothing():
    """An agent with λ per group, the input skip, other RTU ranges and widths runs only code the warm-up
    compiled (the real-time loop must never compile), in both call orders and with the critic thread."""
    import gymnasium as gym
    import numpy as np

    from controller.agent import Agent, AgentConfig
    from controller.warmup import _exercise_agent

    warm_up_agents(dtypes=("float32",), cells=("rtu-linear",))
    before = _compiled_signatures()
    cfg = AgentConfig(lam_policy_dense=0.5, lam_policy_cell=0.99, lam_value_dense=0.7, lam_value_cell=0.95,
                      input_skip=True, rtu_r_min=0.5, rtu_r_max=0.9, rtu_max_phase=1.0, n_units=4,
                      encoder_width=3, head_width=5)
    obs_space = gym.spaces.Box(-np.inf, np.inf, (3,), np.float64)
    for space in (gym.spaces.Box(-1.0, 1.0, (2,), np.float32), gym.spaces.Discrete(2)):
        for thread in (False, True):
            agent = Agent(obs_space, space, cfg, seed=1, critic_thread=thread)
            _exercise_agent(agent, np.random.default_rng(1))
            agent.close()
    assert _compiled_signatures() == before

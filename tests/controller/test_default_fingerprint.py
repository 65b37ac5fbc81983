"""The agent's default learning, pinned bit for bit: a hash of every action, episode return, parameter and
eligibility trace after a few hundred steps on two tiny seeded tasks (paper-size networks), compared with
the hashes recorded in ``default_fingerprint.json``.

A change that alters what the agent does with its default options (or with the options a running study
uses: λ 0.99, κ 3 / 2, per-group ObGD) fails here, even when it only changes the rounding. If the change
is meant, say so in its commit and re-record: ``python -m tests.controller.test_default_fingerprint``.

The hashes depend on the machine code numba generates, hence on the CPU (its vector width) and on the
numba/LLVM version: they are recorded per host CPU name, and a CPU without a record skips with the
command that records one. They also depend on whether a process compiled its kernels or loaded them from
numba's cache: float64 agents round some reductions (LayerNorm's backward) differently in the two cases
(the float32 cases here agree), presumably because a callee compiled on its own and its copy inside a
cached caller are optimised separately. So each case records both variants, and the cases run in one
fresh process with a cache directory of their own (``CACHE``): the first run after a source change
compiles everything (minutes), later runs load it, and no other process mixes the two. That process
starts as soon as the session's tests are collected (``tests/background.py``), on the second core.
"""
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import gymnasium as gym
import numba
import numpy as np
import pytest
from llvmlite import binding as llvm

from controller.agent import Agent, AgentConfig
from tests import background

RECORD = Path(__file__).with_name("default_fingerprint.json")
ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(tempfile.gettempdir()) / ("rtu-control-fingerprint-" + hashlib.sha1(str(ROOT).encode()).hexdigest()[:12])
STEPS = 300


class Reach:
    """Box task: a 2-D point x' = 0.9 x + 0.2 a + noise, reward −||x − target||², 40-step episodes
    (truncated), terminated when ||x|| > 3. Observation [x, target, noise] (5,)."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (5,), np.float64)
    action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)

    def reset(self):
        self.t = 0
        self.x = self.rng.uniform(-1.0, 1.0, 2)
        self.target = self.rng.uniform(-1.0, 1.0, 2)
        return self._obs()

    def _obs(self):
        return np.concatenate([self.x, self.target, self.rng.standard_normal(1)])

    def step(self, action):
        self.t += 1
        self.x = 0.9 * self.x + 0.2 * np.asarray(action, np.float64) + 0.05 * self.rng.standard_normal(2)
        reward = -float(np.sum((self.x - self.target) ** 2))
        return self._obs(), reward, bool(np.linalg.norm(self.x) > 3.0), self.t >= 40


class Chain:
    """Discrete task: position on 0..6, actions left / stay / right (moves fail with probability 0.2),
    reward 1 and termination at 6, −0.01 per step otherwise, 30-step episodes. Observation: the one-hot
    position with its first two entries hidden (zeroed), plus noise (7,)."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (7,), np.float64)
    action_space = gym.spaces.Discrete(3)

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)

    def reset(self):
        self.t, self.pos = 0, 0
        return self._obs()

    def _obs(self):
        obs = np.zeros(7)
        obs[self.pos] = 1.0
        obs[:2] = 0.0
        obs[6] = 0.1 * self.rng.standard_normal()
        return obs

    def step(self, action):
        self.t += 1
        if self.rng.random() >= 0.2:
            self.pos = min(max(self.pos + int(action) - 1, 0), 6)
        done = self.pos == 6
        return self._obs(), (1.0 if done else -0.01), done, self.t >= 30


def _cases():
    """name -> (task class, AgentConfig fields, critic_thread, loop order)."""
    cases = {}
    for dtype in ("float32", "float64"):
        for cell in ("rtu-linear", "rtu-nonlinear", "lru", "none"):
            for task in (Reach, Chain):
                cases[f"{task.__name__}-{cell}-{dtype}"] = (task, dict(cell=cell, dtype=dtype), False, False)
        cases[f"Reach-rtu-linear-{dtype}-critic_thread"] = (Reach, dict(dtype=dtype), True, False)
        cases[f"Reach-rtu-linear-{dtype}-loop_order"] = (Reach, dict(dtype=dtype), False, True)
        study = dict(dtype=dtype, lam=0.99, kappa_policy=3.0, kappa_value=2.0, obgd_scope="group")
        cases[f"Reach-rtu-linear-{dtype}-study"] = (Reach, study, False, False)
        cases[f"Chain-rtu-nonlinear-{dtype}-study"] = (Chain, {**study, "cell": "rtu-nonlinear"}, False, False)
    return cases


def _digest(arrays):
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:24]


def run_case(task, fields, critic_thread, loop_order, steps=STEPS):
    """Drive one agent for ``steps`` ticks; returns {component: hash}."""
    env = task(seed=3)
    agent = Agent(task.observation_space, task.action_space, AgentConfig(**fields), seed=5,
                  critic_thread=critic_thread)
    actions, returns, ret = [], [], 0.0
    obs = env.reset()
    for t in range(steps):
        action = agent.act(obs)
        actions.append(np.array(action, np.float64).reshape(-1).copy())
        obs, reward, terminated, truncated = env.step(action)
        ret += reward
        if loop_order:
            if t % 7 == 6:
                agent.skip(reward, obs, terminated, truncated)
            else:
                agent.update(reward, obs, terminated, truncated)
            agent.credit(action)   # the tick's action (stands in for the one of the next act)
        else:
            agent.learn(reward, obs, terminated, truncated)
        if terminated or truncated:
            returns.append(ret)
            ret = 0.0
            obs = env.reset()
            agent.reset()
    agent.sync()
    groups = [g for net in (agent.actor, agent.critic) for g in net.parameter_groups()]
    out = {"actions": _digest(actions), "returns": _digest([np.array(returns)]),
           "parameters": _digest([p for p, _, _ in groups]), "traces": _digest([z for _, _, z in groups]),
           "stats": _digest([np.array([agent.stats[k] for k in sorted(agent.stats)], np.float64)])}
    agent.close()
    return out


def host():
    return llvm.get_host_cpu_name()


def run_all_in_subprocess(cache_dir):
    """Every case in one fresh process whose numba cache is cache_dir; returns {name: {component: hash}}."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir),
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "fingerprints.json"
        done = subprocess.run([sys.executable, "-m", "tests.controller.test_default_fingerprint", "--run", str(out)],
                              cwd=ROOT, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"the fingerprint process failed:\n{done.stderr[-4000:]}")
        return json.loads(out.read_text())


CASES = _cases()


def recorded_for_host():
    """This CPU's record ({"numba", "cases"}), or None."""
    return json.loads(RECORD.read_text()).get(host()) if RECORD.is_file() else None


FINGERPRINTS = background.Job("fingerprints", lambda: run_all_in_subprocess(CACHE))


def start_background(items):
    """Called by tests/conftest.py with this module's selected tests: starts the fingerprint process if
    one of them needs it and the CPU has a record."""
    if any("fingerprints" in item.fixturenames for item in items) and recorded_for_host() is not None:
        background.submit(FINGERPRINTS)


@pytest.fixture(scope="module")
def record():
    recorded = recorded_for_host()
    if recorded is None:
        pytest.skip(f"no fingerprint recorded for CPU {host()!r}: python -m tests.controller.test_default_fingerprint")
    return recorded


@pytest.fixture(scope="module")
def fingerprints(record):
    return FINGERPRINTS.wait()


@pytest.mark.parametrize("name", list(CASES))
def test_default_learning_is_bit_identical_to_the_record(name, record, fingerprints):
    got = fingerprints[name]
    variants = record["cases"][name]
    assert got in variants, (f"{name}: {[sorted(k for k in v if got[k] != v[k]) for v in variants]} differ from "
                             f"the recorded variants (numba {numba.__version__}, recorded with {record['numba']});"
                             f" a change of the default results must be deliberate")


def test_a_changed_step_changes_the_fingerprint():
    """The hashes see a difference in the last bit of the step size."""
    a = run_case(Reach, dict(cell="none", dtype="float64"), False, False, steps=20)
    b = run_case(Reach, dict(cell="none", dtype="float64", alpha=1.0 + 2.0 ** -52), False, False, steps=20)
    assert a["parameters"] != b["parameters"]


def _record():
    """Run every case compiled (an empty cache directory) and then loaded from that cache; record the
    distinct results of each case for this CPU."""
    with tempfile.TemporaryDirectory() as cache:
        runs = [run_all_in_subprocess(cache), run_all_in_subprocess(cache)]
    data = json.loads(RECORD.read_text()) if RECORD.is_file() else {}
    cases = {}
    for name in CASES:
        variants = []
        for run in runs:
            if run[name] not in variants:
                variants.append(run[name])
        cases[name] = variants
    data[host()] = {"numba": numba.__version__, "cases": cases}
    RECORD.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    two = sum(len(v) > 1 for v in cases.values())
    print(f"recorded {len(CASES)} cases for {host()} in {RECORD} ({two} with a compiled and a cached variant)",
          file=sys.stderr)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--run"]:
        Path(sys.argv[2]).write_text(json.dumps({name: run_case(*case) for name, case in CASES.items()}))
    else:
        _record()

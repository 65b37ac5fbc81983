"""Compile every cell kernel before a run (design.md §6 item 6: numba's cache is per machine).

``warm_up_cells()`` builds tiny cells of every variant, activation and dtype and calls each of their
methods once, so that the first real tick finds the machine code ready (from numba's on-disk cache
after the first run on this machine). Returns the number of cell configurations compiled.
``warm_up_agents()`` does the same for the agent's fused kernels. ``warm_up_for_loop(config, spaces)``
compiles what controller.loop can call on one agent configuration (``exercise_loop_protocol``) on a
tiny twin, leaving the agent that will be deployed untouched.
"""
import time

import numpy as np

from controller.cells import LRUCell, RTUCell
from controller.kernels.layout import ACTIVATIONS, VARIANTS


# the agent's entry kernels (controller.kernels.agent_step) per action kind and calling order; the
# kernels they call are compiled into them, so these stand for the whole configuration
_SHARED = ("critic_observe", "net_forward_backward", "net_accumulate")
_BY_ACTION = {False: ("act_gaussian",), True: ("act_categorical",)}
_BY_PROTOCOL = {
    ("loop", False): ("actor_credit_gaussian", "agent_apply", "observe", "net_forward"),
    ("loop", True): ("actor_credit_categorical", "agent_apply", "observe", "net_forward"),
    ("gymnasium", False): ("credit_and_apply",),
    ("gymnasium", True): ("credit_and_apply",),
    ("critic_thread", False): ("credit_and_apply",),
    ("critic_thread", True): ("credit_and_apply",),
}
# what tells credit_and_apply's specialisations apart in a signature: the head (bounds: a 2-D array for
# Box actions, none for Discrete) and the helper thread's hand-over (ctl: an int64 array or omitted)
_BOX = "Array(float64, 2, 'C', False, aligned=True), float64, float64"
_DISCRETE = "int64, none, float64, float64"
_INLINE, _THREADED = "bool, omitted(default=None)", "bool, Array(int64, 1"
_CREDIT_MARKERS = {("gymnasium", False): (_BOX, _INLINE), ("gymnasium", True): (_DISCRETE, _INLINE),
                   ("critic_thread", False): (_BOX, _THREADED), ("critic_thread", True): (_DISCRETE, _THREADED)}


def _in_disk_cache(dispatcher, dtype, markers=()):
    """True when numba's on-disk index of ``dispatcher`` holds an entry for this CPU, these sources and
    networks of ``dtype`` whose signature also names every one of ``markers`` (read through numba's
    private cache API; None when it cannot tell)."""
    try:
        cache = dispatcher._cache
        codegen = dispatcher.targetctx.codegen()
        magic, hashes = codegen.magic_tuple(), cache._index_key(None, codegen)[2]
        index = cache._cache_file._load_index()
    except Exception:  # noqa: BLE001 - another numba version: the answer is unknown, not an error
        return None
    for sig, key_magic, key_hashes in index:
        text = str(sig)
        marker = f"('P', Array({dtype}, 1" if "NetStateType" in text else f"Array({dtype}, 1"
        if key_magic == magic and key_hashes == hashes and marker in text and all(m in text for m in markers):
            return True
    return False


def kernels_cached(dtype, discrete, protocol="gymnasium"):
    """Whether numba's on-disk cache already holds the agent's kernels for networks of ``dtype``
    ("float32" / "float64"), Discrete (``discrete``) or Box actions, and one calling order:
    "gymnasium" (act / learn), "loop" (act / update / skip / credit, controller.loop) or "critic_thread".
    True: a run loads them in seconds; False: it compiles them first (minutes); None: cannot tell."""
    from controller.kernels import agent_step

    names = _SHARED + _BY_ACTION[bool(discrete)] + _BY_PROTOCOL[(protocol, bool(discrete))]
    found = [_in_disk_cache(getattr(agent_step, name), dtype,
                            _CREDIT_MARKERS.get((protocol, bool(discrete))) if name == "credit_and_apply" else ())
             for name in names]
    if None in found:
        return None
    return all(found)


def describe_kernel_cache(dtype, discrete, protocol="gymnasium"):
    """One line for the user saying what the next agent build does: load from the cache or compile."""
    kind = "Discrete" if discrete else "Box"
    state = kernels_cached(dtype, discrete, protocol)
    if state:
        return "loading the agent's compiled kernels from numba's cache"
    if state is None:
        return "loading or compiling the agent's kernels (numba)"
    return (f"compiling the agent's kernels ({dtype}, {kind} actions): once per machine and configuration, "
            f"1-2 min on a 2-core machine ('rtu-control warmup' compiles every configuration ahead)")


def _exercise(cell):
    x = np.zeros(cell.n_in, cell.dtype)
    dy = np.zeros(cell.n_out, cell.dtype)
    cell.step(x)
    cell.grad(dy, with_input_grad=True)
    cell.grad(dy, with_input_grad=False)
    cell.step_grad(x, dy)
    cell.forward(x)
    cell.traces_grad(x, dy)
    cell.refresh_coefficients()
    cell.reset()


def _timed(echo, label, fn):
    """Run fn(); when echo is given, report label and the seconds it took on one line."""
    t0 = time.perf_counter()
    fn()
    if echo is not None:
        echo(f"  {label:<48} {time.perf_counter() - t0:6.1f} s")


def warm_up_cells(dtypes=(np.float32, np.float64), echo=None):
    """Compile all RTU and LRU kernels for the given dtypes. Returns (configurations, seconds).
    echo: called with one line per configuration and its time (progress), or None."""
    start = time.perf_counter()
    count = 0
    for dtype in dtypes:
        name = np.dtype(dtype).name
        for variant in VARIANTS:
            for activation in ACTIVATIONS:
                _timed(echo, f"cell rtu-{variant} {activation} {name}", lambda: _exercise(
                    RTUCell(2, 2, variant=variant, activation=activation, dtype=dtype)))
                count += 1
        _timed(echo, f"cell lru {name}", lambda: _exercise(LRUCell(2, 2, dtype=dtype)))
        count += 1
    return count, time.perf_counter() - start


def _exercise_agent(agent, rng):
    """Drive every public method of the agent once in each order (gymnasium and real-time loop)."""
    obs = rng.standard_normal(agent.n_obs)
    agent.act(obs)
    agent.learn(0.0, obs, False, False)
    agent.act(obs)
    agent.learn(0.0, obs, False, True)
    agent.act(obs)
    agent.credit(None)
    agent.act(obs)
    agent.update(0.0, obs, False, False)
    agent.credit(None)
    agent.act(obs)
    agent.skip(0.0, obs, False, False)
    agent.credit(None)
    agent.update(0.0, obs, True, False)
    agent.reset()


def exercise_loop_protocol(agent, obs, applied):
    """Every call sequence controller.loop makes on a policy, in its order: an episode's first tick
    (act, credit), middle ticks with update or skip, episode ends by update or skip (terminated and
    truncated, after either kind of middle tick), an interrupted episode (reset without an end).
    obs: float64 (n_obs,); applied: float64 (n_actions,) as the loop passes them."""
    ends = (("update", (True, False)), ("skip", (False, True)), ("update", (False, True)),
            ("skip", (True, False)))
    for i, (end, flags) in enumerate(ends):
        agent.act(obs)
        agent.credit(applied)
        for middle in (("update", "skip") if i % 2 else ("skip", "update")):
            agent.act(obs)
            getattr(agent, middle)(0.0, obs, False, False)
            agent.credit(applied)
        getattr(agent, end)(0.0, obs, *flags)       # the terminal tick: no act
        agent.reset()
    agent.act(obs)
    agent.credit(applied)
    agent.reset()                                   # an unusable read interrupts the episode


def tiny_twin_config(config):
    """``config`` with the smallest widths: the same numba specialisations (types, not sizes, select
    them) compiled in a fraction of the time, on an agent whose learning does not matter."""
    import dataclasses
    return dataclasses.replace(config, n_units=2, encoder_width=2, head_width=2)


def warm_up_for_loop(config, observation_space, action_space):
    """Compile (or load from numba's cache) every kernel controller.loop can reach through an agent of
    ``config`` with these spaces, on a throwaway tiny twin: the deployed agent's parameters, normaliser
    and counters are untouched. Returns seconds. Box actions only (the loop's tasks)."""
    from controller.agent import Agent

    start = time.perf_counter()
    twin = Agent(observation_space, action_space, tiny_twin_config(config), seed=0)
    try:
        obs = np.zeros(twin.n_obs, np.float64)
        applied = np.zeros(twin.n_actions, np.float64)
        exercise_loop_protocol(twin, obs, applied)
    finally:
        twin.close()
    return time.perf_counter() - start


def _exercise_new_agent(obs_space, action_space, cfg, rng, critic_thread=False):
    """_exercise_agent on a new agent of cfg, closed afterwards (its helper thread, if any)."""
    from controller.agent import Agent
    agent = Agent(obs_space, action_space, cfg, seed=0, critic_thread=critic_thread)
    try:
        _exercise_agent(agent, rng)
    finally:
        agent.close()


def warm_up_agents(dtypes=("float32", "float64"), cells=("rtu-linear", "rtu-nonlinear", "lru", "none"),
                   echo=None):
    """Compile the agent's fused kernels for every cell kind, dtype and action-space kind, with tiny
    networks (the compiled code depends neither on sizes nor on the learner options: the input skip and
    the trace decays are read from the network's arrays at run time, so an agent with the options runs
    the same code; tests/controller/test_warmup.py checks that it compiles nothing). Returns
    (configurations, seconds). echo: called with one line per configuration and its time (progress), or
    None."""
    import gymnasium as gym

    from controller.agent import AgentConfig

    start = time.perf_counter()
    rng = np.random.default_rng(0)
    count = 0
    obs_space = gym.spaces.Box(-np.inf, np.inf, (3,), np.float64)
    for dtype in dtypes:
        for cell in cells:
            for action_space in (gym.spaces.Box(-1.0, 1.0, (2,), np.float32), gym.spaces.Discrete(2)):
                kind = "Discrete" if isinstance(action_space, gym.spaces.Discrete) else "Box"
                # the options on: every branch of the kernels runs once (the default path is the same code)
                cfg = AgentConfig(cell=cell, dtype=dtype, n_units=2, encoder_width=2, head_width=2,
                                  input_skip=True, lam_policy_cell=0.9, lam_value_cell=0.9)
                _timed(echo, f"agent {cell} {dtype} {kind}",
                       lambda: _exercise_new_agent(obs_space, action_space, cfg, rng))
                count += 1
                if cell == "rtu-linear":   # the critic-thread kernels (the same for every cell kind)
                    _timed(echo, f"agent {cell} {dtype} {kind} critic_thread",
                           lambda: _exercise_new_agent(obs_space, action_space, cfg, rng, True))
                    count += 1
    return count, time.perf_counter() - start

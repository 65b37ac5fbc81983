"""Compile every cell kernel before a run (DESIGN §6 item 6: numba's cache is per machine).

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


def warm_up_cells(dtypes=(np.float32, np.float64)):
    """Compile all RTU and LRU kernels for the given dtypes. Returns (configurations, seconds)."""
    start = time.perf_counter()
    count = 0
    for dtype in dtypes:
        for variant in VARIANTS:
            for activation in ACTIVATIONS:
                _exercise(RTUCell(2, 2, variant=variant, activation=activation, dtype=dtype))
                count += 1
        _exercise(LRUCell(2, 2, dtype=dtype))
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


def warm_up_agents(dtypes=("float32", "float64"), cells=("rtu-linear", "rtu-nonlinear", "lru", "none")):
    """Compile the agent's fused kernels for every cell kind, dtype and action-space kind, with tiny
    networks (the compiled code does not depend on sizes). Returns (configurations, seconds)."""
    import gymnasium as gym

    from controller.agent import Agent, AgentConfig

    start = time.perf_counter()
    rng = np.random.default_rng(0)
    count = 0
    obs_space = gym.spaces.Box(-np.inf, np.inf, (3,), np.float64)
    for dtype in dtypes:
        for cell in cells:
            for action_space in (gym.spaces.Box(-1.0, 1.0, (2,), np.float32), gym.spaces.Discrete(2)):
                cfg = AgentConfig(cell=cell, dtype=dtype, n_units=2, encoder_width=2, head_width=2)
                _exercise_agent(Agent(obs_space, action_space, cfg, seed=0), rng)
                count += 1
                if cell == "rtu-linear":   # the critic-thread kernels (the same for every cell kind)
                    agent = Agent(obs_space, action_space, cfg, seed=0, critic_thread=True)
                    _exercise_agent(agent, rng)
                    agent.close()
                    count += 1
    return count, time.perf_counter() - start

"""Compile every cell kernel before a run (DESIGN §6 item 6: numba's cache is per machine).

``warm_up_cells()`` builds tiny cells of every variant, activation and dtype and calls each of their
methods once, so that the first real tick finds the machine code ready (from numba's on-disk cache
after the first run on this machine). Returns the number of cell configurations compiled.
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

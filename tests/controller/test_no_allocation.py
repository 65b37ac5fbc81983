"""The kernels allocate nothing per step: numba's runtime (NRT) allocation counters do not grow with
the number of steps when every kernel is driven from a compiled loop.

(Calling a kernel from Python goes through numba's dispatcher, which wraps each array argument in a
small NRT record while unboxing; that is the dispatcher's fixed cost of the call, not an array
allocation, and is why this test drives the kernels from compiled code.)"""
import numpy as np
import pytest
from numba import njit
from numba.core.runtime import _nrt_python, rtsys

from controller.cells import LRUCell, RTUCell
from controller.kernels import agent_step
from controller.kernels import lru as lru_k
from controller.kernels import rtu as rtu_k
from controller.networks import Network
from tests.controller.helpers import assert_ticks_allocate_no_array


@pytest.fixture(autouse=True)
def nrt_stats():
    """NRT statistics are off by default (they cost an atomic per allocation); on for these tests."""
    was_enabled = _nrt_python.memsys_stats_enabled()
    _nrt_python.memsys_enable_stats()
    yield
    if not was_enabled:
        _nrt_python.memsys_disable_stats()


def _allocations():
    stats = rtsys.get_allocation_stats()
    return stats.alloc, stats.mi_alloc


@njit
def _drive_rtu(steps, x, dy, vec, mat, dx, variant, act):
    for _ in range(steps):
        rtu_k.rtu_step(x, vec, mat, variant, act, 0)
        rtu_k.rtu_grad(dy, vec, mat, dx, variant, act, True)
        rtu_k.rtu_step_grad(x, dy, vec, mat, dx, variant, act, 0, True)
        rtu_k.rtu_forward(x, vec, mat, variant, act, 0)
        rtu_k.rtu_traces_grad(x, dy, vec, mat, dx, variant, act, False)
        rtu_k.rtu_refresh_coefficients(vec, 0)


@njit
def _drive_lru(steps, x, dy, vec, mat, cmat, y, dx):
    for _ in range(steps):
        lru_k.lru_step(x, vec, mat, cmat, y)
        lru_k.lru_grad(dy, vec, mat, cmat, dx, True)
        lru_k.lru_step_grad(x, dy, vec, mat, cmat, y, dx, True)
        lru_k.lru_forward(x, vec, mat, cmat, y)
        lru_k.lru_traces_grad(x, dy, vec, mat, cmat, dx, False)


@njit
def _allocating_kernel(n):
    return np.zeros(n)


def _growth(run):
    run(1)                          # compile
    before = _allocations()
    run(1)
    one = _allocations()
    run(500)
    many = _allocations()
    return (one[0] - before[0], one[1] - before[1]), (many[0] - one[0], many[1] - one[1])


@pytest.mark.parametrize("variant, activation", [("linear", "tanh"), ("nonlinear", "relu")])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rtu_kernels_allocate_nothing_per_step(variant, activation, dtype):
    cell = RTUCell(16, 24, variant, activation=activation, dtype=dtype)
    x = np.linspace(-1, 1, 16).astype(dtype)
    dy = np.linspace(-1, 1, 48).astype(dtype)
    one, many = _growth(lambda s: _drive_rtu(s, x, dy, cell.vec, cell.mat, cell.dx,
                                             cell._variant, cell._act))
    assert many == one, "allocations grow with the number of steps"
    assert np.isfinite(cell.y).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lru_kernels_allocate_nothing_per_step(dtype):
    cell = LRUCell(16, 24, dtype=dtype)
    x = np.linspace(-1, 1, 16).astype(dtype)
    dy = np.linspace(-1, 1, 24).astype(dtype)
    one, many = _growth(lambda s: _drive_lru(s, x, dy, cell.vec, cell.mat, cell.cmat, cell.y, cell.dx))
    assert many == one
    assert np.isfinite(cell.y).all()


def test_the_counters_see_allocations():
    """Guard against a vacuous pass: a kernel that allocates per step moves the counters."""
    @njit
    def allocate(steps):
        s = 0.0
        for _ in range(steps):
            s += _allocating_kernel(3)[0]
        return s

    one, many = _growth(allocate)
    assert one[0] >= 1 and many[0] >= 500


@njit
def _drive_networks(steps, actor, critic, x):
    """A tick's network kernels (controller.kernels.agent_step), actor and critic routes."""
    for _ in range(steps):
        agent_step.net_forward(actor, x)
        agent_step.net_backward_accumulate(actor, x)
        agent_step.net_apply(actor, 1e-6, 1e-6, False)
        agent_step.net_forward_backward(critic, x)
        agent_step.net_apply(critic, 1e-6, 1e-6, True)
        agent_step.net_forward_backward(critic, x)
        agent_step.net_accumulate(critic)


@pytest.mark.parametrize("cell", ["rtu-linear", "rtu-nonlinear", "lru", "none"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_network_kernels_with_the_learner_options_allocate_nothing_per_step(cell, dtype):
    """Input skip and separate trace decays of the dense layers and the cell: the actor's and the
    critic's kernels still allocate nothing per step (fused traces, as in the agent)."""
    kw = dict(encoder_width=12, n_units=8, head_width=10, dtype=dtype, fused_traces=True, input_skip=True,
              trace_decay=0.5, cell_trace_decay=0.9)
    actor, critic = Network(6, 4, cell, seed=0, **kw), Network(6, 1, cell, seed=1, **kw)
    critic.dout[0] = 1.0
    x = np.linspace(-1, 1, 6).astype(dtype)
    actor.dout[:] = 0.1
    one, many = _growth(lambda s: _drive_networks(s, actor.state, critic.state, x))
    assert many == one, "allocations grow with the number of steps"
    assert np.isfinite(actor.out).all() and np.isfinite(critic.P).all()


@pytest.mark.parametrize("thread", [False, True], ids=["single", "critic-thread"])
def test_agent_with_the_learner_options_allocates_no_array_per_step(thread):
    """tests/controller/test_agent.py's tracemalloc check, with every option of issue 18 set: λ per
    group, input skip, RTU ranges, other widths (paper-size cell)."""
    import gymnasium as gym

    from controller.agent import Agent, AgentConfig

    cfg = AgentConfig(lam_policy_dense=0.5, lam_policy_cell=0.99, lam_value_dense=0.7, lam_value_cell=0.95,
                      input_skip=True, rtu_r_min=0.5, rtu_r_max=0.99, rtu_max_phase=1.0, encoder_width=48,
                      head_width=80)
    agent = Agent(gym.spaces.Box(-np.inf, np.inf, (5,), np.float64), gym.spaces.Box(-1.0, 1.0, (2,), np.float32),
                  cfg, seed=0, critic_thread=thread)
    assert_ticks_allocate_no_array(agent, 5)

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
from controller.kernels import lru as lru_k
from controller.kernels import rtu as rtu_k


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

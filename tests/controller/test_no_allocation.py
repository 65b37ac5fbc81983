"""The real-time path allocates nothing per step: numba's runtime allocation counters do not move
across many calls of every cell method (checked and unchecked doors)."""
import numpy as np
import pytest
from numba.core.runtime import _nrt_python, rtsys

from numba import njit

from controller.cells import LRUCell, RTUCell


@njit
def _allocating_kernel(n):
    return np.zeros(n)


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


def _exercise(cell, x, dy, calls=200):
    for _ in range(calls):
        cell.step_unchecked(x)
        cell.grad_unchecked(dy, True)
        cell.step_grad_unchecked(x, dy, True)
        cell.forward_unchecked(x)
        cell.traces_grad_unchecked(x, dy, False)
        cell.step(x)
        cell.grad(dy)


@pytest.mark.parametrize("make", [
    lambda dt: RTUCell(16, 24, "linear", dtype=dt),
    lambda dt: RTUCell(16, 24, "nonlinear", activation="relu", dtype=dt),
    lambda dt: LRUCell(16, 24, dtype=dt),
], ids=["rtu-linear", "rtu-nonlinear", "lru"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_no_allocation_per_step(make, dtype):
    cell = make(dtype)
    x = np.linspace(-1, 1, cell.n_in).astype(dtype)
    dy = np.linspace(-1, 1, cell.n_out).astype(dtype)
    _exercise(cell, x, dy, calls=2)   # compile
    before = _allocations()
    _exercise(cell, x, dy)
    assert _allocations() == before
    # the counters work: a kernel that allocates moves them
    _allocating_kernel(3)
    assert _allocations() != before
    assert np.isfinite(cell.y).all()

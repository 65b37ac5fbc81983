"""controller.buffers: the arrays the kernels stream through start on a cache line."""
import numpy as np
import pytest

from controller.buffers import CACHE_LINE, aligned_zeros
from controller.cells import LRUCell, RTUCell
from controller.networks import Network


@pytest.mark.parametrize("shape", [7, (3, 5), (2, 70, 192)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
@pytest.mark.parametrize("align", [16, 64, 4096])
def test_aligned_zeros_is_zeroed_contiguous_and_aligned(shape, dtype, align):
    a = aligned_zeros(shape, dtype, align)
    assert a.shape == (np.zeros(shape).shape)
    assert a.dtype == np.dtype(dtype)
    assert a.flags.c_contiguous and a.flags.writeable
    assert a.ctypes.data % align == 0
    assert not a.any()
    a[...] = 1  # the whole array is usable memory
    assert a.sum() == a.size


def test_an_empty_array_is_plain_zeros():
    a = aligned_zeros((0, 3), np.float32)
    assert a.shape == (0, 3) and a.dtype == np.float32


def test_aligned_zeros_rejects_an_alignment_that_is_not_a_power_of_two():
    with pytest.raises(ValueError, match="align must be a power of two.*48"):
        aligned_zeros(4, np.float32, 48)


def test_many_allocations_are_all_aligned():
    # np.zeros of this size lands 16 bytes past a page boundary (mmap): the case that was slow.
    assert all(aligned_zeros((8, 68, 192), np.float32).ctypes.data % CACHE_LINE == 0 for _ in range(20))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cell_and_network_arrays_start_on_a_cache_line(dtype):
    for cell in (RTUCell(64, 192, dtype=dtype), RTUCell(5, 7, variant="nonlinear", dtype=dtype),
                 LRUCell(64, 192, dtype=dtype)):
        arrays = [cell.vec, cell.mat] + ([cell.cmat] if isinstance(cell, LRUCell) else [])
        assert all(a.ctypes.data % CACHE_LINE == 0 for a in arrays), type(cell).__name__
    net = Network(17, 6, dtype=dtype, seed=0)
    assert all(a.ctypes.data % CACHE_LINE == 0 for a in (net.P, net.G, net.Z, net.A))

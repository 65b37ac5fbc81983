"""Cache-line-aligned array allocation for the arrays the kernels stream through.

NumPy only guarantees 16-byte alignment, and large arrays come from ``mmap`` at 16 bytes past a page
boundary, so every (d, n) slab row of an RTU cell would start 16 bytes into a cache line: each vector
load and store of the trace sweep would then touch two lines, and the step's time would depend on where
the allocator put the array (docs/benchmarks.md, cell section, "What closed the gap").
"""
import numpy as np

CACHE_LINE = 64  # bytes; x86-64 and the Cortex-A cores of the supported boards


def aligned_zeros(shape, dtype, align=CACHE_LINE):
    """Zeroed C-contiguous array whose first element sits on an ``align``-byte boundary.

    shape: int or tuple; dtype: numpy dtype; align: power of two, bytes. The array is a view into a
    slightly larger uint8 buffer (kept alive through ``.base``); it behaves like ``np.zeros`` otherwise.
    An empty array has no element to align and is returned as ``np.zeros(shape, dtype)``.
    """
    if align <= 0 or align & (align - 1):
        raise ValueError(f"aligned_zeros: align must be a power of two (bytes), got {align}")
    dtype = np.dtype(dtype)
    count = int(np.prod(shape, dtype=np.int64))
    if count == 0:
        return np.zeros(shape, dtype)
    nbytes = count * dtype.itemsize
    raw = np.zeros(nbytes + align, np.uint8)
    start = (-raw.ctypes.data) % align
    return raw[start:start + nbytes].view(dtype).reshape(shape)

"""The two numba decorators every kernel uses, so compile options live in one place.

* ``kernel``: hot loops. ``fastmath`` is limited to reassociation, contraction (FMA) and no-signed-zeros,
  which the dot products and reductions need to vectorise; it does not assume finite values, so NaN and
  inf propagate as IEEE says (design.md §6 item 5).
* ``exact``: no fastmath at all (coefficients from the parameters, NaN/inf guards).

Both use ``error_model="numpy"``: a float division by zero gives inf/NaN instead of raising
ZeroDivisionError. Besides being what array code expects, this matters for speed: the Python error model
puts an exception check on every division, which stops LLVM from vectorising loops that divide (the
float32 tanh) and from inlining small helpers. ``cache=True`` keeps compiled code on disk, keyed to this
CPU (design.md §6 item 6); ``controller.warmup`` compiles everything before a run.
"""
from numba import njit

FASTMATH = frozenset({"reassoc", "contract", "nsz"})
JIT_OPTIONS = {"cache": True, "error_model": "numpy"}
KERNEL_OPTIONS = {"fastmath": set(FASTMATH), "error_model": "numpy"}  # for numba.extending.overload


def kernel(fn):
    """numba.njit for hot loops: cache, numpy error model, restricted fastmath."""
    return njit(fastmath=set(FASTMATH), **JIT_OPTIONS)(fn)


def exact(fn):
    """numba.njit without fastmath: cache, numpy error model."""
    return njit(**JIT_OPTIONS)(fn)

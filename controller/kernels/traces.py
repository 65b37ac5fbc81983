"""Eligibility traces and the ObGD bounded step (DESIGN §3.5; streaming deep RL's ``ObGD``).

A network's parameters live in up to four flat groups (dense layers, the cell's per-unit vectors, its
input matrices, the LRU's output matrix); each kernel takes the four (gradient or parameter, trace)
pairs at once so that one call covers a network. Unused groups are passed as empty arrays.

    z <- decay * z + g                (decay = gamma * lambda)       eligibility_accumulate
    M = alpha * kappa * max(|delta|, 1) * ||z||_1
    alpha_eff = alpha / max(M, 1)                                      obgd_step_size
    w <- w + alpha_eff * delta * z                                     obgd_apply

Twins: ``controller.reference.eligibility_reference`` and the analytic λ-return oracle in
tests/controller/test_traces.py.
"""
from numba import types
from numba.extending import overload

from controller.kernels.jit import FASTMATH, kernel


def _scalar(x):
    """x if x is a number, x[0] if x is an array (Python fallback; numba uses the overload below)."""
    return x[0] if hasattr(x, "shape") else x


@overload(_scalar, jit_options={"fastmath": set(FASTMATH), "error_model": "numpy"})
def _scalar_overload(x):
    if isinstance(x, types.Array):
        return lambda x: x[0]
    return lambda x: x


@kernel
def _accumulate(decay, g, z):
    s = 0.0
    for i in range(min(z.shape[0], g.shape[0])):  # an empty g (traces kept elsewhere) is a no-op
        v = decay * z[i] + g[i]
        z[i] = v
        s += abs(v)
    return s


@kernel
def eligibility_accumulate(decay, g0, z0, g1, z1, g2, z2, g3, z3):
    """z_i <- decay * z_i + g_i for the four (g, z) pairs (1-D, same dtype, z in/out). Returns ||z||_1
    (float64) over all of them. decay: a float, or a 1-element array of the traces' dtype (passing an
    array is ~1 µs cheaper from Python than a NumPy float32 scalar, and keeps float32 loops float32)."""
    d = _scalar(decay)
    return _accumulate(d, g0, z0) + _accumulate(d, g1, z1) + _accumulate(d, g2, z2) \
        + _accumulate(d, g3, z3)


@kernel
def _apply(step, z, p):
    for i in range(p.shape[0]):
        p[i] += step * z[i]


@kernel
def obgd_apply(step, z0, p0, z1, p1, z2, p2, z3, p3):
    """p_i <- p_i + step * z_i for the four (z, p) pairs; step = alpha_eff * delta (a float or a
    1-element array, see eligibility_accumulate). p in/out."""
    step = _scalar(step)
    _apply(step, z0, p0)
    _apply(step, z1, p1)
    _apply(step, z2, p2)
    _apply(step, z3, p3)


def obgd_step_size(alpha, kappa, delta, z_l1):
    """ObGD's effective step size alpha / max(alpha * kappa * max(|delta|, 1) * ||z||_1, 1).

    The resulting update alpha_eff * |delta| * ||z||_1 never exceeds 1 / kappa once the bound is active.
    """
    bound = alpha * kappa * max(abs(delta), 1.0) * z_l1
    return alpha / bound if bound > 1.0 else alpha


@kernel
def _apply_accumulate(step, decay, g, z, p):
    s = 0.0
    if g.shape[0] < z.shape[0]:  # traces kept elsewhere: apply only
        _apply(step, z, p)
        return s
    for i in range(z.shape[0]):
        zi = z[i]
        p[i] += step * zi
        v = decay * zi + g[i]
        z[i] = v
        s += abs(v)
    return s


@kernel
def obgd_apply_accumulate(step, decay, g0, z0, p0, g1, z1, p1, g2, z2, p2, g3, z3, p3):
    """Fused ``obgd_apply(step)`` then ``eligibility_accumulate(decay)``: one pass over the traces
    instead of two (the critic's update is followed at once by its next gradient). Returns ||z||_1.
    step, decay: floats or 1-element arrays."""
    step = _scalar(step)
    decay = _scalar(decay)
    return (_apply_accumulate(step, decay, g0, z0, p0) + _apply_accumulate(step, decay, g1, z1, p1)
            + _apply_accumulate(step, decay, g2, z2, p2) + _apply_accumulate(step, decay, g3, z3, p3))

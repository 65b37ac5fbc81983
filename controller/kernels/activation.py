"""Activations of the RTU output, vectorisable over all 2n values of a step (docs/rtu_math.md).

``apply_activation(pre, out, act)`` writes out = f(pre) for pre, out: (2, n) float arrays of one dtype.
``activation_slope(fa, one, act)`` returns f'(a) expressed through the output fa = f(a): for tanh
1 - fa^2, for relu 1 if fa > 0 else 0, for identity 1 (``one`` is 1 in the array dtype, so no float64
literal promotes a float32 kernel).

tanh. Scalar ``math.tanh`` is a libm call that does not vectorise (~18 ns each, 384 per paper-size step).

* float32 and float64 both use a branch-free rational approximation that LLVM vectorises (the float32
  constants and arithmetic stay float32). float32: the input is clamped to
  [-10, 10] (tanh(10) rounds to 1 in float32; NaN passes through the clamp), quartered, y = x / 4,
  tanh(y) is taken from Lambert's continued fraction y / (1 + y^2 / (3 + y^2 / (5 + ...))) truncated at
  depth ``_DEPTH`` and written as y P(y^2) / Q(y^2), then two doublings tanh(2t) = 2 tanh t / (1 + tanh^2 t)
  bring it back (the doubling does not amplify relative error). Maximum relative error over float32
  inputs: ~4e-7 (a few ulp), checked in tests/controller/test_activation.py.
* float64: the same scheme with depth ``_DEPTH64`` = 8 and clamp 20 (tanh(20) rounds to 1 in float64);
  maximum relative error ~6e-16 (under 3 ulp; libm's is ~2e-16), 3x faster than scalar libm calls.
"""
from fractions import Fraction

import numpy as np
from numba import types
from numba.extending import overload

from controller.kernels.jit import FASTMATH, kernel
from controller.kernels.layout import ACT_IDENTITY, ACT_RELU, ACT_TANH

_DEPTH = 6          # continued-fraction depth: truncation error <= 1.4e-7 relative on |y| <= 2.5
_CLAMP = 10.0       # |x| beyond this: tanh(x) == 1 in float32
_DOUBLINGS = 2      # y = x / 2**_DOUBLINGS


def lambert_tanh_coefficients(depth=_DEPTH):
    """(p, q): coefficient lists, lowest power first, with tanh(y) ~= y p(y^2) / q(y^2).

    Evaluates the continued fraction from the bottom with exact rationals: T_depth = 2 depth + 1,
    T_k = (2k + 1) + s / T_{k+1}, tanh(y) = y / T_0; with T = A / B each level is a polynomial pair.
    """
    a = [Fraction(2 * depth + 1)]   # numerator polynomial of T_k in s = y^2
    b = [Fraction(1)]               # denominator polynomial of T_k
    for k in range(depth - 1, -1, -1):
        # T_k = (2k+1) + s B / A = ((2k+1) A + s B) / A
        new_a = [Fraction(0)] * (max(len(a), len(b) + 1))
        for i, c in enumerate(a):
            new_a[i] += (2 * k + 1) * c
        for i, c in enumerate(b):
            new_a[i + 1] += c
        a, b = new_a, a
    # tanh(y) = y / T_0 = y * B / A; scale so that q has constant term 1.
    scale = a[0]
    return [float(c / scale) for c in b], [float(c / scale) for c in a]


_DEPTH64 = 8
_CLAMP64 = 20.0

_P, _Q = lambert_tanh_coefficients()
if len(_P) != 4 or len(_Q) != 4:  # the unrolled Horner forms below are written for depth 6
    raise RuntimeError("lambert_tanh_coefficients: expected cubic numerator and denominator")
_P0, _P1, _P2, _P3 = (np.float32(c) for c in _P)
_Q0, _Q1, _Q2, _Q3 = (np.float32(c) for c in _Q)
_F32_CLAMP = np.float32(_CLAMP)
_F32_QUARTER = np.float32(0.25)
_F32_ONE = np.float32(1.0)
_F32_TWO = np.float32(2.0)
_P64, _Q64 = lambert_tanh_coefficients(_DEPTH64)
if len(_P64) != 5 or len(_Q64) != 5:
    raise RuntimeError("lambert_tanh_coefficients: expected quartic numerator and denominator")
_A0, _A1, _A2, _A3, _A4 = _P64
_B0, _B1, _B2, _B3, _B4 = _Q64


@kernel
def tanh_f32(x):
    """tanh of one float32 value by the clamped, quartered continued fraction (module docstring)."""
    if x > _F32_CLAMP:
        x = _F32_CLAMP
    elif x < -_F32_CLAMP:
        x = -_F32_CLAMP
    y = x * _F32_QUARTER
    s = y * y
    p = ((_P3 * s + _P2) * s + _P1) * s + _P0
    q = ((_Q3 * s + _Q2) * s + _Q1) * s + _Q0
    t = y * p / q
    t = _F32_TWO * t / (_F32_ONE + t * t)
    t = _F32_TWO * t / (_F32_ONE + t * t)
    return t


@kernel
def tanh_f64(x):
    """tanh of one float64 value: clamp to [-20, 20], quarter, depth-8 continued fraction, 2 doublings."""
    if x > _CLAMP64:
        x = _CLAMP64
    elif x < -_CLAMP64:
        x = -_CLAMP64
    y = x * 0.25
    s = y * y
    p = (((_A4 * s + _A3) * s + _A2) * s + _A1) * s + _A0
    q = (((_B4 * s + _B3) * s + _B2) * s + _B1) * s + _B0
    t = y * p / q
    t = 2.0 * t / (1.0 + t * t)
    t = 2.0 * t / (1.0 + t * t)
    return t


def tanh_array(pre, out):
    """out[...] = tanh(pre) for pre, out: (2, n). Python fallback; numba uses the overload below."""
    np.tanh(pre, out=out)


@overload(tanh_array, jit_options={"fastmath": set(FASTMATH), "error_model": "numpy"})
def _tanh_array_overload(pre, out):
    if pre.dtype == types.float32:
        def impl(pre, out):
            for i in range(pre.shape[0]):
                for k in range(pre.shape[1]):
                    out[i, k] = tanh_f32(pre[i, k])
    else:
        def impl(pre, out):
            for i in range(pre.shape[0]):
                for k in range(pre.shape[1]):
                    out[i, k] = tanh_f64(pre[i, k])
    return impl


@kernel
def apply_activation(pre, out, act):
    """out = f(pre) elementwise. pre, out: (2, n) same float dtype (may not alias). act: ACT_* code."""
    if act == ACT_TANH:
        tanh_array(pre, out)
    elif act == ACT_RELU:
        zero = pre.dtype.type(0.0)
        for i in range(pre.shape[0]):
            for k in range(pre.shape[1]):
                v = pre[i, k]
                out[i, k] = zero if v <= zero else v   # NaN stays NaN (as np.maximum: design.md §6 item 5)
    else:  # ACT_IDENTITY
        for i in range(pre.shape[0]):
            for k in range(pre.shape[1]):
                out[i, k] = pre[i, k]


@kernel
def activation_slope(fa, one, act):
    """f'(a) from the activated value fa = f(a); ``one`` is 1 in the working dtype."""
    if act == ACT_TANH:
        return one - fa * fa
    if act == ACT_RELU:
        return one if fa > one - one else one - one
    return one


__all__ = ["ACT_IDENTITY", "ACT_RELU", "ACT_TANH", "activation_slope", "apply_activation",
           "lambert_tanh_coefficients", "tanh_array", "tanh_f32", "tanh_f64"]


def tanh_scalar(x):
    """tanh of one float in the kernels' approximation. Python fallback; numba uses the overload below."""
    return float(np.tanh(x))


@overload(tanh_scalar, jit_options={"fastmath": set(FASTMATH), "error_model": "numpy"})
def _tanh_scalar_overload(x):
    """Dispatch on the scalar type, so float32 layers stay float32 (``tanh_f32``) and float64 exact."""
    if x == types.float32:
        return lambda x: tanh_f32(x)
    return lambda x: tanh_f64(x)

"""Branch-free float64 exp, expm1, sin and cos that LLVM can vectorise inside a numba loop.

Why: after every ObGD step all n units of an RTU change nu_log and theta_log, so its coefficients
g = r cos θ, φ = r sin θ, η = sqrt(1 − r²) and their derivatives (design.md §3.1, §3.3) are recomputed for
every unit on every tick. With libm that is six scalar calls per unit, because a loop that calls libm
cannot be vectorised; these polynomial versions have no calls
and no data-dependent branches (only selects), so the whole per-unit loop runs in SIMD registers.

Accuracy (tested against ``math`` in tests/controller/test_elementary.py): within a few ulp of libm on
the ranges below; NaN propagates.

* ``exp_f64(x)``: Cody–Waite reduction x = k ln2 + r, |r| ≤ ln2/2, degree-13 Taylor polynomial,
  2^k built from its bits. x > 709 → inf, x < −708 → 0 (the true value is below 3.3e-308).
* ``expm1_f64(x)``: the Taylor series of expm1 for |x| < 0.34 (no cancellation near 0), exp(x) − 1
  elsewhere.
* ``sincos_f64(x)``: Cody–Waite reduction by π/2 in three parts (exact products for |x| < 2^20),
  degree-17/18 Taylor polynomials on |r| ≤ π/4, quadrant by select. Valid for |x| ≤ ``SINCOS_MAX``;
  callers handle larger arguments with libm (``TRIG_FALLBACK``).

Compile options: contraction (FMA) only; no reassociation, which could undo the Cody–Waite splits.
"""
import math

from numba import njit, types
from numba.extending import intrinsic

ELEMENTARY_OPTIONS = {"cache": True, "error_model": "numpy", "fastmath": {"contract"}}

LOG2E = 1.4426950408889634
LN2_HI = 6.93147180369123816490e-01   # fdlibm split of ln 2: LN2_HI has 32 significant bits
LN2_LO = 1.90821492927058770002e-10
EXP_MAX = 709.0
EXP_MIN = -708.0
TWO_OVER_PI = 0.63661977236758134308
PIO2_1 = 1.57079632673412561417e+00   # fdlibm's three-part π/2: 33 + 33 + 53 bits
PIO2_2 = 6.07710050630396597660e-11
PIO2_3 = 2.02226624871116645580e-21
SINCOS_MAX = 1.0e5
"""|x| above this goes to libm (the three-part reduction stays exact to ~|x| · 1e-31 below it)."""

_INV_FACT = [1.0 / math.factorial(i) for i in range(20)]
F2, F3, F4, F5, F6, F7, F8, F9, F10, F11, F12, F13, F14, F15, F16, F17, F18, F19 = _INV_FACT[2:]


@intrinsic
def _int64_bits_as_float64(typingctx, bits):
    """Reinterpret the 64 bits of an int64 as a float64 (one LLVM bitcast; vectorises)."""
    if bits != types.int64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float64))

    return types.float64(types.int64), codegen


@njit(**ELEMENTARY_OPTIONS)
def _expm1_poly(r):
    """expm1(r) for |r| ≤ 0.35 (Taylor to r^14; truncation < 1e-18 relative)."""
    p = F14
    p = p * r + F13
    p = p * r + F12
    p = p * r + F11
    p = p * r + F10
    p = p * r + F9
    p = p * r + F8
    p = p * r + F7
    p = p * r + F6
    p = p * r + F5
    p = p * r + F4
    p = p * r + F3
    p = p * r + F2
    p = p * r + 1.0
    return p * r


@njit(**ELEMENTARY_OPTIONS)
def exp_f64(x):
    """e^x in float64, branch-free (see the module docstring for the range handling)."""
    xc = min(max(x, EXP_MIN), EXP_MAX)
    k = math.floor(xc * LOG2E + 0.5)  # int64
    kf = float(k)
    r = (xc - kf * LN2_HI) - kf * LN2_LO
    scale = _int64_bits_as_float64((k + 1023) << 52)
    y = scale + scale * _expm1_poly(r)
    y = math.inf if x > EXP_MAX else y
    y = 0.0 if x < EXP_MIN else y
    return x + y if x != x else y   # NaN in, NaN out


@njit(**ELEMENTARY_OPTIONS)
def expm1_f64(x):
    """e^x − 1 in float64 without cancellation near 0, branch-free."""
    small = _expm1_poly(x)   # evaluated everywhere (no branch), used only for |x| < 0.34
    large = exp_f64(x) - 1.0
    return small if abs(x) < 0.34 else large


@njit(**ELEMENTARY_OPTIONS)
def sincos_f64(x):
    """(sin x, cos x) in float64 for |x| ≤ SINCOS_MAX, branch-free (NaN in, NaN out)."""
    q = math.floor(x * TWO_OVER_PI + 0.5)  # int64 quadrant
    qf = float(q)
    r = ((x - qf * PIO2_1) - qf * PIO2_2) - qf * PIO2_3
    r2 = r * r
    s = F17
    s = s * r2 - F15
    s = s * r2 + F13
    s = s * r2 - F11
    s = s * r2 + F9
    s = s * r2 - F7
    s = s * r2 + F5
    s = s * r2 - F3
    s = r + r * r2 * s
    c = F18
    c = c * r2 - F16
    c = c * r2 + F14
    c = c * r2 - F12
    c = c * r2 + F10
    c = c * r2 - F8
    c = c * r2 + F6
    c = c * r2 - F4
    c = c * r2 + F2
    c = 1.0 - r2 * c
    # quadrant q mod 4 = 0, 1, 2, 3: (sin, cos) = (s, c), (c, -s), (-s, -c), (-c, s)
    swap = (q & 1) != 0
    s_q = c if swap else s
    c_q = s if swap else c
    sin_x = -s_q if (q & 2) != 0 else s_q
    cos_x = -c_q if ((q + 1) & 2) != 0 else c_q
    return sin_x, cos_x

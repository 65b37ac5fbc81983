"""Branch-free exp/expm1/sincos (controller/kernels/elementary.py) against libm, and the RTU coefficient
refresh built on them against the libm formulas and the lazy per-unit path."""

import numpy as np
import pytest
from numba import njit

from controller.cells import RTUCell
from controller.kernels import layout
from controller.kernels.elementary import SINCOS_MAX, exp_f64, expm1_f64, sincos_f64
from controller.kernels.rtu_coefficients import _coefficients_row, _refresh_unit_libm, rtu_refresh_coefficients


@njit(cache=False)
def _evaluate(xs, out):
    for i in range(xs.shape[0]):
        out[0, i] = exp_f64(xs[i])
        out[1, i] = expm1_f64(xs[i])
        s, c = sincos_f64(xs[i])
        out[2, i] = s
        out[3, i] = c


def _ulps(got, want):
    ulp = np.spacing(np.abs(want))
    return np.abs(got - want) / np.maximum(ulp, 5e-324)


@pytest.mark.parametrize("lo,hi", [(-1e-8, 1e-8), (-1.0, 1.0), (-40.0, 5.0), (-700.0, 700.0)])
def test_exp_and_expm1_within_4_ulp_of_libm(lo, hi):
    xs = np.random.default_rng(0).uniform(lo, hi, 100_000)
    out = np.empty((4, xs.size))
    _evaluate(xs, out)
    assert _ulps(out[0], np.exp(xs)).max() <= 2.0
    assert _ulps(out[1], np.expm1(xs)).max() <= 4.0


@pytest.mark.parametrize("lo,hi", [(-1.0, 1.0), (0.0, 7.0), (0.0, 1000.0), (0.0, SINCOS_MAX)])
def test_sincos_within_2_ulp_of_libm_absolute(lo, hi):
    """Error measured in ulps of 1 near the zeros of sin/cos (absolute), of the value elsewhere."""
    xs = np.random.default_rng(1).uniform(lo, hi, 100_000)
    out = np.empty((4, xs.size))
    _evaluate(xs, out)
    for got, want in ((out[2], np.sin(xs)), (out[3], np.cos(xs))):
        scale = np.maximum(np.abs(want), 2.0 ** -10)
        assert (np.abs(got - want) / np.spacing(scale)).max() <= 4.0


def test_special_values():
    xs = np.array([np.nan, np.inf, -np.inf, 710.0, -709.0, 0.0])
    out = np.empty((4, xs.size))
    _evaluate(xs, out)
    assert np.isnan(out[:, 0]).all()                       # NaN in, NaN out
    assert out[0, 1] == np.inf and out[0, 2] == 0.0 and out[0, 3] == np.inf and out[0, 4] == 0.0
    assert out[1, 2] == -1.0 and out[1, 5] == 0.0
    assert out[0, 5] == 1.0 and out[2, 5] == 0.0 and out[3, 5] == 1.0


def _libm_coefficients(vec, official):
    ref = vec.copy()
    for k in range(vec.shape[1]):
        _refresh_unit_libm(ref, official, k)
    return ref


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("official", [0, 1])
def test_refresh_matches_libm_and_lazy_path(dtype, official):
    cell = RTUCell(8, 64, dtype=dtype, seed=3)
    vec = cell.vec
    rng = np.random.default_rng(4)
    vec[layout.RTU_NU] = rng.uniform(-12.0, 3.0, 64)
    vec[layout.RTU_TH] = rng.uniform(-6.0, 9.0, 64)
    vec[layout.RTU_TH, :3] = [12.0, 20.0, np.nan]     # beyond the polynomial range: the libm fallback
    lazy = vec.copy()
    rtu_refresh_coefficients(vec, official)
    for k in range(64):
        _coefficients_row(lazy, k, official)
    np.testing.assert_array_equal(vec, lazy)     # the same code, the same bits
    want = _libm_coefficients(vec, official)
    rows = slice(layout.RTU_G, layout.RTU_DPHI_TH + 1)
    rtol = 1e-12 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(vec[rows, 3:], want[rows, 3:], rtol=rtol, atol=rtol * 1e-3)
    np.testing.assert_array_equal(vec[rows, :2], want[rows, :2])   # libm for theta > 1e5
    assert np.isnan(vec[layout.RTU_G, 2]) and np.isnan(vec[layout.RTU_PHI, 2])
    assert np.array_equal(vec[layout.RTU_SRC_NU], vec[layout.RTU_NU])

"""The float32 tanh is a rational approximation (controller.kernels.activation): check its error over
every float32 magnitude that matters, its limits, and NaN propagation."""
import numpy as np
import pytest

from controller.kernels.activation import apply_activation, lambert_tanh_coefficients
from controller.kernels.layout import ACT_IDENTITY, ACT_RELU, ACT_TANH


def _run(values, act, dtype):
    pre = np.ascontiguousarray(np.asarray(values, dtype).reshape(2, -1))
    out = np.empty_like(pre)
    apply_activation(pre, out, act)
    return pre, out


def test_float32_tanh_relative_error_is_a_few_ulp():
    grid = np.concatenate([np.linspace(-12, 12, 1_000_000), np.geomspace(1e-30, 12, 100_000),
                           -np.geomspace(1e-30, 12, 100_000)])
    pre, out = _run(grid, ACT_TANH, np.float32)
    exact = np.tanh(pre.astype(np.float64))
    rel = np.abs(out - exact) / np.maximum(np.abs(exact), np.finfo(np.float32).tiny)
    assert rel.max() < 1e-6   # float32 eps is 1.19e-7
    assert np.all(np.abs(out) <= 1.0)
    assert out.dtype == np.float32


def test_float32_tanh_limits_and_nan():
    pre, out = _run([np.inf, -np.inf, np.nan, 0.0, 50.0, -50.0], ACT_TANH, np.float32)
    assert out[0, 0] == 1.0 and out[0, 1] == -1.0 and np.isnan(out[0, 2])
    assert out[1, 0] == 0.0 and out[1, 1] == 1.0 and out[1, 2] == -1.0


def test_float64_tanh_is_within_three_ulp():
    grid = np.concatenate([np.linspace(-25, 25, 1_000_000), np.geomspace(1e-300, 25, 100_000),
                           -np.geomspace(1e-300, 25, 100_000)])
    pre, out = _run(grid, ACT_TANH, np.float64)
    exact = np.tanh(pre.astype(np.longdouble))
    rel = np.abs((out - exact) / exact)
    assert rel.max() < 7e-16   # float64 eps is 2.2e-16
    assert np.all(np.abs(out) <= 1.0)
    pre, out = _run([np.inf, -np.inf, np.nan, 0.0], ACT_TANH, np.float64)
    assert out[0, 0] == 1.0 and out[0, 1] == -1.0 and np.isnan(out[1, 0]) and out[1, 1] == 0.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_and_identity(dtype):
    x = np.array([-2.0, -0.0, 0.5, 3.0], dtype)
    pre, out = _run(x, ACT_RELU, dtype)
    np.testing.assert_array_equal(out, np.maximum(pre, 0))
    pre, out = _run(x, ACT_IDENTITY, dtype)
    np.testing.assert_array_equal(out, pre)


def test_lambert_coefficients_reproduce_tanh_in_float64():
    p, q = lambert_tanh_coefficients(6)
    y = np.linspace(-2.5, 2.5, 1001)
    s = y * y
    approx = y * np.polyval(p[::-1], s) / np.polyval(q[::-1], s)
    # truncation error of the depth-6 fraction on |y| <= 2.5 (the doublings then shrink it near |t| = 1)
    assert np.max(np.abs(approx - np.tanh(y)) / np.abs(np.tanh(y) + 1e-300)) < 2e-7

"""The numba kernels equal their NumPy twins step by step (controller.reference), including the
linear RTU's two-trace shortcut (design.md §3.3), the split forward / traces_grad path, float32 vs
float64, writes into the public parameter arrays, and NaN / inf inputs (the same NaN and inf positions
through the unchecked door; the checked door refuses them)."""
import platform

import numpy as np
import pytest

from controller.cells import LRUCell, RTUCell
from controller.reference import (
    lru_grad_reference, lru_reference_state, lru_step_reference, rtu_grad_reference,
    rtu_reference_state, rtu_step_reference,
)
from tests.controller.helpers import load_params, params_of, rel_err

VARIANTS = ["linear", "nonlinear"]
ACTIVATIONS = ["tanh", "relu", "identity"]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_rtu_kernel_equals_twin_every_step(variant, activation, rng):
    n, d = 7, 5
    cell = RTUCell(d, n, variant=variant, activation=activation, seed=5)
    params = params_of(cell)
    st = rtu_reference_state(n, d)
    for t in range(60):
        if t == 31:
            cell.reset()
            st = rtu_reference_state(n, d)
        x = rng.normal(size=d)
        dy = rng.normal(size=2 * n)
        y_ref, st = rtu_step_reference(params, st, x, variant, activation)
        g_ref, dx_ref = rtu_grad_reference(params, st, dy, variant, activation)
        y = cell.step(x)
        grads = cell.grad(dy, with_input_grad=True)
        assert rel_err(y, y_ref) < 1e-12, t
        np.testing.assert_allclose(cell.state, np.stack([st["c1"], st["c2"]]), rtol=1e-12, atol=1e-14)
        for name, trace in cell.traces.items():
            assert rel_err(trace, st[name]) < 1e-12, (t, name)
        for k in params:
            assert rel_err(grads[k], g_ref[k]) < 1e-11, (t, k)
        assert rel_err(cell.dx, dx_ref) < 1e-11, t


def test_linear_rtu_needs_only_two_w_traces(rng):
    """Linear RTU: the independently updated w2 traces are the w1 traces turned by 90 degrees
    (S1_w2 = -S2_w1, S2_w2 = S1_w1) at every step, so the kernel stores two (n, d) traces, not four."""
    n, d = 6, 4
    params = params_of(RTUCell(d, n, seed=7))
    st = rtu_reference_state(n, d)
    for _ in range(80):
        rtu_step_reference(params, st, rng.normal(size=d), "linear", "tanh")
        np.testing.assert_allclose(st["S1_w2"], -st["S2_w1"], rtol=0, atol=1e-13)
        np.testing.assert_allclose(st["S2_w2"], st["S1_w1"], rtol=0, atol=1e-13)
    assert np.abs(st["S1_w1"]).max() > 1e-2
    cell = RTUCell(d, n, seed=7)
    assert set(cell.traces) == {"S1_nu_log", "S2_nu_log", "S1_theta_log", "S2_theta_log",
                                "S1_w1", "S2_w1"}
    assert cell.mat.shape[0] == 6  # w1, w2, two gradients, two traces


def test_nonlinear_rtu_needs_all_four_w_traces(rng):
    """The shortcut does not hold for the non-linear RTU (f' differs between the two halves)."""
    n, d = 6, 4
    params = params_of(RTUCell(d, n, variant="nonlinear", seed=7))
    st = rtu_reference_state(n, d)
    for _ in range(20):
        rtu_step_reference(params, st, rng.normal(size=d), "nonlinear", "tanh")
    assert np.abs(st["S1_w2"] + st["S2_w1"]).max() > 1e-3
    assert RTUCell(d, n, variant="nonlinear").mat.shape[0] == 8


# the promise per platform (docs/cells.md): bit for bit on x86-64; elsewhere (aarch64) LLVM may fuse
# multiply-adds differently in the fused and split kernels, so the paths agree to a few float64 ulps
BIT_FOR_BIT = platform.machine().lower() in ("x86_64", "amd64")


def assert_same_path(actual, expected):
    if BIT_FOR_BIT:
        np.testing.assert_array_equal(actual, expected)
    else:
        np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("variant", VARIANTS)
def test_forward_then_traces_grad_equals_step_then_grad(variant, rng):
    """The act-then-learn split and the fused step give the results of step + grad: bit for bit on
    x86-64, to a few ulps on other platforms."""
    n, d = 9, 6
    a = RTUCell(d, n, variant=variant, seed=8)
    b = RTUCell(d, n, variant=variant, seed=8)
    c = RTUCell(d, n, variant=variant, seed=8)
    for _ in range(40):
        x = rng.normal(size=d)
        dy = rng.normal(size=2 * n)
        ya = a.step(x).copy()
        ga = {k: v.copy() for k, v in a.grad(dy, with_input_grad=True).items()}
        dxa = a.dx.copy()
        yb = b.forward(x).copy()
        gb = b.traces_grad(x, dy, with_input_grad=True)
        yc, gc = c.step_grad(x, dy, with_input_grad=True)
        assert_same_path(yb, ya)
        assert_same_path(yc, ya)
        assert_same_path(b.dx, dxa)
        assert_same_path(c.dx, dxa)
        for k in ga:
            assert_same_path(gb[k], ga[k])
            assert_same_path(gc[k], ga[k])


@pytest.mark.parametrize("variant", VARIANTS)
def test_float32_agrees_with_float64(variant, rng):
    """Same parameters in both precisions: outputs and gradients agree within float32 tolerance."""
    n, d = 32, 16
    c64 = RTUCell(d, n, variant=variant, dtype=np.float64, seed=9)
    c32 = RTUCell(d, n, variant=variant, dtype=np.float32, seed=9)
    load_params(c32, params_of(c64))
    for t in range(100):
        x = rng.normal(size=d)
        dy = rng.normal(size=2 * n)
        y64 = c64.step(x)
        y32 = c32.step(x.astype(np.float32))
        assert rel_err(y32, y64) < 1e-5, t
        g64 = c64.grad(dy)
        g32 = c32.grad(dy.astype(np.float32))
        for k in g64:
            assert g32[k].dtype == np.float32
            assert rel_err(g32[k], g64[k]) < 1e-4, (t, k)


def test_lru_kernel_equals_twin_every_step(rng):
    n, d, m = 7, 5, 3
    cell = LRUCell(d, n, n_out=m, seed=10)
    params = params_of(cell)
    st = lru_reference_state(n, d)
    for t in range(60):
        if t == 25:
            cell.reset()
            st = lru_reference_state(n, d)
        x = rng.normal(size=d)
        dy = rng.normal(size=m)
        y_ref, st = lru_step_reference(params, st, x)
        g_ref, dx_ref = lru_grad_reference(params, st, dy)
        y = cell.step(x)
        grads = cell.grad(dy, with_input_grad=True)
        assert rel_err(y, y_ref) < 1e-12
        tr = cell.traces
        assert rel_err(tr["e_B_re"] + 1j * tr["e_B_im"], st["e_B"]) < 1e-12
        assert rel_err(tr["e_lambda_re"] + 1j * tr["e_lambda_im"], st["e_lambda"]) < 1e-12
        for k in params:
            assert rel_err(grads[k], g_ref[k]) < 1e-11, (t, k)
        assert rel_err(cell.dx, dx_ref) < 1e-11


def test_lru_float32_agrees_with_float64(rng):
    c64 = LRUCell(8, 16, dtype=np.float64, seed=11)
    c32 = LRUCell(8, 16, dtype=np.float32, seed=11)
    load_params(c32, params_of(c64))
    for _ in range(100):
        x = rng.normal(size=8)
        dy = rng.normal(size=16)
        assert rel_err(c32.step(x.astype(np.float32)), c64.step(x)) < 1e-5
        g64 = c64.grad(dy)
        g32 = c32.grad(dy.astype(np.float32))
        for k in g64:
            assert rel_err(g32[k], g64[k]) < 1e-4, k


@pytest.mark.parametrize("cls", [RTUCell, LRUCell])
def test_writing_params_changes_the_cell(cls, rng):
    """params are live views: a write (including nu_log / theta_log, whose coefficients are cached)
    gives the same results as a cell built with those values."""
    a = cls(4, 5, seed=1)
    b = cls(4, 5, seed=2)
    assert not np.allclose(a.params["nu_log"], b.params["nu_log"])
    x = rng.normal(size=4)
    a.step(x)  # coefficients computed from the old values
    a.reset()
    load_params(a, params_of(b))
    for _ in range(5):
        x = rng.normal(size=4)
        np.testing.assert_array_equal(a.step(x), b.step(x))


def test_params_have_the_public_names_and_shapes():
    cell = RTUCell(3, 5)
    assert {k: v.shape for k, v in cell.params.items()} == {
        "nu_log": (5,), "theta_log": (5,), "w1": (5, 3), "w2": (5, 3)}
    y = cell.step(np.ones(3))
    assert y.shape == (10,)
    g = cell.grad(np.ones(10))
    assert {k: v.shape for k, v in g.items()} == {k: v.shape for k, v in cell.params.items()}
    cell.reset()
    assert not cell.state.any() and not any(t.any() for t in cell.traces.values())


def test_output_order_is_real_parts_then_imaginary_parts():
    """y = [f(c1) for units 0..n-1, f(c2) for units 0..n-1] (design.md §4.1)."""
    cell = RTUCell(2, 3, activation="identity")
    y = cell.step(np.array([0.3, -0.7]))
    np.testing.assert_array_equal(y[:3], cell.state[0])
    np.testing.assert_array_equal(y[3:], cell.state[1])


@pytest.mark.parametrize("variant", VARIANTS)
def test_numpy_baseline_equals_kernel(variant, rng):
    """The benchmark's NumPy baseline computes the same step as the kernel."""
    from controller.reference import NumpyRTUStep

    cell = RTUCell(5, 4, variant=variant, seed=12)
    base = NumpyRTUStep(params_of(cell), variant)
    for _ in range(30):
        x = rng.normal(size=5)
        dy = rng.normal(size=8)
        y_ref, g_ref = base.step_grad(x, dy)
        y, grads = cell.step_grad(x, dy)
        assert rel_err(y, y_ref) < 1e-12
        for k in g_ref:
            assert rel_err(grads[k], g_ref[k]) < 1e-11, k


IEEE_KINDS = (("NaN", np.isnan), ("+inf", np.isposinf), ("-inf", np.isneginf))


def _assert_same_values(got, want, what, kinds=IEEE_KINDS):
    """Same NaN, +inf and -inf positions (``kinds``), and the finite values within 1e-10 relative."""
    got, want = np.asarray(got), np.asarray(want)
    for name, test in kinds:
        np.testing.assert_array_equal(test(got), test(want), err_msg=f"{what}: {name} positions differ")
    finite = np.isfinite(want)
    if finite.any():
        assert rel_err(got[finite], want[finite]) < 1e-10, what


NON_FINITE = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf}


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("bad", list(NON_FINITE))
@pytest.mark.parametrize("into", ["x", "dy"])
def test_rtu_kernel_and_twin_agree_on_non_finite_inputs(variant, activation, bad, into, rng):
    """A NaN or ±inf in the input (or in dL/dy) through the unchecked door: the kernel gives NaN and inf
    where the twin does (restricted fastmath keeps IEEE semantics), at that step and the ones after."""
    n, d = 5, 4
    cell = RTUCell(d, n, variant=variant, activation=activation, seed=5)
    params = params_of(cell)
    st = rtu_reference_state(n, d)
    seen_non_finite = False
    for t in range(10):
        x = rng.normal(size=d)
        dy = rng.normal(size=2 * n)
        if t == 4:
            (x if into == "x" else dy)[1] = NON_FINITE[bad]
        y_ref, st = rtu_step_reference(params, st, x, variant, activation)
        g_ref, dx_ref = rtu_grad_reference(params, st, dy, variant, activation)
        y = cell.step_unchecked(x)
        grads = cell.grad_unchecked(dy, with_input_grad=True)
        _assert_same_values(y, y_ref, f"t={t} y")
        _assert_same_values(cell.state, np.stack([st["c1"], st["c2"]]), f"t={t} state")
        for name, trace in cell.traces.items():
            _assert_same_values(trace, st[name], f"t={t} {name}")
        for k in params:
            _assert_same_values(grads[k], g_ref[k], f"t={t} grad {k}")
        _assert_same_values(cell.dx, dx_ref, f"t={t} dx")
        seen_non_finite |= not (np.isfinite(y).all() and all(np.isfinite(g).all() for g in grads.values()))
    assert seen_non_finite, "the injected value reached neither the output nor the gradient"


@pytest.mark.parametrize("bad", list(NON_FINITE))
@pytest.mark.parametrize("into", ["x", "dy"])
def test_lru_kernel_and_twin_agree_on_non_finite_inputs(bad, into, rng):
    """As for the RTU, except that with ±inf the twin's complex products (inf · 0 in an imaginary part) may
    give NaN where the kernel's real arithmetic keeps ±inf: then the same entries are non-finite."""
    kinds = IEEE_KINDS if bad == "nan" else (("non-finite", lambda a: ~np.isfinite(a)),)
    n, d, m = 5, 4, 3
    cell = LRUCell(d, n, n_out=m, seed=10)
    params = params_of(cell)
    st = lru_reference_state(n, d)
    for t in range(10):
        x = rng.normal(size=d)
        dy = rng.normal(size=m)
        if t == 4:
            (x if into == "x" else dy)[1] = NON_FINITE[bad]
        y_ref, st = lru_step_reference(params, st, x)
        g_ref, dx_ref = lru_grad_reference(params, st, dy)
        y = cell.step_unchecked(x)
        grads = cell.grad_unchecked(dy, with_input_grad=True)
        _assert_same_values(y, y_ref, f"t={t} y", kinds)
        tr = cell.traces
        for name in ("e_lambda", "e_gamma", "e_B"):
            _assert_same_values(tr[f"{name}_re"], st[name].real, f"t={t} {name} re", kinds)
            _assert_same_values(tr[f"{name}_im"], st[name].imag, f"t={t} {name} im", kinds)
        for k in params:
            _assert_same_values(grads[k], g_ref[k], f"t={t} grad {k}", kinds)
        _assert_same_values(cell.dx, dx_ref, f"t={t} dx", kinds)


@pytest.mark.parametrize("bad", list(NON_FINITE))
def test_the_checked_door_refuses_non_finite_inputs_and_keeps_the_state(bad):
    """The guarded behaviour: step/grad with a NaN or inf raise before any kernel runs."""
    for cell in (RTUCell(4, 3, seed=1), LRUCell(4, 3, seed=1)):
        cell.step(np.ones(4))
        state = cell.state.copy()
        x = np.ones(4)
        x[2] = NON_FINITE[bad]
        with pytest.raises(ValueError, match="expected finite values"):
            cell.step(x)
        np.testing.assert_array_equal(cell.state, state)

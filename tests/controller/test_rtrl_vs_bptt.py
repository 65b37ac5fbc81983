"""RTRL is exact: with the parameters held fixed, the per-step RTRL gradients summed over a sequence
equal torch-autograd BPTT through the whole sequence (design.md §3.3), in float64 to 1e-9 relative, for
every parameter, with an episode reset inside the sequence."""
import numpy as np
import pytest

from controller.cells import LRUCell, RTUCell
from controller.reference_torch import lru_bptt_torch, rtu_bptt_torch
from tests.controller.helpers import params_of, rel_err

pytest.importorskip("torch")

T = 120
RESET_AT = (0, 57)   # state and traces are zeroed before these steps


def _sequence(rng, d, m):
    xs = rng.normal(size=(T, d))
    targets = rng.normal(size=(T, m))
    resets = np.zeros(T, bool)
    resets[list(RESET_AT)] = True
    return xs, targets, resets


def _rtrl_sum(cell, xs, targets, resets):
    total = {k: np.zeros(v.shape) for k, v in cell.params.items()}
    loss = 0.0
    for t in range(T):
        if resets[t]:
            cell.reset()
        y = cell.step(xs[t])
        dy = y - targets[t]
        loss += 0.5 * float(dy @ dy)
        for k, g in cell.grad(dy).items():
            total[k] += g
    return loss, total


@pytest.mark.parametrize("variant", ["linear", "nonlinear"])
@pytest.mark.parametrize("activation", ["tanh", "relu", "identity"])
def test_rtu_rtrl_equals_bptt(variant, activation, rng):
    n, d = 6, 4
    cell = RTUCell(d, n, variant=variant, activation=activation, dtype=np.float64, seed=3)
    xs, targets, resets = _sequence(rng, d, 2 * n)
    params = params_of(cell)
    loss_bptt, grads_bptt = rtu_bptt_torch(params, xs, targets, resets, variant, activation)
    loss_rtrl, grads_rtrl = _rtrl_sum(cell, xs, targets, resets)
    assert loss_rtrl == pytest.approx(loss_bptt, rel=1e-12)
    for k in params:
        assert np.abs(grads_bptt[k]).max() > 1e-6, f"{k}: reference gradient is trivially zero"
        err = rel_err(grads_rtrl[k], grads_bptt[k])
        assert err < 1e-9, f"{variant}/{activation} {k}: relative error {err:.2e}"


def test_rtu_long_memory_units_are_exact(rng):
    """Units with r close to 1 (long memory, eta -> 0, large d eta/d nu) still match BPTT."""
    n, d = 4, 3
    cell = RTUCell(d, n, dtype=np.float64, seed=1, r_min=0.99, r_max=0.9999)
    xs, targets, resets = _sequence(rng, d, 2 * n)
    params = params_of(cell)
    _, grads_bptt = rtu_bptt_torch(params, xs, targets, resets)
    _, grads_rtrl = _rtrl_sum(cell, xs, targets, resets)
    for k in params:
        assert rel_err(grads_rtrl[k], grads_bptt[k]) < 1e-9, k


def test_official_theta_grad_drops_the_factor_theta(rng):
    """official_theta_grad=True reproduces the official code: d/dtheta_log without the factor theta."""
    n, d = 5, 3
    exact = RTUCell(d, n, seed=2)
    official = RTUCell(d, n, seed=2, official_theta_grad=True)
    xs, targets, resets = _sequence(rng, d, 2 * n)
    _, g_exact = _rtrl_sum(exact, xs, targets, resets)
    _, g_official = _rtrl_sum(official, xs, targets, resets)
    theta = np.exp(exact.params["theta_log"])
    assert rel_err(g_official["theta_log"] * theta, g_exact["theta_log"]) < 1e-10
    assert rel_err(g_official["theta_log"], g_exact["theta_log"]) > 1e-3  # genuinely different
    for k in ("nu_log", "w1", "w2"):
        np.testing.assert_array_equal(g_official[k], g_exact[k])


def test_lru_rtrl_equals_bptt(rng):
    n, d, m = 6, 4, 3
    cell = LRUCell(d, n, n_out=m, dtype=np.float64, seed=4)
    xs, targets, resets = _sequence(rng, d, m)
    params = params_of(cell)
    loss_bptt, grads_bptt = lru_bptt_torch(params, xs, targets, resets)
    loss_rtrl, grads_rtrl = _rtrl_sum(cell, xs, targets, resets)
    assert loss_rtrl == pytest.approx(loss_bptt, rel=1e-12)
    for k in params:
        assert np.abs(grads_bptt[k]).max() > 1e-6, k
        err = rel_err(grads_rtrl[k], grads_bptt[k])
        assert err < 1e-9, f"LRU {k}: relative error {err:.2e}"

"""Eligibility traces, TD(λ) and ObGD against analytic oracles (design.md §3.5)."""
import numpy as np
import pytest

from controller.kernels.traces import eligibility_accumulate, obgd_apply, obgd_step_size
from controller.reference import td_lambda_returns

EMPTY = np.zeros(0)


def _acc(decay, g, z):
    return eligibility_accumulate(decay, g, z, EMPTY, EMPTY, EMPTY, EMPTY, EMPTY, EMPTY)


def test_constant_gradient_gives_geometric_trace():
    z = np.zeros(3)
    g = np.array([1.0, -2.0, 0.5])
    d = 0.99 * 0.8
    for _ in range(25):
        l1 = _acc(d, g, z)
    expect = g * (1 - d ** 25) / (1 - d)
    np.testing.assert_allclose(z, expect, rtol=1e-13)
    assert l1 == pytest.approx(np.abs(expect).sum(), rel=1e-13)


@pytest.mark.parametrize("lam", [0.0, 0.5, 0.8, 1.0])
def test_td_lambda_on_a_chain_equals_the_lambda_return_forward_view(lam):
    """With weights held fixed over an episode, the accumulated TD(λ) update Σ δ_t z_t equals the
    forward view Σ (G^λ_t − V(s_t)) ∇V(s_t): an exact identity, checked on a 7-state chain with
    tabular (one-hot) features and known rewards."""
    gamma = 0.9
    n = 7
    w = np.linspace(-1.0, 2.0, n)             # V(s) = w[s]
    states = np.arange(n)                      # walk left to right, terminate after the last state
    rewards = np.array([0.0, 1.0, 0.0, -2.0, 0.5, 0.0, 3.0])
    z = np.zeros(n)
    total = np.zeros(n)
    for t, s in enumerate(states):
        x = np.eye(n)[s]
        _acc(gamma * lam, x, z)
        v_next = w[states[t + 1]] if t + 1 < n else 0.0
        delta = rewards[t] + gamma * v_next - w[s]
        total += delta * z
    g_lambda = td_lambda_returns(rewards, w[states], gamma, lam)
    forward_view = np.zeros(n)
    for t, s in enumerate(states):
        forward_view[s] += g_lambda[t] - w[s]
    np.testing.assert_allclose(total, forward_view, rtol=1e-12, atol=1e-12)


def test_obgd_step_never_exceeds_its_bound(rng):
    """α_eff ≤ α and α_eff κ max(|δ|, 1) ||z||₁ ≤ 1: the update's L1 size α_eff |δ| ||z||₁ ≤ 1/κ."""
    for _ in range(2000):
        alpha = 10 ** rng.uniform(-3, 1)
        kappa = rng.uniform(0.5, 4)
        delta = rng.standard_normal() * 10 ** rng.uniform(-3, 3)
        z_l1 = 10 ** rng.uniform(-4, 4)
        a = obgd_step_size(alpha, kappa, delta, z_l1)
        assert 0 < a <= alpha
        assert a * kappa * max(abs(delta), 1.0) * z_l1 <= 1.0 + 1e-12 or a == alpha
        assert a * abs(delta) * z_l1 <= max(1.0 / kappa, alpha * abs(delta) * z_l1) + 1e-12
        if alpha * kappa * max(abs(delta), 1.0) * z_l1 > 1.0:
            assert a * abs(delta) * z_l1 <= 1.0 / kappa + 1e-12


def test_obgd_apply_moves_parameters_along_the_trace():
    p = np.array([1.0, 2.0])
    z = np.array([0.5, -1.0])
    obgd_apply(0.1, z, p, EMPTY, EMPTY, EMPTY, EMPTY, EMPTY, EMPTY)
    np.testing.assert_allclose(p, [1.05, 1.9])

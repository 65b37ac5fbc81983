"""Policy heads (controller/kernels/heads.py) against torch autograd: the clipped (censored) Gaussian
log-likelihood of the credited action and its gradient with respect to the head outputs."""
import math

import numpy as np
import pytest

from controller.kernels.dense import LAY_A_DOUT, LAY_A_OUT, LAY_SIZE
from controller.kernels.heads import SIGMA_MIN, gaussian_dout, log_upper_tail

torch = pytest.importorskip("torch")


def _torch_reference(mu, pre, action, low, high, ent_coef):
    """log pi(action) of the Gaussian clipped to [low, high] and d/d(mu, pre) of log pi + c sum log sigma."""
    mu_t = torch.tensor(mu, dtype=torch.float64, requires_grad=True)
    pre_t = torch.tensor(pre, dtype=torch.float64, requires_grad=True)
    sigma = torch.nn.functional.softplus(pre_t) + SIGMA_MIN
    terms = []
    for i, (a, lo, hi) in enumerate(zip(action, low, high)):   # branch in Python: torch.where would
        if a >= hi:                                             # give NaN gradients for infinite bounds
            terms.append(torch.special.log_ndtr(-(hi - mu_t[i]) / sigma[i]))   # log P(sample >= high)
        elif a <= lo:
            terms.append(torch.special.log_ndtr((lo - mu_t[i]) / sigma[i]))    # log P(sample <= low)
        else:
            terms.append(torch.distributions.Normal(mu_t[i], sigma[i]).log_prob(torch.tensor(a, dtype=torch.float64)))
    logp = torch.stack(terms).sum()
    (logp + ent_coef * torch.log(sigma).sum()).backward()
    return logp.item(), mu_t.grad.numpy(), pre_t.grad.numpy()


def _kernel(mu, pre, action, low, high, ent_coef):
    k = len(mu)
    lay = np.zeros(LAY_SIZE, np.int64)
    lay[LAY_A_OUT], lay[LAY_A_DOUT] = 0, 2 * k
    A = np.zeros(4 * k, np.float64)
    A[:k], A[k:2 * k] = mu, pre
    logp = gaussian_dout(A, lay, np.asarray(action, np.float64), np.asarray(low, np.float64),
                         np.asarray(high, np.float64), ent_coef)
    return logp, A[2 * k:3 * k], A[3 * k:4 * k]


@pytest.mark.parametrize("ent_coef", [0.0, 0.01, -0.01])
def test_clipped_gaussian_gradient_matches_autograd(ent_coef):
    """Inside the bounds, on each bound, beyond them (the mean outside the bounds too) and unbounded."""
    mu = [0.2, 1.8, -2.5, 0.9, -0.4, 0.3, 40.0]
    pre = [-1.0, -3.0, 0.5, -6.0, 2.0, 0.0, -2.0]
    low = [-1.0, -1.0, -1.0, -1.0, -1.0, -math.inf, -1.0]
    high = [1.0, 1.0, 1.0, 1.0, 1.0, math.inf, 1.0]
    action = [0.35, 1.0, -1.0, 1.0, -1.0, 2.7, 1.0]
    got = _kernel(mu, pre, action, low, high, ent_coef)
    want = _torch_reference(mu, pre, action, low, high, ent_coef)
    assert got[0] == pytest.approx(want[0], rel=1e-10)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got[2], want[2], rtol=1e-9, atol=1e-12)


def test_mean_far_beyond_a_bound_gives_bounded_scores():
    """The failure this head avoids: the mean 3 beyond the bound with sigma = 0.05. The Gaussian density at
    the bound would give dmu = 1200 and dsigma ~ 7e4; the censored likelihood gives ~0."""
    logp, dmu, dpre = _kernel([4.0], [-3.0], [1.0], [-1.0], [1.0], 0.0)
    assert abs(logp) < 1e-12 and abs(dmu[0]) < 1e-12 and abs(dpre[0]) < 1e-12


@pytest.mark.parametrize("u", [-40.0, -5.0, 0.0, 3.0, 12.0, 29.9, 30.1, 45.0, 300.0])
def test_log_upper_tail_against_log_ndtr(u):
    log_q, hazard = log_upper_tail(u)
    u_t = torch.tensor(-u, dtype=torch.float64, requires_grad=True)
    ref = torch.special.log_ndtr(u_t)
    ref.backward()
    assert log_q == pytest.approx(ref.item(), rel=1e-9, abs=1e-300)
    assert hazard == pytest.approx(u_t.grad.item(), rel=1e-6, abs=1e-300)  # d log Q(u)/d(-u) = phi/Q

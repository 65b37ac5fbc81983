"""Output heads of the actor: sample an action and write dL/dout for the credited action (design.md §3.5).

The actor's head output ``out`` lives in the network's activation array ``A`` at ``lay[LAY_A_OUT]``:

* Gaussian (Box actions, a dimensions): out[:a] = mean mu, out[a:2a] = pre-scale; sigma =
  softplus(pre) + ``SIGMA_MIN``. The sampled action is clipped to [low, high] and the clipped action is
  the one credited, under the distribution that clipping really produces (the clipped-action policy
  gradient, Fujita & Maeda 2018): a censored Gaussian, whose likelihood at an action on the upper
  bound is P(sample >= high) = Q((high - mu) / sigma) (lower bound: Phi((low - mu) / sigma)) and the
  Gaussian density inside. Crediting a bound with the Gaussian *density* instead gives score terms that
  grow like (high - mu)^2 / sigma^3 when the mean sits beyond the bound: the actor's trace then blows
  up, ObGD shrinks the step to nothing and learning stalls or collapses (design.md §3.6).
* Categorical (Discrete, k actions): out = logits.

``*_dout`` kernels write A[LAY_A_DOUT] = d/dout [log pi(a|s) + ent_coef * H(pi(.|s))], the direction the
actor's eligibility trace accumulates (ent_coef already carries sign(delta)), and return log pi(a|s).
Head arithmetic is float64 whatever the network's dtype (``np.float64(...)``: numba's ``float()`` of a
float32 stays float32). No separate twin: the policy gradients are checked through the agent tests (determinism, credited
action, ObGD bound) in tests/controller/test_agent.py.
"""
import math

import numpy as np

from controller.kernels.dense import LAY_A_DOUT, LAY_A_OUT
from controller.kernels.jit import exact

SIGMA_MIN = 1e-4
LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
SQRT_HALF = math.sqrt(0.5)
TAIL_ASYMPTOTIC = 30.0  # u beyond this: Q(u) from its asymptotic series (erfc underflows near 38)


@exact
def log_upper_tail(u):
    """(log Q(u), phi(u) / Q(u)) for the standard normal, Q = 1 - Phi: the log-likelihood of a sample
    censored at a bound u standard deviations above the mean, and its derivative -d/du. Stable for
    every finite u (asymptotic series above TAIL_ASYMPTOTIC)."""
    if u < TAIL_ASYMPTOTIC:
        q = 0.5 * math.erfc(u * SQRT_HALF)
        return math.log(q), INV_SQRT_2PI * math.exp(-0.5 * u * u) / q
    inv2 = 1.0 / (u * u)
    # Q(u) = phi(u) / u * (1 - 1/u^2 + 3/u^4 - 15/u^6 + 105/u^8 - ...), truncation < 1e-12 for u >= 30
    series = 1.0 + inv2 * (-1.0 + inv2 * (3.0 + inv2 * (-15.0 + inv2 * 105.0)))
    return -0.5 * u * u - math.log(u) - LOG_SQRT_2PI + math.log(series), u / series


@exact
def _softplus(x):
    if x > 0.0:
        return x + math.log1p(math.exp(-x))
    return math.log1p(math.exp(x))


@exact
def _sigmoid(x):
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


@exact
def gaussian_sample(A, lay, noise, low, high, action):
    """action[i] = clip(mu_i + sigma_i * noise[i], low[i], high[i]).

    A: network activations (reads OUT); noise: (a,) float64 standard normal draws; low, high: (a,)
    float64 bounds (may be +-inf); action: (a,) float64 out. Returns 1 if any value was not finite
    (then action holds the clipped mean, or 0 where the mean itself is not finite), else 0.
    """
    a = action.shape[0]
    base = lay[LAY_A_OUT]
    bad = 0
    for i in range(a):
        mu = np.float64(A[base + i])
        sigma = _softplus(np.float64(A[base + a + i])) + SIGMA_MIN
        v = mu + sigma * noise[i]
        if not math.isfinite(v):
            bad = 1
            v = mu if math.isfinite(mu) else 0.0
        action[i] = min(max(v, low[i]), high[i])
    return bad


@exact
def gaussian_dout(A, lay, action, low, high, ent_coef):
    """dL/dout of L = log pi(action) + ent_coef * sum(log sigma) (the Gaussian entropy up to a constant),
    pi the Gaussian clipped to [low, high] (see the module docstring): per dimension the density inside
    the bounds, Q((high - mu) / sigma) for an action at or above high, Phi((low - mu) / sigma) at or below
    low. action, low, high: (a,) float64 (bounds may be +-inf). Returns log pi(action)."""
    a = action.shape[0]
    base = lay[LAY_A_OUT]
    dbase = lay[LAY_A_DOUT]
    logp = 0.0
    for i in range(a):
        mu = np.float64(A[base + i])
        pre = np.float64(A[base + a + i])
        sigma = _softplus(pre) + SIGMA_MIN
        act = action[i]
        if act >= high[i]:
            u = (high[i] - mu) / sigma
            log_q, hazard = log_upper_tail(u)
            logp += log_q
            dmu = hazard / sigma
            dsigma = hazard * u / sigma
        elif act <= low[i]:
            v = (low[i] - mu) / sigma
            log_q, hazard = log_upper_tail(-v)     # Phi(v) = Q(-v)
            logp += log_q
            dmu = -hazard / sigma
            dsigma = -hazard * v / sigma
        else:
            z = (act - mu) / sigma
            logp += -0.5 * z * z - math.log(sigma) - LOG_SQRT_2PI
            dmu = z / sigma
            dsigma = (z * z - 1.0) / sigma
        A[dbase + i] = dmu
        A[dbase + a + i] = (dsigma + ent_coef / sigma) * _sigmoid(pre)
    return logp


@exact
def categorical_sample(A, lay, k, u):
    """Index drawn from softmax(out[:k]) by inverse CDF with u ~ U[0, 1). Non-finite logits -> -1."""
    base = lay[LAY_A_OUT]
    mx = -math.inf
    for j in range(k):
        v = np.float64(A[base + j])
        if not math.isfinite(v):
            return -1
        mx = max(mx, v)
    total = 0.0
    for j in range(k):
        total += math.exp(np.float64(A[base + j]) - mx)
    acc = 0.0
    target = u * total
    for j in range(k):
        acc += math.exp(np.float64(A[base + j]) - mx)
        if target < acc:
            return j
    return k - 1


@exact
def categorical_dout(A, lay, k, action, ent_coef):
    """dL/dlogits of L = log pi(action) + ent_coef * H(pi); returns log pi(action)."""
    base = lay[LAY_A_OUT]
    dbase = lay[LAY_A_DOUT]
    mx = -math.inf
    for j in range(k):
        mx = max(mx, np.float64(A[base + j]))
    total = 0.0
    for j in range(k):
        total += math.exp(np.float64(A[base + j]) - mx)
    log_total = math.log(total) + mx
    entropy = 0.0
    for j in range(k):
        lp = np.float64(A[base + j]) - log_total
        entropy -= math.exp(lp) * lp
    for j in range(k):
        lp = np.float64(A[base + j]) - log_total
        p = math.exp(lp)
        onehot = 1.0 if j == action else 0.0
        # dH/dlogit_j = -p_j (log p_j + H)
        A[dbase + j] = onehot - p - ent_coef * p * (lp + entropy)
    return np.float64(A[base + action]) - log_total

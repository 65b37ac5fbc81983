"""Eligibility traces and the ObGD bounded step (design.md §3.5; streaming deep RL's ``ObGD``).

A network's parameters live in up to four flat groups (dense layers, the cell's per-unit vectors, its
input matrices, the LRU's output matrix); each kernel takes the four (gradient or parameter, trace)
pairs at once so that one call covers a network. Unused groups are passed as empty arrays.

    z <- decay * z + g                (decay = gamma * lambda)       eligibility_accumulate
    M = alpha * kappa * max(|delta|, 1) * ||z||_1
    alpha_eff = alpha / max(M, 1)                                      obgd_step_size
    w <- w + alpha_eff * delta * z                                     obgd_apply

Checked against analytic oracles (geometric trace, the λ-return forward view on a chain, ObGD's bound)
in tests/controller/test_traces.py; ``obgd_step_size`` is the Python twin of
``agent_step._obgd_step``.
"""
from controller.kernels.jit import kernel


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
    (float64) over all of them."""
    return _accumulate(decay, g0, z0) + _accumulate(decay, g1, z1) + _accumulate(decay, g2, z2) \
        + _accumulate(decay, g3, z3)


@kernel
def _apply(step, z, p):
    for i in range(p.shape[0]):
        p[i] += step * z[i]


@kernel
def obgd_apply(step, z0, p0, z1, p1, z2, p2, z3, p3):
    """p_i <- p_i + step * z_i for the four (z, p) pairs; step = alpha_eff * delta. p in/out."""
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
    """p <- p + step z, then z <- decay z + g, in one pass (the critic's update followed by its next
    gradient); returns ||z||_1. An empty g (traces kept elsewhere) applies only."""
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


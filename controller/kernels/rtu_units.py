"""Per-unit phases of an RTU learning step (``controller.kernels.rtu``), each one vectorised loop over the
units on hoisted row views of ``vec`` (``controller.kernels.layout``), with no branch on the variant
inside a loop: such a branch lets the code numba compiles and the code it loads from its cache round
differently (tests/controller/test_cache_determinism.py).
"""
from numba import njit

from controller.kernels.activation import activation_slope as _activation_slope
from controller.kernels.jit import KERNEL_OPTIONS, kernel
from controller.kernels.layout import (
    RTU_C1, RTU_C2, RTU_D1, RTU_D2, RTU_DETA_NU, RTU_DG_NU, RTU_DG_TH, RTU_DPHI_NU, RTU_DPHI_TH, RTU_ETA,
    RTU_FP1, RTU_FP2, RTU_G, RTU_PC1, RTU_PC2, RTU_PHI, RTU_Q1, RTU_Q2, RTU_S1_NU, RTU_S1_TH, RTU_S2_NU,
    RTU_S1_W1, RTU_S1_W2, RTU_S2_TH, RTU_S2_W1, RTU_S2_W2, RTU_U1, RTU_U2, RTU_Y1, RTU_Y2, VARIANT_LINEAR,
)

# scalar helpers inlined into the caller's numba IR (no call, the caller's loop vectorises as written out)
inline = njit(inline="always", **KERNEL_OPTIONS)


@inline
def rotate(g, phi, re, im):
    """(g + iφ)(re + i·im) as (real part, imaginary part): a product with the unit's λ = g + iφ or with
    one of its derivatives (design.md §3.2-3.3)."""
    return g * re - phi * im, g * im + phi * re


@inline
def nonlinear_w_traces(vec, mat, j, k, xj):
    """Update the non-linear RTU's four w traces of unit k, input j (design.md §3.3), in place:
    S_w1 <- f' (λ S_w1 + η x_j), S_w2 <- f' (λ S_w2 + i η x_j), per component f'(a1), f'(a2); every old
    trace is read before any is written. Returns the new (S1_w1, S2_w1, S1_w2, S2_w2)."""
    g = vec[RTU_G, k]
    phi = vec[RTU_PHI, k]
    ex = vec[RTU_ETA, k] * xj
    a1, a2 = rotate(g, phi, mat[RTU_S1_W1, j, k], mat[RTU_S2_W1, j, k])
    b1, b2 = rotate(g, phi, mat[RTU_S1_W2, j, k], mat[RTU_S2_W2, j, k])
    fp1 = vec[RTU_FP1, k]
    fp2 = vec[RTU_FP2, k]
    s11 = fp1 * (a1 + ex)
    s21 = fp2 * a2
    s12 = fp1 * b1
    s22 = fp2 * (b2 + ex)
    mat[RTU_S1_W1, j, k] = s11
    mat[RTU_S2_W1, j, k] = s21
    mat[RTU_S1_W2, j, k] = s12
    mat[RTU_S2_W2, j, k] = s22
    return s11, s21, s12, s22


@kernel
def _rtu_slopes(vec, variant, act):
    """Rows FP1, FP2 = f'(a_t) of the last forward: 1 for the linear RTU (y = f(c) there, c = a);
    the activation's slope at c_t = f(a_t) for the non-linear RTU, where f' scales the whole RTRL
    bracket (design.md §6 item 1). In place."""
    n = vec.shape[1]
    one = vec.dtype.type(1.0)
    fp1_r = vec[RTU_FP1]
    fp2_r = vec[RTU_FP2]
    if variant == VARIANT_LINEAR:
        for k in range(n):
            fp1_r[k] = one
            fp2_r[k] = one
    else:
        c1_r = vec[RTU_C1]
        c2_r = vec[RTU_C2]
        for k in range(n):
            fp1_r[k] = _activation_slope(c1_r[k], one, act)
            fp2_r[k] = _activation_slope(c2_r[k], one, act)


@kernel
def _rtu_deltas(dy, vec, variant, act):
    """Rows D1, D2 = dL/dc_t and Q1, Q2 = eta dL/da_t (the one-step path to the input) from
    dy: (2n,) = dL/dy_t, for the state the last forward left; needs rows FP (``_rtu_slopes``). In place."""
    n = vec.shape[1]
    one = vec.dtype.type(1.0)
    fp1_r = vec[RTU_FP1]
    fp2_r = vec[RTU_FP2]
    eta_r = vec[RTU_ETA]
    d1_r = vec[RTU_D1]
    d2_r = vec[RTU_D2]
    q1_r = vec[RTU_Q1]
    q2_r = vec[RTU_Q2]
    if variant == VARIANT_LINEAR:
        y1_r = vec[RTU_Y1]
        y2_r = vec[RTU_Y2]
        for k in range(n):
            # y = f(c): delta = dy * f'(c), read from the output; dL/da = delta since c = a.
            d1 = dy[k] * _activation_slope(y1_r[k], one, act)
            d2 = dy[n + k] * _activation_slope(y2_r[k], one, act)
            d1_r[k] = d1
            d2_r[k] = d2
            q1_r[k] = eta_r[k] * d1
            q2_r[k] = eta_r[k] * d2
    else:
        for k in range(n):
            d1 = dy[k]  # y = c: delta = dy
            d2 = dy[n + k]
            d1_r[k] = d1
            d2_r[k] = d2
            q1_r[k] = eta_r[k] * (d1 * fp1_r[k])
            q2_r[k] = eta_r[k] * (d2 * fp2_r[k])


@kernel
def _rtu_unit_traces(vec):
    """RTRL update of the per-unit nu/theta traces (rows S1_NU..S2_TH) for the last forward, from the
    saved c_{t-1} (PC), u_t (U), f'(a_t) (FP, 1 for the linear RTU) and the coefficients. In place."""
    n = vec.shape[1]
    g_r = vec[RTU_G]
    phi_r = vec[RTU_PHI]
    pc1_r = vec[RTU_PC1]
    pc2_r = vec[RTU_PC2]
    u1_r = vec[RTU_U1]
    u2_r = vec[RTU_U2]
    fp1_r = vec[RTU_FP1]
    fp2_r = vec[RTU_FP2]
    s1n_r = vec[RTU_S1_NU]
    s2n_r = vec[RTU_S2_NU]
    s1t_r = vec[RTU_S1_TH]
    s2t_r = vec[RTU_S2_TH]
    dgn_r = vec[RTU_DG_NU]
    dpn_r = vec[RTU_DPHI_NU]
    den_r = vec[RTU_DETA_NU]
    dgt_r = vec[RTU_DG_TH]
    dpt_r = vec[RTU_DPHI_TH]
    for k in range(n):
        g = g_r[k]
        phi = phi_r[k]
        c1 = pc1_r[k]
        c2 = pc2_r[k]
        dg = dgn_r[k]
        dp = dpn_r[k]
        jn1 = dg * c1 - dp * c2 + den_r[k] * u1_r[k]
        jn2 = dg * c2 + dp * c1 + den_r[k] * u2_r[k]
        dg = dgt_r[k]
        dp = dpt_r[k]
        jt1 = dg * c1 - dp * c2
        jt2 = dg * c2 + dp * c1
        sn1 = s1n_r[k]
        sn2 = s2n_r[k]
        st1 = s1t_r[k]
        st2 = s2t_r[k]
        # f' = 1 for the linear RTU (exact); no branch on the variant here (module docstring)
        fp1 = fp1_r[k]
        fp2 = fp2_r[k]
        s1n_r[k] = fp1 * (g * sn1 - phi * sn2 + jn1)
        s2n_r[k] = fp2 * (g * sn2 + phi * sn1 + jn2)
        s1t_r[k] = fp1 * (g * st1 - phi * st2 + jt1)
        s2t_r[k] = fp2 * (g * st2 + phi * st1 + jt2)

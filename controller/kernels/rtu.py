"""RTU forward step, exact RTRL trace update and gradient contraction (design.md §3.2-3.3, docs/rtu_math.md).

All kernels work in place on the two packed arrays of one RTU layer (row and slab indices in
``controller.kernels.layout``):

* ``vec``: (RTU_VEC_ROWS, n) float32 or float64, C-contiguous: parameters nu_log and theta_log, the
  per-unit coefficients (g, phi, eta and their derivatives), state, output, saved forward values, the
  nu/theta traces and gradients.
* ``mat``: (6 or 8, d, n), same dtype, input-major (slab[j, k] is unit k, input j; the public (n, d)
  arrays are the views slab.T): w1, w2, their gradients, and the w traces. The linear RTU keeps
  only S1_w1 and S2_w1, because for it S_w2 = i * S_w1 as complex numbers (S1_w2 = -S2_w1,
  S2_w2 = S1_w1); the non-linear RTU keeps all four.

Integer flags: ``variant`` (layout.VARIANT_*), ``act`` (layout.ACT_*), ``official`` (1 = the official JAX
code's theta derivative, without the factor theta), ``want_dx`` (1 = also write dL/dx into ``dx``).

Every public kernel is one call of ``_rtu_pass``, which is written as a single function on purpose:
numba does not inline helpers that take arrays, and each such call costs reference-count traffic that
made a per-unit helper design 3-4x slower. Inside, a step streams each slab once: the products w x
(inputs in the outer loop, four at a time; units in the inner, vectorised loop; w1 and w2 in separate
inner loops, which halves the streams in flight and made the forward 12 % faster), the activation of
all 2n values at once (so that the float32 tanh vectorises), short per-unit loops over hoisted row
views for the nu/theta traces and the deltas, then one sweep over the trace and gradient slabs.
Nothing is allocated. The step is bound by cache bandwidth: see docs/benchmarks.md.

Every per-unit loop works on hoisted row views and has no branch on the variant: LLVM then vectorises
it (a single per-unit loop doing everything ran scalar and cost 1.1 µs of a 5 µs step), and, as found
the hard way, a loop-invariant branch on the variant inside a vectorised loop made the code numba
compiled and the code it later loaded from its cache round differently
(tests/controller/test_cache_determinism.py).

The coefficients of unit k are recomputed inside the pass only when nu_log[k] or theta_log[k] differ
from the values they were computed from, so writing into the parameters is always honoured and costs
nothing when nothing changed; ``rtu_refresh_coefficients`` recomputes all units off the action path in
one vectorised loop (branch-free exp/sin/cos of ``controller.kernels.elementary``; both routes give the
same bits).

Compile options (restricted fastmath that keeps NaN/inf semantics, numpy error model): ``controller.kernels.jit``.
Reference twins: ``controller.reference.rtu_step_reference`` / ``rtu_grad_reference``.
"""
import math

import numpy as np
from numba import njit

from controller.kernels.activation import activation_slope as _activation_slope
from controller.kernels.activation import apply_activation
from controller.kernels.elementary import ELEMENTARY_OPTIONS, SINCOS_MAX, exp_f64, expm1_f64, sincos_f64
from controller.kernels.jit import exact, kernel
from controller.kernels.layout import (
    RTU_C1, RTU_C2, RTU_D1, RTU_D2, RTU_DETA_NU, RTU_DG_NU, RTU_DG_TH, RTU_DPHI_NU, RTU_DPHI_TH,
    RTU_ETA, RTU_FP1, RTU_FP2, RTU_G, RTU_GR_NU, RTU_GR_TH, RTU_GW1, RTU_GW2, RTU_NU, RTU_PC1, RTU_PC2, RTU_PHI, RTU_Q1, RTU_Q2,
    RTU_S1_NU, RTU_S1_TH, RTU_S1_W1, RTU_S1_W2, RTU_S2_NU, RTU_S2_TH, RTU_S2_W1, RTU_S2_W2,
    RTU_SRC_NU, RTU_SRC_TH, RTU_TH, RTU_U1, RTU_U2, RTU_W1, RTU_W2, RTU_Y1, RTU_Y2, VARIANT_LINEAR,
)

ETA_EPS = 1e-8  # added to eta = sqrt(1 - r^2) so the input scale never reaches 0 (design.md §6 item 3)
THETA_LOG_MAX = math.log(SINCOS_MAX)  # phases theta = exp(theta_log) beyond SINCOS_MAX use libm

coefficient_kernel = njit(**ELEMENTARY_OPTIONS)


@coefficient_kernel
def _refresh_units(vec, official, start, stop):
    """Recompute the coefficients of units start..stop-1 (rows G..DPHI_TH, and SRC_NU/SRC_TH := the
    parameters they come from), in float64, design.md §3.1 and §3.3:
    g = r cos θ, φ = r sin θ, η = sqrt(1 − r²) + ε with r = exp(−exp(ν)), θ = exp(ϑ), and their ν/ϑ
    derivatives (``official``: the ϑ derivatives without the factor θ).

    The main loop has no calls and no branches (``controller.kernels.elementary``), so LLVM vectorises
    it; it must stay written out here: a helper returning the eight values as a tuple is not inlined and
    made the loop 8x slower. Units whose ϑ is beyond THETA_LOG_MAX (or not finite) are redone with libm.
    """
    nu_log = vec[RTU_NU]
    theta_log = vec[RTU_TH]
    g_row = vec[RTU_G]
    phi_row = vec[RTU_PHI]
    eta_row = vec[RTU_ETA]
    dg_nu = vec[RTU_DG_NU]
    dphi_nu = vec[RTU_DPHI_NU]
    deta_nu = vec[RTU_DETA_NU]
    dg_th = vec[RTU_DG_TH]
    dphi_th = vec[RTU_DPHI_TH]
    src_nu = vec[RTU_SRC_NU]
    src_th = vec[RTU_SRC_TH]
    for k in range(start, stop):
        nu = np.float64(nu_log[k])
        e_nu = exp_f64(nu)
        r = exp_f64(-e_nu)
        theta = exp_f64(np.float64(theta_log[k]))
        sin_t, cos_t = sincos_f64(theta)
        g = r * cos_t
        phi = r * sin_t
        root = math.sqrt(-expm1_f64(-2.0 * e_nu))  # 1 - r^2 without cancellation when r -> 1
        g_row[k] = g
        phi_row[k] = phi
        eta_row[k] = root + ETA_EPS
        dg_nu[k] = -e_nu * g
        dphi_nu[k] = -e_nu * phi
        deta_nu[k] = e_nu * r * r / root
        dg_th[k] = -phi if official else -theta * phi
        dphi_th[k] = g if official else theta * g
        src_nu[k] = nu_log[k]
        src_th[k] = theta_log[k]
    for k in range(start, stop):
        if not theta_log[k] <= THETA_LOG_MAX:
            _refresh_unit_libm(vec, official, k)


@exact
def _refresh_unit_libm(vec, official, k):
    """``_refresh_units`` for one unit with libm's exp/cos/sin (phases beyond the polynomial range)."""
    e_nu = math.exp(np.float64(vec[RTU_NU, k]))
    r = math.exp(-e_nu)
    theta = math.exp(np.float64(vec[RTU_TH, k]))
    g = r * math.cos(theta)
    phi = r * math.sin(theta)
    root = math.sqrt(-math.expm1(-2.0 * e_nu))
    vec[RTU_G, k] = g
    vec[RTU_PHI, k] = phi
    vec[RTU_ETA, k] = root + ETA_EPS
    vec[RTU_DG_NU, k] = -e_nu * g
    vec[RTU_DPHI_NU, k] = -e_nu * phi
    vec[RTU_DETA_NU, k] = e_nu * r * r / root
    vec[RTU_DG_TH, k] = -phi if official else -theta * phi
    vec[RTU_DPHI_TH, k] = g if official else theta * g


@exact
def _coefficients_row(vec, k, official):
    """Recompute unit k's coefficients (the lazy path of the forward pass; the same code, hence the same
    bits, as ``rtu_refresh_coefficients``)."""
    _refresh_units(vec, official, k, k + 1)


@exact
def rtu_refresh_coefficients(vec, official):
    """Recompute the coefficients of every unit (the agent's parameters change on every update).

    vec: (RTU_VEC_ROWS, n) in/out. official: int flag. Call after a parameter update, off the action
    path. One vectorised pass: ≈ 1.3 µs for n = 192 where six libm calls per unit took ≈ 4.6 µs.
    """
    _refresh_units(vec, official, 0, vec.shape[1])


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
        # f' = 1 for the linear RTU (exact). No branch on the variant inside the loop: with one, the
        # code numba compiled and the code it loaded from its cache rounded differently.
        fp1 = fp1_r[k]
        fp2 = fp2_r[k]
        s1n_r[k] = fp1 * (g * sn1 - phi * sn2 + jn1)
        s2n_r[k] = fp2 * (g * sn2 + phi * sn1 + jn2)
        s1t_r[k] = fp1 * (g * st1 - phi * st2 + jt1)
        s2t_r[k] = fp2 * (g * st2 + phi * st1 + jt2)


@kernel
def _rtu_pass(x, dy, vec, mat, dx, variant, act, official, do_forward, do_traces, do_grad, want_dx,
              acc_grad, gdecay):
    """The one RTU kernel; the public kernels below choose its phases.

    x: (d,) input of this step; dy: (2n,) dL/dy_t; vec: (RTU_VEC_ROWS, n) and mat: (slabs, d, n), in/out;
    dx: (d,) out when want_dx. do_forward: advance the state (pre-activation, activation);
    do_traces: RTRL trace update for the forward of this step; do_grad: contract the traces with dy.
    acc_grad: instead of overwriting the gradient rows/slabs, accumulate into them,
    G <- gdecay * G + gradient (gdecay: a scalar of vec's dtype), so that they serve as an eligibility
    trace without a separate pass; returns ||G||_1 then (float64), else 0.
    """
    n = vec.shape[1]
    d = x.shape[0]
    zero = vec.dtype.type(0.0)
    linear = variant == VARIANT_LINEAR
    # Row views (no copies) shared by the per-unit loops of every phase.
    g_r = vec[RTU_G]
    phi_r = vec[RTU_PHI]
    eta_r = vec[RTU_ETA]
    c1_r = vec[RTU_C1]
    c2_r = vec[RTU_C2]
    pc1_r = vec[RTU_PC1]
    pc2_r = vec[RTU_PC2]
    u1_r = vec[RTU_U1]
    u2_r = vec[RTU_U2]
    s1n_r = vec[RTU_S1_NU]
    s2n_r = vec[RTU_S2_NU]
    s1t_r = vec[RTU_S1_TH]
    s2t_r = vec[RTU_S2_TH]

    if do_forward:
        # `!=` is also true for NaN sources: a stale (NaN-marked) unit is always recomputed. The test is a
        # branch-free reduction (vectorised); the per-unit recompute runs only when a unit is stale.
        nu_r = vec[RTU_NU]
        th_r = vec[RTU_TH]
        src_nu_r = vec[RTU_SRC_NU]
        src_th_r = vec[RTU_SRC_TH]
        stale = 0
        for k in range(n):
            stale += (nu_r[k] != src_nu_r[k]) | (th_r[k] != src_th_r[k])
        if stale:
            for k in range(n):
                if nu_r[k] != src_nu_r[k] or th_r[k] != src_th_r[k]:
                    _coefficients_row(vec, k, official)
        for k in range(n):
            u1_r[k] = zero
            u2_r[k] = zero
        # u = w x, four inputs per sweep over the units (a quarter of the read-modify-writes of u).
        j = 0
        while j + 4 <= d:
            x0 = x[j]
            x1 = x[j + 1]
            x2 = x[j + 2]
            x3 = x[j + 3]
            for k in range(n):
                vec[RTU_U1, k] += (mat[RTU_W1, j, k] * x0 + mat[RTU_W1, j + 1, k] * x1
                                   + mat[RTU_W1, j + 2, k] * x2 + mat[RTU_W1, j + 3, k] * x3)
            for k in range(n):
                vec[RTU_U2, k] += (mat[RTU_W2, j, k] * x0 + mat[RTU_W2, j + 1, k] * x1
                                   + mat[RTU_W2, j + 2, k] * x2 + mat[RTU_W2, j + 3, k] * x3)
            j += 4
        while j < d:
            xj = x[j]
            for k in range(n):
                vec[RTU_U1, k] += mat[RTU_W1, j, k] * xj
                vec[RTU_U2, k] += mat[RTU_W2, j, k] * xj
            j += 1
        for k in range(n):
            g = g_r[k]
            phi = phi_r[k]
            eta = eta_r[k]
            c1 = c1_r[k]
            c2 = c2_r[k]
            pc1_r[k] = c1
            pc2_r[k] = c2
            c1_r[k] = g * c1 - phi * c2 + eta * u1_r[k]  # pre-activation a_t (§3.2)
            c2_r[k] = g * c2 + phi * c1 + eta * u2_r[k]
        # All 2n values at once so that tanh vectorises. Linear: y = f(c), c = a. Non-linear: c = y = f(a).
        apply_activation(vec[RTU_C1:RTU_C2 + 1], vec[RTU_Y1:RTU_Y2 + 1], act)
        if not linear:
            for k in range(n):
                vec[RTU_C1, k] = vec[RTU_Y1, k]
                vec[RTU_C2, k] = vec[RTU_Y2, k]

    if want_dx:
        for j in range(d):
            dx[j] = zero
    l1 = 0.0
    if not (do_traces or do_grad):
        return l1

    # ---- per unit: f', the nu/theta traces (n-vectors), the deltas and their gradients. Separate loops
    # over hoisted row views, none branching on the variant, so that LLVM vectorises them (one loop doing
    # all of it per unit ran scalar: ≈ 1.1 µs of the step for n = 192, docs/benchmarks.md).
    _rtu_slopes(vec, variant, act)
    if do_traces:
        _rtu_unit_traces(vec)
    if do_grad:
        _rtu_deltas(dy, vec, variant, act)
        d1_r = vec[RTU_D1]
        d2_r = vec[RTU_D2]
        grn_r = vec[RTU_GR_NU]
        grt_r = vec[RTU_GR_TH]
        if acc_grad:
            for k in range(n):
                gn = gdecay * grn_r[k] + (d1_r[k] * s1n_r[k] + d2_r[k] * s2n_r[k])
                gt = gdecay * grt_r[k] + (d1_r[k] * s1t_r[k] + d2_r[k] * s2t_r[k])
                grn_r[k] = gn
                grt_r[k] = gt
                l1 += abs(gn) + abs(gt)
        else:
            for k in range(n):
                grn_r[k] = d1_r[k] * s1n_r[k] + d2_r[k] * s2n_r[k]
                grt_r[k] = d1_r[k] * s1t_r[k] + d2_r[k] * s2t_r[k]

    # ---- one sweep over the (d, n) slabs: w traces, then their contraction with the deltas
    for j in range(d):
        xj = x[j]
        if linear:
            # Two trace slabs: S1_w2 = -S2_w1 and S2_w2 = S1_w1 (design.md §3.3).
            if do_traces and do_grad and acc_grad:
                for k in range(n):
                    a = mat[RTU_S1_W1, j, k]
                    b = mat[RTU_S2_W1, j, k]
                    g = vec[RTU_G, k]
                    phi = vec[RTU_PHI, k]
                    s1 = g * a - phi * b + vec[RTU_ETA, k] * xj
                    s2 = g * b + phi * a
                    mat[RTU_S1_W1, j, k] = s1
                    mat[RTU_S2_W1, j, k] = s2
                    d1 = vec[RTU_D1, k]
                    d2 = vec[RTU_D2, k]
                    e1 = gdecay * mat[RTU_GW1, j, k] + (d1 * s1 + d2 * s2)
                    e2 = gdecay * mat[RTU_GW2, j, k] + (d2 * s1 - d1 * s2)
                    mat[RTU_GW1, j, k] = e1
                    mat[RTU_GW2, j, k] = e2
                    l1 += abs(e1) + abs(e2)
            elif do_traces and do_grad:
                for k in range(n):
                    a = mat[RTU_S1_W1, j, k]
                    b = mat[RTU_S2_W1, j, k]
                    g = vec[RTU_G, k]
                    phi = vec[RTU_PHI, k]
                    s1 = g * a - phi * b + vec[RTU_ETA, k] * xj
                    s2 = g * b + phi * a
                    mat[RTU_S1_W1, j, k] = s1
                    mat[RTU_S2_W1, j, k] = s2
                    d1 = vec[RTU_D1, k]
                    d2 = vec[RTU_D2, k]
                    mat[RTU_GW1, j, k] = d1 * s1 + d2 * s2
                    mat[RTU_GW2, j, k] = d2 * s1 - d1 * s2
            elif do_traces:
                for k in range(n):
                    a = mat[RTU_S1_W1, j, k]
                    b = mat[RTU_S2_W1, j, k]
                    g = vec[RTU_G, k]
                    phi = vec[RTU_PHI, k]
                    mat[RTU_S1_W1, j, k] = g * a - phi * b + vec[RTU_ETA, k] * xj
                    mat[RTU_S2_W1, j, k] = g * b + phi * a
            elif acc_grad:
                for k in range(n):
                    s1 = mat[RTU_S1_W1, j, k]
                    s2 = mat[RTU_S2_W1, j, k]
                    d1 = vec[RTU_D1, k]
                    d2 = vec[RTU_D2, k]
                    e1 = gdecay * mat[RTU_GW1, j, k] + (d1 * s1 + d2 * s2)
                    e2 = gdecay * mat[RTU_GW2, j, k] + (d2 * s1 - d1 * s2)
                    mat[RTU_GW1, j, k] = e1
                    mat[RTU_GW2, j, k] = e2
                    l1 += abs(e1) + abs(e2)
            else:
                for k in range(n):
                    s1 = mat[RTU_S1_W1, j, k]
                    s2 = mat[RTU_S2_W1, j, k]
                    d1 = vec[RTU_D1, k]
                    d2 = vec[RTU_D2, k]
                    mat[RTU_GW1, j, k] = d1 * s1 + d2 * s2
                    mat[RTU_GW2, j, k] = d2 * s1 - d1 * s2
        else:
            if do_traces:
                for k in range(n):
                    g = vec[RTU_G, k]
                    phi = vec[RTU_PHI, k]
                    fp1 = vec[RTU_FP1, k]
                    fp2 = vec[RTU_FP2, k]
                    ex = vec[RTU_ETA, k] * xj
                    a = mat[RTU_S1_W1, j, k]
                    b = mat[RTU_S2_W1, j, k]
                    mat[RTU_S1_W1, j, k] = fp1 * (g * a - phi * b + ex)
                    mat[RTU_S2_W1, j, k] = fp2 * (g * b + phi * a)
                    a = mat[RTU_S1_W2, j, k]
                    b = mat[RTU_S2_W2, j, k]
                    mat[RTU_S1_W2, j, k] = fp1 * (g * a - phi * b)
                    mat[RTU_S2_W2, j, k] = fp2 * (g * b + phi * a + ex)
            if do_grad and acc_grad:
                for k in range(n):
                    d1 = vec[RTU_D1, k]
                    d2 = vec[RTU_D2, k]
                    e1 = gdecay * mat[RTU_GW1, j, k] + (d1 * mat[RTU_S1_W1, j, k] + d2 * mat[RTU_S2_W1, j, k])
                    e2 = gdecay * mat[RTU_GW2, j, k] + (d1 * mat[RTU_S1_W2, j, k] + d2 * mat[RTU_S2_W2, j, k])
                    mat[RTU_GW1, j, k] = e1
                    mat[RTU_GW2, j, k] = e2
                    l1 += abs(e1) + abs(e2)
            elif do_grad:
                for k in range(n):
                    d1 = vec[RTU_D1, k]
                    d2 = vec[RTU_D2, k]
                    mat[RTU_GW1, j, k] = d1 * mat[RTU_S1_W1, j, k] + d2 * mat[RTU_S2_W1, j, k]
                    mat[RTU_GW2, j, k] = d1 * mat[RTU_S1_W2, j, k] + d2 * mat[RTU_S2_W2, j, k]
        if want_dx and do_grad:
            # dL/dx_j = sum_k w1[k, j] eta_k q1_k + w2[k, j] eta_k q2_k (one-step path, design.md §3.3)
            acc = zero
            for k in range(n):
                acc += mat[RTU_W1, j, k] * vec[RTU_Q1, k] + mat[RTU_W2, j, k] * vec[RTU_Q2, k]
            dx[j] = acc
    return l1


@kernel
def rtu_forward(x, vec, mat, variant, act, official):
    """Forward only: advance the state c and write y; traces untouched (the action path).

    x: (d,) in. vec: (RTU_VEC_ROWS, n) in/out (rows C, Y, PC, U written). mat: (slabs, n, d) in.
    Follow with ``rtu_traces`` or ``rtu_traces_grad`` with the same x before the next forward to keep
    RTRL exact. Twin: reference.rtu_step_reference (its forward part).
    """
    _rtu_pass(x, x, vec, mat, x, variant, act, official, True, False, False, False, False, vec[0, 0])


@kernel
def rtu_traces(x, vec, mat, variant, act):
    """RTRL trace update for the last forward. x: (d,) the same input the forward saw. In place."""
    _rtu_pass(x, x, vec, mat, x, variant, act, 0, False, True, False, False, False, vec[0, 0])


@kernel
def rtu_step(x, vec, mat, variant, act, official):
    """Fused forward + RTRL trace update for input x: (d,). In place on vec and mat.

    Twin: reference.rtu_step_reference.
    """
    _rtu_pass(x, x, vec, mat, x, variant, act, official, True, True, False, False, False, vec[0, 0])


@kernel
def rtu_grad(dy, vec, mat, dx, variant, act, want_dx):
    """Gradient at the current step of a loss with dL/dy_t = dy: (2n,), through the whole history.

    Writes rows GR_NU, GR_TH of vec and slabs GW1, GW2 of mat; if want_dx, dx: (d,) out = dL/dx_t
    along the one-step path. State and traces are untouched. Twin: reference.rtu_grad_reference.
    """
    _rtu_pass(dx, dy, vec, mat, dx, variant, act, 0, False, False, True, want_dx, False, vec[0, 0])


@kernel
def rtu_traces_grad(x, dy, vec, mat, dx, variant, act, want_dx):
    """Fused ``rtu_traces`` + ``rtu_grad``: the learning half of a step whose forward already ran."""
    _rtu_pass(x, dy, vec, mat, dx, variant, act, 0, False, True, True, want_dx, False, vec[0, 0])


@kernel
def rtu_step_grad(x, dy, vec, mat, dx, variant, act, official, want_dx):
    """Fused forward + trace update + gradient contraction, for a known dL/dy_t = dy: (2n,).

    Equals ``rtu_step`` then ``rtu_grad``. Useful when dy does not depend on y_t or is supplied late;
    it is the benchmark's per-step figure.
    """
    _rtu_pass(x, dy, vec, mat, dx, variant, act, official, True, True, True, want_dx, False, vec[0, 0])


@kernel
def rtu_traces_grad_accumulate(x, dy, vec, mat, dx, variant, act, gdecay):
    """``rtu_traces_grad`` whose gradient is accumulated instead of written: the gradient rows and
    slabs become an eligibility trace, G <- gdecay G + gradient, with no separate pass over them (the
    agent's actor). gdecay: a scalar of vec's dtype. Fills dx (the one-step input gradient). Returns
    ||G||_1 (float64) over nu_log, theta_log, w1, w2."""
    return _rtu_pass(x, dy, vec, mat, dx, variant, act, 0, False, True, True, True, True, gdecay)



@kernel
def rtu_traces_grad_apply_accumulate(x, dy, vec, mat, dx, variant, act, step, decay, do_apply):
    """The deferred learning pass of a network whose eligibility traces live in the gradient rows/slabs
    (the agent's critic, whose gradient waits for δ): the RTRL trace update for the last forward, ObGD's
    step with the eligibility traces as they are, and the current gradient added to them, in one sweep
    that reads every slab once.

    x: (d,) the input of the last forward; dy: (2n,) dL/dy_t. For every parameter p of the cell
    (nu_log, theta_log, w1, w2) with eligibility trace z in its gradient row/slab: if do_apply,
    p <- p + step z; then z <- decay z + dL/dp, the gradient at this step through the whole history
    (design.md §3.3). dx: (d,) out, dL/dx_t along the one-step path, computed with the parameters before
    the step. step, decay: scalars of vec's dtype. The coefficients are not refreshed here
    (``rtu_refresh_coefficients`` after the step). Returns ||z||_1 (float64) over nu_log, theta_log,
    w1, w2. Equals ``rtu_traces_grad`` then ``obgd_apply`` and ``eligibility_accumulate`` up to rounding
    (tests/controller/test_networks.py).
    """
    n = vec.shape[1]
    d = dx.shape[0]
    linear = variant == VARIANT_LINEAR
    _rtu_slopes(vec, variant, act)
    _rtu_unit_traces(vec)
    _rtu_deltas(dy, vec, variant, act)
    g_r = vec[RTU_G]
    phi_r = vec[RTU_PHI]
    eta_r = vec[RTU_ETA]
    fp1_r = vec[RTU_FP1]
    fp2_r = vec[RTU_FP2]
    d1_r = vec[RTU_D1]
    d2_r = vec[RTU_D2]
    q1_r = vec[RTU_Q1]
    q2_r = vec[RTU_Q2]
    nu_r = vec[RTU_NU]
    th_r = vec[RTU_TH]
    grn_r = vec[RTU_GR_NU]
    grt_r = vec[RTU_GR_TH]
    s1n_r = vec[RTU_S1_NU]
    s2n_r = vec[RTU_S2_NU]
    s1t_r = vec[RTU_S1_TH]
    s2t_r = vec[RTU_S2_TH]
    l1 = 0.0
    if do_apply:
        for k in range(n):
            nu_r[k] += step * grn_r[k]
            th_r[k] += step * grt_r[k]
    for k in range(n):
        gn = decay * grn_r[k] + (d1_r[k] * s1n_r[k] + d2_r[k] * s2n_r[k])
        gt = decay * grt_r[k] + (d1_r[k] * s1t_r[k] + d2_r[k] * s2t_r[k])
        grn_r[k] = gn
        grt_r[k] = gt
        l1 += abs(gn) + abs(gt)
    # Direct 3-D indexing, no per-row views: each view would cost an atomic reference-count update,
    # and on the critic's helper thread those collided with the main thread's (critic_thread.py).
    for j in range(d):
        xj = x[j]
        acc = dx.dtype.type(0.0)
        for k in range(n):
            acc += mat[RTU_W1, j, k] * q1_r[k] + mat[RTU_W2, j, k] * q2_r[k]
        dx[j] = acc
        if do_apply:
            for k in range(n):
                mat[RTU_W1, j, k] += step * mat[RTU_GW1, j, k]
                mat[RTU_W2, j, k] += step * mat[RTU_GW2, j, k]
        if linear:
            # Two trace slabs: S1_w2 = -S2_w1 and S2_w2 = S1_w1 (design.md §3.3)
            for k in range(n):
                a = mat[RTU_S1_W1, j, k]
                b = mat[RTU_S2_W1, j, k]
                g = g_r[k]
                phi = phi_r[k]
                s1 = g * a - phi * b + eta_r[k] * xj
                s2 = g * b + phi * a
                mat[RTU_S1_W1, j, k] = s1
                mat[RTU_S2_W1, j, k] = s2
                d1 = d1_r[k]
                d2 = d2_r[k]
                e1 = decay * mat[RTU_GW1, j, k] + (d1 * s1 + d2 * s2)
                e2 = decay * mat[RTU_GW2, j, k] + (d2 * s1 - d1 * s2)
                mat[RTU_GW1, j, k] = e1
                mat[RTU_GW2, j, k] = e2
                l1 += abs(e1) + abs(e2)
        else:
            for k in range(n):
                g = g_r[k]
                phi = phi_r[k]
                fp1 = fp1_r[k]
                fp2 = fp2_r[k]
                ex = eta_r[k] * xj
                a = mat[RTU_S1_W1, j, k]
                b = mat[RTU_S2_W1, j, k]
                sa1 = fp1 * (g * a - phi * b + ex)
                sa2 = fp2 * (g * b + phi * a)
                a = mat[RTU_S1_W2, j, k]
                b = mat[RTU_S2_W2, j, k]
                sb1 = fp1 * (g * a - phi * b)
                sb2 = fp2 * (g * b + phi * a + ex)
                mat[RTU_S1_W1, j, k] = sa1
                mat[RTU_S2_W1, j, k] = sa2
                mat[RTU_S1_W2, j, k] = sb1
                mat[RTU_S2_W2, j, k] = sb2
                d1 = d1_r[k]
                d2 = d2_r[k]
                e1 = decay * mat[RTU_GW1, j, k] + (d1 * sa1 + d2 * sa2)
                e2 = decay * mat[RTU_GW2, j, k] + (d1 * sb1 + d2 * sb2)
                mat[RTU_GW1, j, k] = e1
                mat[RTU_GW2, j, k] = e2
                l1 += abs(e1) + abs(e2)
    return l1

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

Every public kernel is one call of ``_rtu_pass`` with the phases it needs, named by the flags of
``controller.kernels.layout`` (FORWARD, TRACES, GRAD, INPUT_GRAD, ACCUMULATE, APPLY, ROW_FUSED) combined
with ``|``. It is a single function because numba does not inline helpers that take arrays, and each such
call costs reference-count traffic. Inside, a step streams each slab once: the products w x (inputs in
the outer loop, four at a time; units in the inner, vectorised loop; w1 and w2 in separate inner loops,
which halves the streams in flight), the activation of all 2n values at once (so that the float32 tanh
vectorises), the per-unit phases (``controller.kernels.rtu_units``), then one sweep over the trace and
gradient slabs. Every per-unit loop works on hoisted row views and has no branch on the variant, so that
LLVM vectorises it. Nothing is allocated. The step is bound by cache bandwidth: see docs/benchmarks.md.

The coefficients of unit k are recomputed inside the pass only when nu_log[k] or theta_log[k] differ
from the values they were computed from (``controller.kernels.rtu_coefficients``), so writing into the
parameters is always honoured and costs nothing when nothing changed.

Compile options (restricted fastmath that keeps NaN/inf semantics, numpy error model): ``controller.kernels.jit``.
Reference twins: ``controller.reference.rtu_step_reference`` / ``rtu_grad_reference``.
"""
from controller.kernels.activation import apply_activation
from controller.kernels.jit import kernel
from controller.kernels.layout import (  # noqa: F401  (the phases are public here too)
    ACCUMULATE, APPLY, FORWARD, GRAD, INPUT_GRAD, ROW_FUSED, RTU_C1, RTU_C2, RTU_D1, RTU_D2, RTU_ETA,
    RTU_G, RTU_GR_NU, RTU_GR_TH, RTU_GW1, RTU_GW2, RTU_NU, RTU_PC1, RTU_PC2, RTU_PHI, RTU_Q1, RTU_Q2,
    RTU_S1_NU, RTU_S1_TH, RTU_S1_W1, RTU_S1_W2, RTU_S2_NU, RTU_S2_TH, RTU_S2_W1, RTU_S2_W2, RTU_SRC_NU,
    RTU_SRC_TH, RTU_TH, RTU_U1, RTU_U2, RTU_W1, RTU_W2, RTU_Y1, RTU_Y2, TRACES, VARIANT_LINEAR,
)
from controller.kernels.rtu_coefficients import (  # noqa: F401  (ETA_EPS and the refresh are public here too)
    ETA_EPS, _coefficients_row, rtu_refresh_coefficients,
)
from controller.kernels.rtu_units import _rtu_deltas, _rtu_slopes, _rtu_unit_traces, nonlinear_w_traces

@kernel
def _rtu_pass(x, dy, vec, mat, dx, variant, act, official, phases, decay, step):
    """The one RTU kernel; the public kernels below choose its phases.

    x: (d,) input of this step; dy: (2n,) dL/dy_t; vec: (RTU_VEC_ROWS, n) and mat: (slabs, d, n), in/out;
    dx: (d,) out with INPUT_GRAD. phases: FORWARD | TRACES | GRAD | INPUT_GRAD | ACCUMULATE | APPLY |
    ROW_FUSED (``controller.kernels.layout``). decay (ACCUMULATE), step (APPLY): scalars of vec's dtype, ignored otherwise.
    Returns ||G||_1 (float64) with ACCUMULATE, else 0.
    """
    do_forward = (phases & FORWARD) != 0
    do_traces = (phases & TRACES) != 0
    do_grad = (phases & GRAD) != 0
    want_dx = (phases & INPUT_GRAD) != 0
    acc_grad = (phases & ACCUMULATE) != 0
    do_apply = (phases & APPLY) != 0
    row_fused = (phases & ROW_FUSED) != 0
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

    if want_dx and not do_grad:
        for j in range(d):
            dx[j] = zero
    l1 = 0.0
    if not (do_traces or do_grad):
        return l1

    # ---- per unit: f', the nu/theta traces (n-vectors), the deltas and their gradients: separate loops
    # over hoisted row views, none branching on the variant, so that LLVM vectorises them
    _rtu_slopes(vec, variant, act)
    if do_traces:
        _rtu_unit_traces(vec)
    if do_grad:
        _rtu_deltas(dy, vec, variant, act)
        d1_r = vec[RTU_D1]
        d2_r = vec[RTU_D2]
        grn_r = vec[RTU_GR_NU]
        grt_r = vec[RTU_GR_TH]
        if do_apply:
            nu_r = vec[RTU_NU]
            th_r = vec[RTU_TH]
            for k in range(n):
                nu_r[k] += step * grn_r[k]
                th_r[k] += step * grt_r[k]
        if acc_grad:
            for k in range(n):
                gn = decay * grn_r[k] + (d1_r[k] * s1n_r[k] + d2_r[k] * s2n_r[k])
                gt = decay * grt_r[k] + (d1_r[k] * s1t_r[k] + d2_r[k] * s2t_r[k])
                grn_r[k] = gn
                grt_r[k] = gt
                l1 += abs(gn) + abs(gt)
        else:
            for k in range(n):
                grn_r[k] = d1_r[k] * s1n_r[k] + d2_r[k] * s2n_r[k]
                grt_r[k] = d1_r[k] * s1t_r[k] + d2_r[k] * s2t_r[k]

    # ---- one sweep over the (d, n) slabs: per input j, dL/dx_j (before APPLY changes row j of w), the
    # step, the w traces, then their contraction with the deltas
    want_dx = want_dx and do_grad
    for j in range(d):
        xj = x[j]
        if want_dx:
            # dL/dx_j = sum_k w1[k, j] eta_k q1_k + w2[k, j] eta_k q2_k (one-step path, design.md §3.3)
            acc = zero
            for k in range(n):
                acc += mat[RTU_W1, j, k] * vec[RTU_Q1, k] + mat[RTU_W2, j, k] * vec[RTU_Q2, k]
            dx[j] = acc
        if do_apply:
            for k in range(n):
                mat[RTU_W1, j, k] += step * mat[RTU_GW1, j, k]
                mat[RTU_W2, j, k] += step * mat[RTU_GW2, j, k]
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
                    e1 = decay * mat[RTU_GW1, j, k] + (d1 * s1 + d2 * s2)
                    e2 = decay * mat[RTU_GW2, j, k] + (d2 * s1 - d1 * s2)
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
                    e1 = decay * mat[RTU_GW1, j, k] + (d1 * s1 + d2 * s2)
                    e2 = decay * mat[RTU_GW2, j, k] + (d2 * s1 - d1 * s2)
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
        elif row_fused and do_traces and do_grad and acc_grad:
            for k in range(n):
                sa1, sa2, sb1, sb2 = nonlinear_w_traces(vec, mat, j, k, xj)
                d1 = vec[RTU_D1, k]
                d2 = vec[RTU_D2, k]
                e1 = decay * mat[RTU_GW1, j, k] + (d1 * sa1 + d2 * sa2)
                e2 = decay * mat[RTU_GW2, j, k] + (d1 * sb1 + d2 * sb2)
                mat[RTU_GW1, j, k] = e1
                mat[RTU_GW2, j, k] = e2
                l1 += abs(e1) + abs(e2)
        else:
            if do_traces:
                for k in range(n):
                    nonlinear_w_traces(vec, mat, j, k, xj)
            if do_grad and acc_grad:
                for k in range(n):
                    d1 = vec[RTU_D1, k]
                    d2 = vec[RTU_D2, k]
                    e1 = decay * mat[RTU_GW1, j, k] + (d1 * mat[RTU_S1_W1, j, k] + d2 * mat[RTU_S2_W1, j, k])
                    e2 = decay * mat[RTU_GW2, j, k] + (d1 * mat[RTU_S1_W2, j, k] + d2 * mat[RTU_S2_W2, j, k])
                    mat[RTU_GW1, j, k] = e1
                    mat[RTU_GW2, j, k] = e2
                    l1 += abs(e1) + abs(e2)
            elif do_grad:
                for k in range(n):
                    d1 = vec[RTU_D1, k]
                    d2 = vec[RTU_D2, k]
                    mat[RTU_GW1, j, k] = d1 * mat[RTU_S1_W1, j, k] + d2 * mat[RTU_S2_W1, j, k]
                    mat[RTU_GW2, j, k] = d1 * mat[RTU_S1_W2, j, k] + d2 * mat[RTU_S2_W2, j, k]
    return l1


@kernel
def rtu_forward(x, vec, mat, variant, act, official):
    """Forward only: advance the state c and write y; traces untouched (the action path).

    x: (d,) in. vec: (RTU_VEC_ROWS, n) in/out (rows C, Y, PC, U written). mat: (slabs, n, d) in.
    Follow with ``rtu_traces`` or ``rtu_traces_grad`` with the same x before the next forward to keep
    RTRL exact. Twin: reference.rtu_step_reference (its forward part).
    """
    _rtu_pass(x, x, vec, mat, x, variant, act, official, FORWARD, vec[0, 0], vec[0, 0])


@kernel
def rtu_traces(x, vec, mat, variant, act):
    """RTRL trace update for the last forward. x: (d,) the same input the forward saw. In place."""
    _rtu_pass(x, x, vec, mat, x, variant, act, 0, TRACES, vec[0, 0], vec[0, 0])


@kernel
def rtu_step(x, vec, mat, variant, act, official):
    """Fused forward + RTRL trace update for input x: (d,). In place on vec and mat.

    Twin: reference.rtu_step_reference.
    """
    _rtu_pass(x, x, vec, mat, x, variant, act, official, FORWARD | TRACES, vec[0, 0], vec[0, 0])


@kernel
def rtu_grad(dy, vec, mat, dx, variant, act, want_dx):
    """Gradient at the current step of a loss with dL/dy_t = dy: (2n,), through the whole history.

    Writes rows GR_NU, GR_TH of vec and slabs GW1, GW2 of mat; if want_dx, dx: (d,) out = dL/dx_t
    along the one-step path. State and traces are untouched. Twin: reference.rtu_grad_reference.
    """
    phases = GRAD | (INPUT_GRAD if want_dx else 0)
    _rtu_pass(dx, dy, vec, mat, dx, variant, act, 0, phases, vec[0, 0], vec[0, 0])


@kernel
def rtu_traces_grad(x, dy, vec, mat, dx, variant, act, want_dx):
    """Fused ``rtu_traces`` + ``rtu_grad``: the learning half of a step whose forward already ran."""
    phases = TRACES | GRAD | (INPUT_GRAD if want_dx else 0)
    _rtu_pass(x, dy, vec, mat, dx, variant, act, 0, phases, vec[0, 0], vec[0, 0])


@kernel
def rtu_step_grad(x, dy, vec, mat, dx, variant, act, official, want_dx):
    """Fused forward + trace update + gradient contraction, for a known dL/dy_t = dy: (2n,).

    Equals ``rtu_step`` then ``rtu_grad``. Useful when dy does not depend on y_t or is supplied late;
    it is the benchmark's per-step figure.
    """
    _rtu_pass(x, dy, vec, mat, dx, variant, act, official,
              FORWARD | TRACES | GRAD | (INPUT_GRAD if want_dx else 0), vec[0, 0], vec[0, 0])


@kernel
def rtu_traces_grad_accumulate(x, dy, vec, mat, dx, variant, act, gdecay):
    """``rtu_traces_grad`` whose gradient is accumulated instead of written: the gradient rows and
    slabs become an eligibility trace, G <- gdecay G + gradient, with no separate pass over them (the
    agent's actor). gdecay: a scalar of vec's dtype. Fills dx (the one-step input gradient). Returns
    ||G||_1 (float64) over nu_log, theta_log, w1, w2."""
    return _rtu_pass(x, dy, vec, mat, dx, variant, act, 0, TRACES | GRAD | INPUT_GRAD | ACCUMULATE, gdecay,
                     gdecay)


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
    phases = TRACES | GRAD | INPUT_GRAD | ACCUMULATE | ROW_FUSED | (APPLY if do_apply else 0)
    return _rtu_pass(x, dy, vec, mat, dx, variant, act, 0, phases, decay, step)

"""RTU forward step, exact RTRL trace update and gradient contraction (DESIGN §3.2-3.3, docs/rtu_math.md).

All kernels work in place on the two packed arrays of one RTU layer (row and slab indices in
``controller.kernels.layout``):

* ``vec``: (RTU_VEC_ROWS, n) float32 or float64, C-contiguous: parameters nu_log and theta_log, the
  per-unit coefficients (g, phi, eta and their derivatives), state, output, saved forward values, the
  nu/theta traces and gradients.
* ``mat``: (6 or 8, n, d), same dtype: w1, w2, their gradients, and the w traces. The linear RTU keeps
  only S1_w1 and S2_w1, because for it S_w2 = i * S_w1 as complex numbers (S1_w2 = -S2_w1,
  S2_w2 = S1_w1); the non-linear RTU keeps all four.

Integer flags: ``variant`` (layout.VARIANT_*), ``act`` (layout.ACT_*), ``official`` (1 = the official JAX
code's theta derivative, without the factor theta), ``want_dx`` (1 = also write dL/dx into ``dx``).

A step is three loops over the units: the dot products w x (reads the w slabs), the activation of all 2n
values at once (so that tanh vectorises), then the traces and gradients (reads and writes the trace and
gradient slabs). Each slab is streamed from cache once per call. Nothing is allocated. The coefficients of unit k are recomputed
inside the pass only when nu_log[k] or theta_log[k] differ from the values they were computed from, so
writing into the parameters is always honoured and costs nothing when nothing changed;
``rtu_refresh_coefficients`` does the same for all units off the action path.

``fastmath`` is limited to reassociation and contraction (FMA), which the dot products need to vectorise;
it does not assume finite values, so NaN and inf propagate as IEEE says (DESIGN §6 item 5).
Reference twins: ``controller.reference.rtu_step_reference`` / ``rtu_grad_reference``.
"""
import math

from numba import njit

from controller.kernels.activation import activation_slope as _activation_slope
from controller.kernels.activation import apply_activation
from controller.kernels.layout import ( RTU_C1, RTU_C2, RTU_DETA_NU, RTU_DG_NU, RTU_DG_TH, RTU_DPHI_NU, RTU_DPHI_TH,
    RTU_ETA, RTU_G, RTU_GR_NU, RTU_GR_TH, RTU_GW1, RTU_GW2, RTU_NU, RTU_PC1, RTU_PC2, RTU_PHI,
    RTU_S1_NU, RTU_S1_TH, RTU_S1_W1, RTU_S1_W2, RTU_S2_NU, RTU_S2_TH, RTU_S2_W1, RTU_S2_W2,
    RTU_SRC_NU, RTU_SRC_TH, RTU_TH, RTU_U1, RTU_U2, RTU_W1, RTU_W2, RTU_Y1, RTU_Y2, VARIANT_LINEAR,
)

FASTMATH = {"reassoc", "contract", "nsz"}
ETA_EPS = 1e-8  # added to eta = sqrt(1 - r^2) so the input scale never reaches 0 (DESIGN §6 item 3)


@njit(cache=True)
def _coefficients_row(vec, k, official):
    """Recompute unit k's coefficients (rows G..DPHI_TH) from nu_log[k], theta_log[k], in float64."""
    nu = float(vec[RTU_NU, k])
    th = float(vec[RTU_TH, k])
    e_nu = math.exp(nu)
    r = math.exp(-e_nu)
    theta = math.exp(th)
    g = r * math.cos(theta)
    phi = r * math.sin(theta)
    one_minus_r2 = -math.expm1(-2.0 * e_nu)  # 1 - r^2 without cancellation when r -> 1
    root = math.sqrt(one_minus_r2)
    vec[RTU_G, k] = g
    vec[RTU_PHI, k] = phi
    vec[RTU_ETA, k] = root + ETA_EPS
    vec[RTU_DG_NU, k] = -e_nu * g
    vec[RTU_DPHI_NU, k] = -e_nu * phi
    vec[RTU_DETA_NU, k] = e_nu * r * r / root
    if official:
        vec[RTU_DG_TH, k] = -phi
        vec[RTU_DPHI_TH, k] = g
    else:
        vec[RTU_DG_TH, k] = -theta * phi
        vec[RTU_DPHI_TH, k] = theta * g
    vec[RTU_SRC_NU, k] = vec[RTU_NU, k]
    vec[RTU_SRC_TH, k] = vec[RTU_TH, k]


@njit(cache=True)
def _ensure_coefficients(vec, k, official):
    # `!=` is also true for NaN sources, so a stale (NaN-marked) unit is always recomputed.
    if vec[RTU_NU, k] != vec[RTU_SRC_NU, k] or vec[RTU_TH, k] != vec[RTU_SRC_TH, k]:
        _coefficients_row(vec, k, official)


@njit(cache=True)
def rtu_refresh_coefficients(vec, official):
    """Recompute the coefficients of every unit whose nu_log or theta_log changed.

    vec: (RTU_VEC_ROWS, n) in/out. official: int flag. Call after a parameter update, off the action path.
    """
    for k in range(vec.shape[1]):
        _ensure_coefficients(vec, k, official)


@njit(cache=True, fastmath=FASTMATH)
def _forward_row(k, x, vec, mat, variant, act, official):
    """Unit k: pre-activation a_t into rows C (DESIGN §3.2); saves c_{t-1} and u_t for the traces."""
    _ensure_coefficients(vec, k, official)
    d = x.shape[0]
    w1 = mat[RTU_W1, k]
    w2 = mat[RTU_W2, k]
    u1 = vec.dtype.type(0.0)
    u2 = vec.dtype.type(0.0)
    for j in range(d):
        u1 += w1[j] * x[j]
        u2 += w2[j] * x[j]
    g = vec[RTU_G, k]
    phi = vec[RTU_PHI, k]
    eta = vec[RTU_ETA, k]
    c1 = vec[RTU_C1, k]
    c2 = vec[RTU_C2, k]
    a1 = g * c1 - phi * c2 + eta * u1
    a2 = g * c2 + phi * c1 + eta * u2
    vec[RTU_PC1, k] = c1
    vec[RTU_PC2, k] = c2
    vec[RTU_U1, k] = u1
    vec[RTU_U2, k] = u2
    vec[RTU_C1, k] = a1  # pre-activation; ``_activate`` finishes the step for all units at once
    vec[RTU_C2, k] = a2


@njit(cache=True, fastmath=FASTMATH)
def _activate(vec, variant, act):
    """After every unit's pre-activation a_t is in rows C1, C2: linear RTU y = f(c) with c = a;
    non-linear RTU c = y = f(a). One loop over all 2n values so that tanh vectorises."""
    pre = vec[RTU_C1:RTU_C2 + 1]
    out = vec[RTU_Y1:RTU_Y2 + 1]
    apply_activation(pre, out, act)
    if variant != VARIANT_LINEAR:
        for i in range(pre.shape[0]):
            for k in range(pre.shape[1]):
                pre[i, k] = out[i, k]


@njit(cache=True, fastmath=FASTMATH)
def _traces_row(k, x, vec, mat, variant, act):
    """Unit k: RTRL traces S_{t-1} -> S_t for the forward just done (DESIGN §3.3)."""
    one = vec.dtype.type(1.0)
    g = vec[RTU_G, k]
    phi = vec[RTU_PHI, k]
    eta = vec[RTU_ETA, k]
    c1 = vec[RTU_PC1, k]
    c2 = vec[RTU_PC2, k]
    u1 = vec[RTU_U1, k]
    u2 = vec[RTU_U2, k]
    dg = vec[RTU_DG_NU, k]
    dp = vec[RTU_DPHI_NU, k]
    de = vec[RTU_DETA_NU, k]
    j1n = dg * c1 - dp * c2 + de * u1
    j2n = dg * c2 + dp * c1 + de * u2
    dg = vec[RTU_DG_TH, k]
    dp = vec[RTU_DPHI_TH, k]
    j1t = dg * c1 - dp * c2
    j2t = dg * c2 + dp * c1
    s1n = vec[RTU_S1_NU, k]
    s2n = vec[RTU_S2_NU, k]
    s1t = vec[RTU_S1_TH, k]
    s2t = vec[RTU_S2_TH, k]
    n1n = g * s1n - phi * s2n + j1n
    n2n = g * s2n + phi * s1n + j2n
    n1t = g * s1t - phi * s2t + j1t
    n2t = g * s2t + phi * s1t + j2t
    d = x.shape[0]
    s1 = mat[RTU_S1_W1, k]
    s2 = mat[RTU_S2_W1, k]
    if variant == VARIANT_LINEAR:
        vec[RTU_S1_NU, k] = n1n
        vec[RTU_S2_NU, k] = n2n
        vec[RTU_S1_TH, k] = n1t
        vec[RTU_S2_TH, k] = n2t
        for j in range(d):
            a = s1[j]
            b = s2[j]
            s1[j] = g * a - phi * b + eta * x[j]
            s2[j] = g * b + phi * a
    else:
        # Non-linear RTU: c_t = f(a_t), so the whole bracket is scaled by f'(a_t) (DESIGN §6 item 1).
        fp1 = _activation_slope(vec[RTU_C1, k], one, act)
        fp2 = _activation_slope(vec[RTU_C2, k], one, act)
        vec[RTU_S1_NU, k] = fp1 * n1n
        vec[RTU_S2_NU, k] = fp2 * n2n
        vec[RTU_S1_TH, k] = fp1 * n1t
        vec[RTU_S2_TH, k] = fp2 * n2t
        e1 = fp1 * eta
        e2 = fp2 * eta
        for j in range(d):
            a = s1[j]
            b = s2[j]
            s1[j] = fp1 * (g * a - phi * b) + e1 * x[j]
            s2[j] = fp2 * (g * b + phi * a)
        s1 = mat[RTU_S1_W2, k]
        s2 = mat[RTU_S2_W2, k]
        for j in range(d):
            a = s1[j]
            b = s2[j]
            s1[j] = fp1 * (g * a - phi * b)
            s2[j] = fp2 * (g * b + phi * a) + e2 * x[j]


@njit(cache=True, fastmath=FASTMATH)
def _grad_row(k, dy, vec, mat, dx, variant, act, want_dx):
    """Unit k: contract the current traces with delta = dL/dc_t (DESIGN §3.3); optionally add dL/dx."""
    one = vec.dtype.type(1.0)
    n = vec.shape[1]
    if variant == VARIANT_LINEAR:
        # y = f(c): delta = dy * f'(c); dL/da = delta because c = a.
        d1 = dy[k] * _activation_slope(vec[RTU_Y1, k], one, act)
        d2 = dy[n + k] * _activation_slope(vec[RTU_Y2, k], one, act)
        q1 = d1
        q2 = d2
    else:
        # y = c = f(a): delta = dy; the one-step input path also crosses f'(a).
        d1 = dy[k]
        d2 = dy[n + k]
        q1 = d1 * _activation_slope(vec[RTU_C1, k], one, act)
        q2 = d2 * _activation_slope(vec[RTU_C2, k], one, act)
    vec[RTU_GR_NU, k] = d1 * vec[RTU_S1_NU, k] + d2 * vec[RTU_S2_NU, k]
    vec[RTU_GR_TH, k] = d1 * vec[RTU_S1_TH, k] + d2 * vec[RTU_S2_TH, k]
    d = dx.shape[0]
    s1 = mat[RTU_S1_W1, k]
    s2 = mat[RTU_S2_W1, k]
    gw1 = mat[RTU_GW1, k]
    gw2 = mat[RTU_GW2, k]
    if variant == VARIANT_LINEAR:
        for j in range(d):
            a = s1[j]
            b = s2[j]
            gw1[j] = d1 * a + d2 * b
            gw2[j] = d2 * a - d1 * b  # S1_w2 = -S2_w1, S2_w2 = S1_w1
    else:
        t1 = mat[RTU_S1_W2, k]
        t2 = mat[RTU_S2_W2, k]
        for j in range(d):
            gw1[j] = d1 * s1[j] + d2 * s2[j]
            gw2[j] = d1 * t1[j] + d2 * t2[j]
    if want_dx:
        eta = vec[RTU_ETA, k]
        e1 = eta * q1
        e2 = eta * q2
        w1 = mat[RTU_W1, k]
        w2 = mat[RTU_W2, k]
        for j in range(d):
            dx[j] += e1 * w1[j] + e2 * w2[j]


@njit(cache=True, fastmath=FASTMATH)
def rtu_forward(x, vec, mat, variant, act, official):
    """Forward only: advance the state c and write y; traces untouched (the action path).

    x: (d,) in. vec: (RTU_VEC_ROWS, n) in/out (rows C, Y, PC, U written). mat: (slabs, n, d) in.
    Follow with ``rtu_traces`` or ``rtu_traces_grad`` before the next forward to keep RTRL exact.
    Twin: reference.rtu_step_reference (its forward part).
    """
    for k in range(vec.shape[1]):
        _forward_row(k, x, vec, mat, variant, act, official)
    _activate(vec, variant, act)


@njit(cache=True, fastmath=FASTMATH)
def rtu_traces(x, vec, mat, variant, act):
    """RTRL trace update for the last forward. x: (d,) the same input the forward saw. In place."""
    for k in range(vec.shape[1]):
        _traces_row(k, x, vec, mat, variant, act)


@njit(cache=True, fastmath=FASTMATH)
def rtu_step(x, vec, mat, variant, act, official):
    """Fused forward + RTRL trace update for input x: (d,). In place on vec and mat.

    Twin: reference.rtu_step_reference.
    """
    for k in range(vec.shape[1]):
        _forward_row(k, x, vec, mat, variant, act, official)
    _activate(vec, variant, act)
    for k in range(vec.shape[1]):
        _traces_row(k, x, vec, mat, variant, act)


@njit(cache=True, fastmath=FASTMATH)
def rtu_grad(dy, vec, mat, dx, variant, act, want_dx):
    """Gradient at the current step of a loss with dL/dy_t = dy: (2n,), through the whole history.

    Writes rows GR_NU, GR_TH of vec and slabs GW1, GW2 of mat; if want_dx, dx: (d,) out = dL/dx_t
    along the one-step path. State and traces are untouched. Twin: reference.rtu_grad_reference.
    """
    if want_dx:
        for j in range(dx.shape[0]):
            dx[j] = 0
    for k in range(vec.shape[1]):
        _grad_row(k, dy, vec, mat, dx, variant, act, want_dx)


@njit(cache=True, fastmath=FASTMATH)
def rtu_traces_grad(x, dy, vec, mat, dx, variant, act, want_dx):
    """Fused ``rtu_traces`` + ``rtu_grad``: the learning half of a step whose forward already ran."""
    if want_dx:
        for j in range(dx.shape[0]):
            dx[j] = 0
    for k in range(vec.shape[1]):
        _traces_row(k, x, vec, mat, variant, act)
        _grad_row(k, dy, vec, mat, dx, variant, act, want_dx)


@njit(cache=True, fastmath=FASTMATH)
def rtu_step_grad(x, dy, vec, mat, dx, variant, act, official, want_dx):
    """Fused forward + trace update + gradient contraction, for a known dL/dy_t = dy: (2n,).

    Equivalent to ``rtu_step`` then ``rtu_grad`` in one pass over the units. Useful when dy does not
    depend on y_t (a linear read-out) or is supplied late; the benchmark's per-step figure.
    """
    if want_dx:
        for j in range(dx.shape[0]):
            dx[j] = 0
    for k in range(vec.shape[1]):
        _forward_row(k, x, vec, mat, variant, act, official)
    _activate(vec, variant, act)
    for k in range(vec.shape[1]):
        _traces_row(k, x, vec, mat, variant, act)
        _grad_row(k, dy, vec, mat, dx, variant, act, want_dx)

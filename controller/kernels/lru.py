"""Online LRU baseline with exact RTRL (design.md §3.4, docs/rtu_math.md).

    h_t = lambda * h_{t-1} + gamma * (B x_t),   lambda = exp(-e^nu + i e^theta),  gamma = exp(gamma_log)
    y_t = Re(C h_t)

Packed arrays (rows and slabs in ``controller.kernels.layout``), all one dtype, C-contiguous:
``vec`` (LRU_VEC_ROWS, n), ``mat`` (LRU_MAT_SLABS, d, n) with B, its gradient and its trace, input-major
(slab[j, k] is unit k, input j; the public (n, d) arrays are slab.T), ``cmat``
(LRU_CMAT_SLABS, m, n) with C and its gradient, ``y`` (m,) the output, ``dx`` (d,) the input gradient.

Traces (complex, element-wise over units): e_lam <- lambda e_lam + h_{t-1};  e_g <- lambda e_g + B x_t;
e_B <- lambda e_B + gamma x^T. For a real parameter p with dh/dp = s and q = dL/dRe h - i dL/dIm h,
dL/dp = Re(q s). C is trained one-step (y depends on C only through the current h).
Like the RTU kernels (see ``controller.kernels.rtu``), every public kernel is one call of a single
function, ``_lru_pass``, that streams each slab once. Twins: ``controller.reference.lru_step_reference``
/ ``lru_grad_reference``.
"""
import math

import numpy as np

from controller.kernels.jit import exact, kernel
from controller.kernels.layout import (
    FORWARD, GRAD, INPUT_GRAD, LRU_B_IM, LRU_B_RE, LRU_BX_IM, LRU_BX_RE, LRU_C_IM, LRU_C_RE, LRU_E_G_IM,
    LRU_E_G_RE, LRU_E_LAM_IM, LRU_E_LAM_RE, LRU_E_NU, LRU_E_TH, LRU_EB_IM, LRU_EB_RE, LRU_GAMMA, LRU_GB_IM,
    LRU_GB_RE, LRU_GC_IM, LRU_GC_RE, LRU_GLOG, LRU_GR_GLOG, LRU_GR_NU, LRU_GR_TH, LRU_H_IM, LRU_H_RE,
    LRU_LAM_IM, LRU_LAM_RE, LRU_NU, LRU_PH_IM, LRU_PH_RE, LRU_Q_IM, LRU_Q_RE, LRU_SRC_GLOG, LRU_SRC_NU,
    LRU_SRC_TH, LRU_TH, TRACES,
)


@exact
def _coefficients_row(vec, k):
    """Unit k's λ, γ and exponentials, computed in float64 (numba's float() keeps float32 as float32)."""
    e_nu = math.exp(np.float64(vec[LRU_NU, k]))
    e_th = math.exp(np.float64(vec[LRU_TH, k]))
    r = math.exp(-e_nu)
    vec[LRU_LAM_RE, k] = r * math.cos(e_th)
    vec[LRU_LAM_IM, k] = r * math.sin(e_th)
    vec[LRU_GAMMA, k] = math.exp(np.float64(vec[LRU_GLOG, k]))
    vec[LRU_E_NU, k] = e_nu
    vec[LRU_E_TH, k] = e_th
    vec[LRU_SRC_NU, k] = vec[LRU_NU, k]
    vec[LRU_SRC_TH, k] = vec[LRU_TH, k]
    vec[LRU_SRC_GLOG, k] = vec[LRU_GLOG, k]


@exact
def _ensure_coefficients(vec, k):
    if (vec[LRU_NU, k] != vec[LRU_SRC_NU, k] or vec[LRU_TH, k] != vec[LRU_SRC_TH, k]
            or vec[LRU_GLOG, k] != vec[LRU_SRC_GLOG, k]):
        _coefficients_row(vec, k)


@exact
def lru_refresh_coefficients(vec):
    """Recompute lambda, gamma, e^nu, e^theta for every unit whose parameters changed. In place."""
    for k in range(vec.shape[1]):
        _ensure_coefficients(vec, k)


@kernel
def _lru_pass(x, dy, vec, mat, cmat, y, dx, phases):
    """The one LRU kernel; the public kernels below choose its phases: FORWARD | TRACES | GRAD | INPUT_GRAD
    (``controller.kernels.layout``, as for the RTU's ``_rtu_pass``).

    x: (d,), dy: (m,), y: (m,) out, dx: (d,) out with INPUT_GRAD; vec, mat, cmat in/out (module docstring).
    """
    do_forward = (phases & FORWARD) != 0
    do_traces = (phases & TRACES) != 0
    do_grad = (phases & GRAD) != 0
    want_dx = (phases & INPUT_GRAD) != 0
    n = vec.shape[1]
    d = x.shape[0]
    zero = vec.dtype.type(0.0)
    if do_forward:
        for k in range(n):
            if (vec[LRU_NU, k] != vec[LRU_SRC_NU, k] or vec[LRU_TH, k] != vec[LRU_SRC_TH, k]
                    or vec[LRU_GLOG, k] != vec[LRU_SRC_GLOG, k]):
                _coefficients_row(vec, k)
            vec[LRU_BX_RE, k] = zero
            vec[LRU_BX_IM, k] = zero
        j = 0
        while j + 4 <= d:
            x0 = x[j]
            x1 = x[j + 1]
            x2 = x[j + 2]
            x3 = x[j + 3]
            for k in range(n):
                vec[LRU_BX_RE, k] += (mat[LRU_B_RE, j, k] * x0 + mat[LRU_B_RE, j + 1, k] * x1
                                      + mat[LRU_B_RE, j + 2, k] * x2 + mat[LRU_B_RE, j + 3, k] * x3)
                vec[LRU_BX_IM, k] += (mat[LRU_B_IM, j, k] * x0 + mat[LRU_B_IM, j + 1, k] * x1
                                      + mat[LRU_B_IM, j + 2, k] * x2 + mat[LRU_B_IM, j + 3, k] * x3)
            j += 4
        while j < d:
            xj = x[j]
            for k in range(n):
                vec[LRU_BX_RE, k] += mat[LRU_B_RE, j, k] * xj
                vec[LRU_BX_IM, k] += mat[LRU_B_IM, j, k] * xj
            j += 1
        for k in range(n):
            lr = vec[LRU_LAM_RE, k]
            li = vec[LRU_LAM_IM, k]
            gam = vec[LRU_GAMMA, k]
            hr = vec[LRU_H_RE, k]
            hi = vec[LRU_H_IM, k]
            vec[LRU_PH_RE, k] = hr
            vec[LRU_PH_IM, k] = hi
            vec[LRU_H_RE, k] = lr * hr - li * hi + gam * vec[LRU_BX_RE, k]
            vec[LRU_H_IM, k] = lr * hi + li * hr + gam * vec[LRU_BX_IM, k]
        # y = Re(C h) = C_re h_re - C_im h_im
        for m in range(y.shape[0]):
            acc = zero
            for k in range(n):
                acc += cmat[LRU_C_RE, m, k] * vec[LRU_H_RE, k] - cmat[LRU_C_IM, m, k] * vec[LRU_H_IM, k]
            y[m] = acc

    if want_dx:
        for j in range(d):
            dx[j] = zero
    if not (do_traces or do_grad):
        return

    if do_traces:
        for k in range(n):
            lr = vec[LRU_LAM_RE, k]
            li = vec[LRU_LAM_IM, k]
            a = vec[LRU_E_LAM_RE, k]
            b = vec[LRU_E_LAM_IM, k]
            vec[LRU_E_LAM_RE, k] = lr * a - li * b + vec[LRU_PH_RE, k]  # e_lam <- lam e_lam + h_{t-1}
            vec[LRU_E_LAM_IM, k] = lr * b + li * a + vec[LRU_PH_IM, k]
            a = vec[LRU_E_G_RE, k]
            b = vec[LRU_E_G_IM, k]
            vec[LRU_E_G_RE, k] = lr * a - li * b + vec[LRU_BX_RE, k]    # e_g <- lam e_g + B x_t
            vec[LRU_E_G_IM, k] = lr * b + li * a + vec[LRU_BX_IM, k]

    if do_grad:
        # q = dL/dRe h - i dL/dIm h = a - i b: a = dL/dRe h = C_re^T dy, b = dL/dIm h = -C_im^T dy.
        # C is trained one-step (y_t depends on C only through h_t).
        for k in range(n):
            vec[LRU_Q_RE, k] = zero
            vec[LRU_Q_IM, k] = zero
        for m in range(dy.shape[0]):
            g = dy[m]
            for k in range(n):
                vec[LRU_Q_RE, k] += g * cmat[LRU_C_RE, m, k]
                vec[LRU_Q_IM, k] -= g * cmat[LRU_C_IM, m, k]
                cmat[LRU_GC_RE, m, k] = g * vec[LRU_H_RE, k]
                cmat[LRU_GC_IM, m, k] = -g * vec[LRU_H_IM, k]
        for k in range(n):
            a = vec[LRU_Q_RE, k]
            b = vec[LRU_Q_IM, k]
            lr = vec[LRU_LAM_RE, k]
            li = vec[LRU_LAM_IM, k]
            elr = vec[LRU_E_LAM_RE, k]
            eli = vec[LRU_E_LAM_IM, k]
            pr = elr * lr - eli * li          # p = e_lam lambda
            pi = elr * li + eli * lr
            vec[LRU_GR_NU, k] = -vec[LRU_E_NU, k] * (a * pr + b * pi)   # dh/dnu = -e^nu p
            vec[LRU_GR_TH, k] = vec[LRU_E_TH, k] * (b * pr - a * pi)    # dh/dtheta = i e^theta p
            vec[LRU_GR_GLOG, k] = vec[LRU_GAMMA, k] * (a * vec[LRU_E_G_RE, k] + b * vec[LRU_E_G_IM, k])

    for j in range(d):
        xj = x[j]
        if do_traces and do_grad:
            for k in range(n):
                lr = vec[LRU_LAM_RE, k]
                li = vec[LRU_LAM_IM, k]
                u = mat[LRU_EB_RE, j, k]
                v = mat[LRU_EB_IM, j, k]
                er = lr * u - li * v + vec[LRU_GAMMA, k] * xj   # e_B <- lam e_B + gamma x^T
                ei = lr * v + li * u
                mat[LRU_EB_RE, j, k] = er
                mat[LRU_EB_IM, j, k] = ei
                a = vec[LRU_Q_RE, k]
                b = vec[LRU_Q_IM, k]
                mat[LRU_GB_RE, j, k] = a * er + b * ei          # dh/dB_re = e_B
                mat[LRU_GB_IM, j, k] = b * er - a * ei          # dh/dB_im = i e_B
        elif do_traces:
            for k in range(n):
                lr = vec[LRU_LAM_RE, k]
                li = vec[LRU_LAM_IM, k]
                u = mat[LRU_EB_RE, j, k]
                v = mat[LRU_EB_IM, j, k]
                mat[LRU_EB_RE, j, k] = lr * u - li * v + vec[LRU_GAMMA, k] * xj
                mat[LRU_EB_IM, j, k] = lr * v + li * u
        else:
            for k in range(n):
                er = mat[LRU_EB_RE, j, k]
                ei = mat[LRU_EB_IM, j, k]
                a = vec[LRU_Q_RE, k]
                b = vec[LRU_Q_IM, k]
                mat[LRU_GB_RE, j, k] = a * er + b * ei
                mat[LRU_GB_IM, j, k] = b * er - a * ei
        if want_dx and do_grad:
            # dL/dx_j = Re(sum_k q_k gamma_k B[k, j]) (one-step path)
            acc = zero
            for k in range(n):
                acc += vec[LRU_GAMMA, k] * (vec[LRU_Q_RE, k] * mat[LRU_B_RE, j, k]
                                            + vec[LRU_Q_IM, k] * mat[LRU_B_IM, j, k])
            dx[j] = acc


@kernel
def lru_forward(x, vec, mat, cmat, y):
    """Forward only: h_{t-1} -> h_t, y = Re(C h_t). x: (d,) in; vec in/out; y: (m,) out.

    Follow with ``lru_traces_grad`` (same x) before the next forward to keep RTRL exact.
    """
    _lru_pass(x, y, vec, mat, cmat, y, x, FORWARD)


@kernel
def lru_step(x, vec, mat, cmat, y):
    """Fused forward + RTRL trace update. Twin: reference.lru_step_reference."""
    _lru_pass(x, y, vec, mat, cmat, y, x, FORWARD | TRACES)


@kernel
def lru_grad(dy, vec, mat, cmat, dx, want_dx):
    """Gradients at the current step for dL/dy_t = dy: (m,). Rows GR_*, slabs GB_*, GC_* out;
    if want_dx, dx: (d,) out = dL/dx_t along the one-step path. State and traces untouched.
    Twin: reference.lru_grad_reference.
    """
    _lru_pass(dx, dy, vec, mat, cmat, dy, dx, GRAD | (INPUT_GRAD if want_dx else 0))


@kernel
def lru_traces_grad(x, dy, vec, mat, cmat, dx, want_dx):
    """After ``lru_forward(x)``: the trace update for that step, then the gradients for dy."""
    _lru_pass(x, dy, vec, mat, cmat, dy, dx, TRACES | GRAD | (INPUT_GRAD if want_dx else 0))


@kernel
def lru_step_grad(x, dy, vec, mat, cmat, y, dx, want_dx):
    """Fused forward + traces + gradients for a dL/dy_t = dy known in advance."""
    _lru_pass(x, dy, vec, mat, cmat, y, dx, FORWARD | TRACES | GRAD | (INPUT_GRAD if want_dx else 0))

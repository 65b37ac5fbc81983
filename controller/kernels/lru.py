"""Online LRU baseline with exact RTRL (DESIGN §3.4, docs/rtu_math.md).

    h_t = lambda * h_{t-1} + gamma * (B x_t),   lambda = exp(-e^nu + i e^theta),  gamma = exp(gamma_log)
    y_t = Re(C h_t)

Packed arrays (rows and slabs in ``controller.kernels.layout``), all one dtype, C-contiguous:
``vec`` (LRU_VEC_ROWS, n), ``mat`` (LRU_MAT_SLABS, n, d) with B and its trace, ``cmat``
(LRU_CMAT_SLABS, m, n) with C and its gradient, ``y`` (m,) the output, ``dx`` (d,) the input gradient.

Traces (complex, element-wise over units): e_lam <- lambda e_lam + h_{t-1};  e_g <- lambda e_g + B x_t;
e_B <- lambda e_B + gamma x^T. For a real parameter p with dh/dp = s and q = dL/dRe h - i dL/dIm h,
dL/dp = Re(q s). C is trained one-step (y depends on C only through the current h).
Twins: ``controller.reference.lru_step_reference`` / ``lru_grad_reference``.
"""
import math

from numba import njit

from controller.kernels.layout import (
    LRU_B_IM, LRU_B_RE, LRU_BX_IM, LRU_BX_RE, LRU_C_IM, LRU_C_RE, LRU_E_G_IM, LRU_E_G_RE,
    LRU_E_LAM_IM, LRU_E_LAM_RE, LRU_E_NU, LRU_E_TH, LRU_EB_IM, LRU_EB_RE, LRU_GAMMA, LRU_GB_IM,
    LRU_GB_RE, LRU_GC_IM, LRU_GC_RE, LRU_GLOG, LRU_GR_GLOG, LRU_GR_NU, LRU_GR_TH, LRU_H_IM, LRU_H_RE,
    LRU_LAM_IM, LRU_LAM_RE, LRU_NU, LRU_PH_IM, LRU_PH_RE, LRU_Q_IM, LRU_Q_RE, LRU_SRC_GLOG, LRU_SRC_NU,
    LRU_SRC_TH, LRU_TH,
)
from controller.kernels.rtu import FASTMATH


@njit(cache=True)
def _coefficients_row(vec, k):
    e_nu = math.exp(float(vec[LRU_NU, k]))
    e_th = math.exp(float(vec[LRU_TH, k]))
    r = math.exp(-e_nu)
    vec[LRU_LAM_RE, k] = r * math.cos(e_th)
    vec[LRU_LAM_IM, k] = r * math.sin(e_th)
    vec[LRU_GAMMA, k] = math.exp(float(vec[LRU_GLOG, k]))
    vec[LRU_E_NU, k] = e_nu
    vec[LRU_E_TH, k] = e_th
    vec[LRU_SRC_NU, k] = vec[LRU_NU, k]
    vec[LRU_SRC_TH, k] = vec[LRU_TH, k]
    vec[LRU_SRC_GLOG, k] = vec[LRU_GLOG, k]


@njit(cache=True)
def _ensure_coefficients(vec, k):
    if (vec[LRU_NU, k] != vec[LRU_SRC_NU, k] or vec[LRU_TH, k] != vec[LRU_SRC_TH, k]
            or vec[LRU_GLOG, k] != vec[LRU_SRC_GLOG, k]):
        _coefficients_row(vec, k)


@njit(cache=True)
def lru_refresh_coefficients(vec):
    """Recompute lambda, gamma, e^nu, e^theta for every unit whose parameters changed. In place."""
    for k in range(vec.shape[1]):
        _ensure_coefficients(vec, k)


@njit(cache=True, fastmath=FASTMATH)
def _forward_row(k, x, vec, mat):
    _ensure_coefficients(vec, k)
    br = mat[LRU_B_RE, k]
    bi = mat[LRU_B_IM, k]
    zero = vec.dtype.type(0.0)
    ur = zero
    ui = zero
    for j in range(x.shape[0]):
        ur += br[j] * x[j]
        ui += bi[j] * x[j]
    lr = vec[LRU_LAM_RE, k]
    li = vec[LRU_LAM_IM, k]
    gam = vec[LRU_GAMMA, k]
    hr = vec[LRU_H_RE, k]
    hi = vec[LRU_H_IM, k]
    vec[LRU_PH_RE, k] = hr
    vec[LRU_PH_IM, k] = hi
    vec[LRU_BX_RE, k] = ur
    vec[LRU_BX_IM, k] = ui
    vec[LRU_H_RE, k] = lr * hr - li * hi + gam * ur
    vec[LRU_H_IM, k] = lr * hi + li * hr + gam * ui


@njit(cache=True, fastmath=FASTMATH)
def _readout(vec, cmat, y):
    """y = Re(C h) = C_re h_re - C_im h_im, y: (m,) out."""
    hr = vec[LRU_H_RE]
    hi = vec[LRU_H_IM]
    for m in range(y.shape[0]):
        cr = cmat[LRU_C_RE, m]
        ci = cmat[LRU_C_IM, m]
        acc = vec.dtype.type(0.0)
        for k in range(hr.shape[0]):
            acc += cr[k] * hr[k] - ci[k] * hi[k]
        y[m] = acc


@njit(cache=True, fastmath=FASTMATH)
def _traces_row(k, x, vec, mat):
    lr = vec[LRU_LAM_RE, k]
    li = vec[LRU_LAM_IM, k]
    gam = vec[LRU_GAMMA, k]
    a = vec[LRU_E_LAM_RE, k]
    b = vec[LRU_E_LAM_IM, k]
    vec[LRU_E_LAM_RE, k] = lr * a - li * b + vec[LRU_PH_RE, k]
    vec[LRU_E_LAM_IM, k] = lr * b + li * a + vec[LRU_PH_IM, k]
    a = vec[LRU_E_G_RE, k]
    b = vec[LRU_E_G_IM, k]
    vec[LRU_E_G_RE, k] = lr * a - li * b + vec[LRU_BX_RE, k]
    vec[LRU_E_G_IM, k] = lr * b + li * a + vec[LRU_BX_IM, k]
    er = mat[LRU_EB_RE, k]
    ei = mat[LRU_EB_IM, k]
    for j in range(x.shape[0]):
        a = er[j]
        b = ei[j]
        er[j] = lr * a - li * b + gam * x[j]
        ei[j] = lr * b + li * a


@njit(cache=True, fastmath=FASTMATH)
def _output_grad(dy, vec, cmat):
    """dL/dRe h and dL/dIm h into rows Q_RE, Q_IM; the one-step gradient of C into GC slabs."""
    n = vec.shape[1]
    qr = vec[LRU_Q_RE]
    qi = vec[LRU_Q_IM]
    hr = vec[LRU_H_RE]
    hi = vec[LRU_H_IM]
    for k in range(n):
        qr[k] = 0
        qi[k] = 0
    for m in range(dy.shape[0]):
        g = dy[m]
        cr = cmat[LRU_C_RE, m]
        ci = cmat[LRU_C_IM, m]
        gcr = cmat[LRU_GC_RE, m]
        gci = cmat[LRU_GC_IM, m]
        for k in range(n):
            qr[k] += g * cr[k]
            qi[k] -= g * ci[k]
            gcr[k] = g * hr[k]
            gci[k] = -g * hi[k]


@njit(cache=True, fastmath=FASTMATH)
def _grad_row(k, x, vec, mat, dx, want_dx):
    a = vec[LRU_Q_RE, k]   # q = a - i b
    b = vec[LRU_Q_IM, k]
    lr = vec[LRU_LAM_RE, k]
    li = vec[LRU_LAM_IM, k]
    gam = vec[LRU_GAMMA, k]
    elr = vec[LRU_E_LAM_RE, k]
    eli = vec[LRU_E_LAM_IM, k]
    pr = elr * lr - eli * li          # p = e_lam * lambda
    pi = elr * li + eli * lr
    e_nu = vec[LRU_E_NU, k]
    e_th = vec[LRU_E_TH, k]
    vec[LRU_GR_NU, k] = -e_nu * (a * pr + b * pi)           # s = -e^nu p
    vec[LRU_GR_TH, k] = e_th * (b * pr - a * pi)            # s = i e^theta p
    vec[LRU_GR_GLOG, k] = gam * (a * vec[LRU_E_G_RE, k] + b * vec[LRU_E_G_IM, k])  # s = gamma e_g
    er = mat[LRU_EB_RE, k]
    ei = mat[LRU_EB_IM, k]
    gr = mat[LRU_GB_RE, k]
    gi = mat[LRU_GB_IM, k]
    for j in range(dx.shape[0]):
        u = er[j]
        v = ei[j]
        gr[j] = a * u + b * v     # s = e_B
        gi[j] = b * u - a * v     # s = i e_B
    if want_dx:
        ga = gam * a
        gb = gam * b
        br = mat[LRU_B_RE, k]
        bi = mat[LRU_B_IM, k]
        for j in range(dx.shape[0]):
            dx[j] += ga * br[j] + gb * bi[j]  # s = gamma B[k, j]


@njit(cache=True, fastmath=FASTMATH)
def lru_forward(x, vec, mat, cmat, y):
    """Forward only: h_{t-1} -> h_t, y = Re(C h_t). x: (d,) in; vec in/out; y: (m,) out."""
    for k in range(vec.shape[1]):
        _forward_row(k, x, vec, mat)
    _readout(vec, cmat, y)


@njit(cache=True, fastmath=FASTMATH)
def lru_step(x, vec, mat, cmat, y):
    """Fused forward + RTRL trace update. Twin: reference.lru_step_reference."""
    for k in range(vec.shape[1]):
        _forward_row(k, x, vec, mat)
        _traces_row(k, x, vec, mat)
    _readout(vec, cmat, y)


@njit(cache=True, fastmath=FASTMATH)
def lru_grad(x, dy, vec, mat, cmat, dx, want_dx):
    """Gradients at the current step for dL/dy_t = dy: (m,). Rows GR_*, slabs GB_*, GC_* out.

    x is unused (kept so every LRU learning kernel takes the same leading arguments).
    Twin: reference.lru_grad_reference.
    """
    if want_dx:
        for j in range(dx.shape[0]):
            dx[j] = 0
    _output_grad(dy, vec, cmat)
    for k in range(vec.shape[1]):
        _grad_row(k, x, vec, mat, dx, want_dx)


@njit(cache=True, fastmath=FASTMATH)
def lru_traces_grad(x, dy, vec, mat, cmat, dx, want_dx):
    """After ``lru_forward(x)``: the trace update for that step, then the gradients for dy."""
    if want_dx:
        for j in range(dx.shape[0]):
            dx[j] = 0
    _output_grad(dy, vec, cmat)
    for k in range(vec.shape[1]):
        _traces_row(k, x, vec, mat)
        _grad_row(k, x, vec, mat, dx, want_dx)


@njit(cache=True, fastmath=FASTMATH)
def lru_step_grad(x, dy, vec, mat, cmat, y, dx, want_dx):
    """Fused forward + traces + gradients for a dL/dy_t = dy known in advance.

    The read-out needs every unit's new state before the output gradient, so this is two passes:
    forward + traces, then gradients.
    """
    lru_step(x, vec, mat, cmat, y)
    lru_grad(x, dy, vec, mat, cmat, dx, want_dx)

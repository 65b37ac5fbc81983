"""The RTU's per-unit coefficients from its parameters (design.md §3.1, §3.3): g = r cos θ, φ = r sin θ,
η = sqrt(1 − r²) + ε and their ν/ϑ derivatives, with r = exp(−exp(ν)), θ = exp(ϑ), in rows G..DPHI_TH of
``vec`` (``controller.kernels.layout``).

The forward pass (``controller.kernels.rtu``) recomputes a unit lazily when nu_log or theta_log differ
from the values its coefficients came from (rows SRC_NU, SRC_TH), so a write into the parameters is
always honoured; ``rtu_refresh_coefficients`` recomputes every unit after an update, off the action path,
in one vectorised loop (branch-free exp/sin/cos of ``controller.kernels.elementary``; both routes give
the same bits). Twin: ``controller.reference.rtu_coefficients``.
"""
import math

import numpy as np
from numba import njit

from controller.kernels.elementary import ELEMENTARY_OPTIONS, SINCOS_MAX, exp_f64, expm1_f64, sincos_f64
from controller.kernels.jit import exact
from controller.kernels.layout import (
    RTU_DETA_NU, RTU_DG_NU, RTU_DG_TH, RTU_DPHI_NU, RTU_DPHI_TH, RTU_ETA, RTU_G, RTU_NU, RTU_PHI, RTU_SRC_NU,
    RTU_SRC_TH, RTU_TH,
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
    it; it stays written out here because a helper returning the eight values as a tuple is not inlined.
    Units whose ϑ is beyond THETA_LOG_MAX (or not finite) are redone with libm.
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
    path: one vectorised pass instead of six libm calls per unit.
    """
    _refresh_units(vec, official, 0, vec.shape[1])

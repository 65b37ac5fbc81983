"""Row indices of the packed arrays that cells hand to their kernels.

Every numba call from Python costs about 0.1 µs per array argument (design.md §6 item 7), so a cell keeps
its per-unit vectors in one 2-D array ``vec`` (rows below, each of length n) and its (n, d) matrices in
one 3-D array ``mat`` (slabs below). The public views (``cell.params``, ``cell.state``...) are slices of
these arrays, so writing into a view writes into the cell.

The constants are plain module integers: numba freezes them into the compiled kernels.
"""

# ---------------------------------------------------------------- RTU: vec rows, each (n,)
RTU_NU = 0          # parameter nu_log
RTU_TH = 1          # parameter theta_log
RTU_G = 2           # g = r cos(theta)
RTU_PHI = 3         # phi = r sin(theta)
RTU_ETA = 4         # eta = sqrt(1 - r^2) + 1e-8
RTU_DG_NU = 5       # dg/dnu_log
RTU_DPHI_NU = 6     # dphi/dnu_log
RTU_DETA_NU = 7     # deta/dnu_log
RTU_DG_TH = 8       # dg/dtheta_log
RTU_DPHI_TH = 9     # dphi/dtheta_log
RTU_SRC_NU = 10     # nu_log value the coefficients were computed from (NaN = stale)
RTU_SRC_TH = 11     # theta_log value the coefficients were computed from
RTU_C1 = 12         # state c1_t
RTU_C2 = 13         # state c2_t
RTU_Y1 = 14         # output, real half (rows Y1, Y2 are adjacent: vec[Y1:Y1+2] is y of length 2n)
RTU_Y2 = 15         # output, imaginary half
RTU_PC1 = 16        # c1_{t-1}, saved by the forward for the deferred trace update
RTU_PC2 = 17        # c2_{t-1}
RTU_U1 = 18         # u1_t = w1 x_t, saved by the forward
RTU_U2 = 19         # u2_t = w2 x_t
RTU_S1_NU = 20      # RTRL trace dc1/dnu_log
RTU_S2_NU = 21      # RTRL trace dc2/dnu_log
RTU_S1_TH = 22      # RTRL trace dc1/dtheta_log
RTU_S2_TH = 23      # RTRL trace dc2/dtheta_log
RTU_GR_NU = 24      # gradient wrt nu_log (rows GR_NU, GR_TH adjacent)
RTU_GR_TH = 25      # gradient wrt theta_log
RTU_D1 = 26         # scratch: delta1 = dL/dc1_t of the current gradient
RTU_D2 = 27         # scratch: delta2 = dL/dc2_t
RTU_FP1 = 28        # scratch: f'(a1_t) (non-linear RTU; 1 for the linear RTU)
RTU_FP2 = 29        # scratch: f'(a2_t)
RTU_Q1 = 30         # scratch: eta * dL/da1_t, the one-step input path
RTU_Q2 = 31         # scratch: eta * dL/da2_t
RTU_VEC_ROWS = 32

# ---------------------------------------------------------------- RTU: mat slabs, each (d, n)
# Input-major: slab[j, k] belongs to unit k and input j, so the public (n, d) arrays are the transposed
# views slab.T (Fortran-ordered, shape (n, d)). The kernels then sweep inputs in the outer loop and
# units in the contiguous inner loop, which vectorises over units with no per-unit horizontal sums.
RTU_W1 = 0          # parameter w1
RTU_W2 = 1          # parameter w2
RTU_GW1 = 2         # gradient wrt w1
RTU_GW2 = 3         # gradient wrt w2
RTU_S1_W1 = 4       # RTRL trace dc1/dw1
RTU_S2_W1 = 5       # RTRL trace dc2/dw1
RTU_S1_W2 = 6       # RTRL trace dc1/dw2 (non-linear RTU only; linear: = -S2_W1)
RTU_S2_W2 = 7       # RTRL trace dc2/dw2 (non-linear RTU only; linear: = +S1_W1)
RTU_MAT_SLABS_LINEAR = 6
RTU_MAT_SLABS_NONLINEAR = 8

# ---------------------------------------------------------------- codes shared by kernels
VARIANT_LINEAR = 0
VARIANT_NONLINEAR = 1
ACT_TANH = 0
ACT_RELU = 1
ACT_IDENTITY = 2

VARIANTS = {"linear": VARIANT_LINEAR, "nonlinear": VARIANT_NONLINEAR}
ACTIVATIONS = {"tanh": ACT_TANH, "relu": ACT_RELU, "identity": ACT_IDENTITY}

# ---------------------------------------------------------------- phases of a cell pass (_rtu_pass, _lru_pass)
# Combined with |; each public cell kernel is one pass with the phases it needs.
FORWARD = 1         # advance the state: pre-activation, activation, the values the traces need
TRACES = 2          # RTRL trace update for the last forward (the same x)
GRAD = 4            # contract the traces with dy into the gradient rows/slabs
INPUT_GRAD = 8      # also dL/dx_t along the one-step path into dx (zeroed without GRAD)
ACCUMULATE = 16     # with GRAD (RTU): G <- decay G + gradient instead of G <- gradient; returns ||G||_1
APPLY = 32          # with ACCUMULATE (RTU): first p <- p + step G for every parameter (dx from the old p)
ROW_FUSED = 64      # with TRACES | GRAD | ACCUMULATE (non-linear RTU): traces and gradient of a slab row in
                    # one loop, as the critic's deferred pass does; the actor's two loops round ||G||_1 apart

# ---------------------------------------------------------------- LRU: vec rows, each (n,)
LRU_NU = 0          # parameter nu_log
LRU_TH = 1          # parameter theta_log
LRU_GLOG = 2        # parameter gamma_log
LRU_LAM_RE = 3      # Re(lambda) = exp(-e^nu) cos(e^theta)
LRU_LAM_IM = 4      # Im(lambda) = exp(-e^nu) sin(e^theta)
LRU_GAMMA = 5       # gamma = exp(gamma_log)
LRU_E_NU = 6        # e^nu_log      (d lambda / d nu_log = -e^nu lambda)
LRU_E_TH = 7        # e^theta_log   (d lambda / d theta_log = i e^theta lambda)
LRU_SRC_NU = 8      # parameter values the coefficients were computed from (NaN = stale)
LRU_SRC_TH = 9
LRU_SRC_GLOG = 10
LRU_H_RE = 11       # state Re(h_t)
LRU_H_IM = 12       # state Im(h_t)
LRU_PH_RE = 13      # Re(h_{t-1}), saved by the forward
LRU_PH_IM = 14      # Im(h_{t-1})
LRU_BX_RE = 15      # Re(B x_t), saved by the forward
LRU_BX_IM = 16      # Im(B x_t)
LRU_E_LAM_RE = 17   # RTRL trace dh/dlambda (complex)
LRU_E_LAM_IM = 18
LRU_E_G_RE = 19     # RTRL trace dh/dgamma (complex)
LRU_E_G_IM = 20
LRU_Q_RE = 21       # scratch: dL/dRe h
LRU_Q_IM = 22       # scratch: dL/dIm h
LRU_GR_NU = 23      # gradients (rows GR_NU, GR_TH, GR_GLOG adjacent)
LRU_GR_TH = 24
LRU_GR_GLOG = 25
LRU_VEC_ROWS = 26

# ---------------------------------------------------------------- LRU: mat slabs, each (d, n), input-major as for the RTU
LRU_B_RE = 0
LRU_B_IM = 1
LRU_GB_RE = 2
LRU_GB_IM = 3
LRU_EB_RE = 4       # RTRL trace dh/dB (complex; dh/dB_re = e, dh/dB_im = i e)
LRU_EB_IM = 5
LRU_MAT_SLABS = 6

# ---------------------------------------------------------------- LRU: cmat slabs, each (m, n)
LRU_C_RE = 0
LRU_C_IM = 1
LRU_GC_RE = 2
LRU_GC_IM = 3
LRU_CMAT_SLABS = 4

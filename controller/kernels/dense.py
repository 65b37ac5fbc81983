"""Dense layers around the recurrent cell: the encoder (Dense -> LayerNorm -> f) and the head
(Dense -> [LayerNorm] -> f -> Dense), forward and one-step backward (design.md §3.5).

f, the hidden activation of both dense layers, is ``lay[LAY_ACT]``: ``ACT_TANH`` or ``ACT_LEAKY_RELU``
(slope ``LEAKY_SLOPE`` below 0, as torch's default); ``lay[LAY_HEAD_LN]`` = 1 puts a LayerNorm (no affine)
after the head's hidden Dense, as the encoder has.

A network keeps all its dense parameters in one flat array ``P`` (gradients ``G`` and eligibility traces
have the same layout) and its activations and scratch in one flat array ``A``; the offsets live in a
small int64 array ``lay`` (indices below), built once by ``controller.networks.NetworkLayout``. One array
per role keeps each kernel call to a handful of arguments (design.md §6 item 7: ~0.1 µs per argument).

Shapes, all row-major inside ``P``:

* encoder: We (H, d) at P[LAY_P_WE], be (H,) at P[LAY_P_BE]; pre = We x + be, ln = LayerNorm(pre) (no
  affine, eps ``LN_EPS``), enc = f(ln): the cell's input.
* head: Wh (H2, M) at P[LAY_P_WH], bh (H2,); hid = f(Wh y + bh), or f(LayerNorm(Wh y + bh)) with
  LAY_HEAD_LN; Wo (k, H2), bo (k,); out = Wo hid + bo. The head's input y (M = ``lay[LAY_HIN]``) is the
  cell output (M = m), or with the input skip (``lay[LAY_SKIP]``) [cell output, encoder output]
  (M = m + H), copied into A[HIN] by ``skip_gather``: the LRU's D x term, through the head's Dense.

Backward is the one-step gradient (design.md §3.3: only the cell gets full-history gradients). ``G`` is
overwritten unless ``acc`` (then accumulated into eligibility traces). Reference: the whole network's
gradient against torch autograd, ``controller.reference_torch.network_onestep_grads_torch``
(tests/controller/test_networks.py).
"""
import math

from controller.kernels.activation import tanh_scalar
from controller.kernels.jit import kernel

LN_EPS = 1e-5
ACT_TANH = 0
ACT_LEAKY_RELU = 1
LEAKY_SLOPE = 0.01
HIDDEN_ACTIVATIONS = {"tanh": ACT_TANH, "leaky_relu": ACT_LEAKY_RELU}

LAY_D = 0          # observation size d
LAY_H = 1          # encoder width H
LAY_M = 2          # cell output size m
LAY_H2 = 3         # head hidden width H2
LAY_K = 4          # head output size k
LAY_P_WE = 5       # offsets into P / G / Z
LAY_P_BE = 6
LAY_P_WH = 7
LAY_P_BH = 8
LAY_P_WO = 9
LAY_P_BO = 10
LAY_P_SIZE = 11
LAY_A_PRE = 12     # offsets into A: encoder pre-activation (H)
LAY_A_LN = 13      # layer-normalised pre-activation (H)
LAY_A_ENC = 14     # encoder output (H): the cell input
LAY_A_HID = 15     # head hidden (H2)
LAY_A_OUT = 16     # head output (k)
LAY_A_DOUT = 17    # dL/dout (k), written by the caller before head_backward
LAY_A_DHID = 18    # dL/d(hidden pre-activation) (H2)
LAY_A_DY = 19      # dL/dy (m): the cell output's gradient
LAY_A_RSTD = 20    # 1 / sqrt(var + eps) of the LayerNorm (1)
LAY_A_SIZE = 21
LAY_ACT = 22       # hidden activation f of both dense layers (ACT_*)
LAY_HEAD_LN = 23   # 1: LayerNorm after the head's hidden Dense
LAY_A_HLN = 24     # head: layer-normalised pre-activation (H2), when LAY_HEAD_LN
LAY_A_HRSTD = 25   # head: 1 / sqrt(var + eps) of its LayerNorm (1)
LAY_A_X = 26       # copy of the encoder's last input x (d): the deferred learning pass reads it
LAY_HIN = 27       # head input size M: m, or m + H with the input skip
LAY_A_HIN = 28     # offsets into A: the head input [cell output, encoder output] (M), with the skip
LAY_SKIP = 29      # 1: input skip, the head also sees the cell's input (the encoder output)
LAY_SIZE = 30


@kernel
def _activate(src, dst, act):
    """dst = f(src) elementwise (the branch outside the loop, so each loop vectorises)."""
    if act == ACT_TANH:
        for i in range(src.shape[0]):
            dst[i] = tanh_scalar(src[i])
    else:
        for i in range(src.shape[0]):
            v = src[i]
            dst[i] = v if v > 0.0 else LEAKY_SLOPE * v


@kernel
def _activation_slope_times(out, g, act):
    """g *= f'(.) in place, with f' read from the activation's output ``out`` (tanh: 1 - out^2; leaky
    ReLU: 1 where out > 0, else LEAKY_SLOPE)."""
    if act == ACT_TANH:
        for i in range(g.shape[0]):
            g[i] = g[i] * (1.0 - out[i] * out[i])
    else:
        for i in range(g.shape[0]):
            g[i] = g[i] if out[i] > 0.0 else LEAKY_SLOPE * g[i]


@kernel
def _layer_norm(pre, ln):
    """ln = (pre - mean) / sqrt(var + LN_EPS) (no affine); returns the 1 / sqrt(var + eps) used."""
    h = pre.shape[0]
    mean = 0.0
    for i in range(h):
        mean += pre[i]
    mean /= h
    var = 0.0
    for i in range(h):
        c = pre[i] - mean
        var += c * c
    var /= h
    rstd = 1.0 / math.sqrt(var + LN_EPS)
    for i in range(h):
        ln[i] = (pre[i] - mean) * rstd
    return rstd


@kernel
def _layer_norm_backward(g, ln, rstd):
    """In place: g = dL/dln on entry, dL/dpre on exit (LayerNorm without affine, saved ln and rstd)."""
    h = g.shape[0]
    mean_g = 0.0
    mean_gl = 0.0
    for i in range(h):
        mean_g += g[i]
        mean_gl += g[i] * ln[i]
    mean_g /= h
    mean_gl /= h
    for i in range(h):
        g[i] = rstd * (g[i] - mean_g - ln[i] * mean_gl)


@kernel
def encoder_forward(x, P, A, lay):
    """enc = f(LayerNorm(We x + be)). x: (d,) in (normalised observation); P in; A out (PRE, LN,
    ENC, RSTD, and X: a copy of x)."""
    d, h = lay[LAY_D], lay[LAY_H]
    we = P[lay[LAY_P_WE]:lay[LAY_P_WE] + h * d].reshape((h, d))
    be = P[lay[LAY_P_BE]:lay[LAY_P_BE] + h]
    pre = A[lay[LAY_A_PRE]:lay[LAY_A_PRE] + h]
    ln = A[lay[LAY_A_LN]:lay[LAY_A_LN] + h]
    enc = A[lay[LAY_A_ENC]:lay[LAY_A_ENC] + h]
    xs = A[lay[LAY_A_X]:lay[LAY_A_X] + d]
    for j in range(d):
        xs[j] = x[j]
    for i in range(h):
        s = be[i]
        for j in range(d):
            s += we[i, j] * x[j]
        pre[i] = s
    A[lay[LAY_A_RSTD]] = _layer_norm(pre, ln)
    _activate(ln, enc, lay[LAY_ACT])


@kernel
def encoder_backward(x, genc, P, A, G, lay, acc, decay):
    """One-step gradient of the encoder. x: (d,) the input of the last encoder_forward; genc: (H,)
    dL/denc; G out (We, be slots). Uses A's saved LN, ENC, RSTD; A's PRE is overwritten (scratch).
    acc: accumulate G <- decay G + gradient instead (G is then an eligibility trace; decay a scalar of
    G's dtype); returns the L1 norm of the written We, be slots (float64) when acc, else 0."""
    d, h = lay[LAY_D], lay[LAY_H]
    ln = A[lay[LAY_A_LN]:lay[LAY_A_LN] + h]
    enc = A[lay[LAY_A_ENC]:lay[LAY_A_ENC] + h]
    gl = A[lay[LAY_A_PRE]:lay[LAY_A_PRE] + h]  # scratch: dL/dln
    gwe = G[lay[LAY_P_WE]:lay[LAY_P_WE] + h * d].reshape((h, d))
    gbe = G[lay[LAY_P_BE]:lay[LAY_P_BE] + h]
    for i in range(h):
        gl[i] = genc[i]
    _activation_slope_times(enc, gl, lay[LAY_ACT])
    _layer_norm_backward(gl, ln, A[lay[LAY_A_RSTD]])   # gl: dL/dpre
    l1 = 0.0
    for i in range(h):
        gp = gl[i]
        if acc:
            v = decay * gbe[i] + gp
            gbe[i] = v
            l1 += abs(v)
            for j in range(d):
                v = decay * gwe[i, j] + gp * x[j]
                gwe[i, j] = v
                l1 += abs(v)
        else:
            gbe[i] = gp
            for j in range(d):
                gwe[i, j] = gp * x[j]
    return l1


@kernel
def skip_gather(y, A, lay):
    """The input skip's head input: A[HIN] (m + H,) = [y, A[ENC]]. y: (m,) in, the cell output."""
    m, h = lay[LAY_M], lay[LAY_H]
    hin = A[lay[LAY_A_HIN]:lay[LAY_A_HIN] + m + h]
    enc = A[lay[LAY_A_ENC]:lay[LAY_A_ENC] + h]
    for j in range(m):
        hin[j] = y[j]
    for j in range(h):
        hin[m + j] = enc[j]


@kernel
def skip_grad_add(A, lay, genc):
    """genc (H,) += dL/d(encoder output) along the input skip, the last H entries of A[DY] (m + H,)
    that the head's backward wrote. In place: genc holds the cell's input gradient on entry."""
    m, h = lay[LAY_M], lay[LAY_H]
    dskip = A[lay[LAY_A_DY] + m:lay[LAY_A_DY] + m + h]
    for j in range(h):
        genc[j] += dskip[j]


@kernel
def head_forward(y, P, A, lay):
    """hid = f([LayerNorm](Wh y + bh)); out = Wo hid + bo. y: (M,) in, the head input (cell output, or
    A[HIN] with the input skip); A out (HID, OUT, and HLN, HRSTD with the head LayerNorm)."""
    m, h2, k = lay[LAY_HIN], lay[LAY_H2], lay[LAY_K]
    wh = P[lay[LAY_P_WH]:lay[LAY_P_WH] + h2 * m].reshape((h2, m))
    bh = P[lay[LAY_P_BH]:lay[LAY_P_BH] + h2]
    wo = P[lay[LAY_P_WO]:lay[LAY_P_WO] + k * h2].reshape((k, h2))
    bo = P[lay[LAY_P_BO]:lay[LAY_P_BO] + k]
    hid = A[lay[LAY_A_HID]:lay[LAY_A_HID] + h2]
    out = A[lay[LAY_A_OUT]:lay[LAY_A_OUT] + k]
    for i in range(h2):
        s = bh[i]
        for j in range(m):
            s += wh[i, j] * y[j]
        hid[i] = s
    if lay[LAY_HEAD_LN]:
        hln = A[lay[LAY_A_HLN]:lay[LAY_A_HLN] + h2]
        A[lay[LAY_A_HRSTD]] = _layer_norm(hid, hln)
        _activate(hln, hid, lay[LAY_ACT])
    else:
        _activate(hid, hid, lay[LAY_ACT])
    for o in range(k):
        s = bo[o]
        for i in range(h2):
            s += wo[o, i] * hid[i]
        out[o] = s


@kernel
def head_backward(y, P, A, G, lay, acc, decay):
    """One-step gradient of the head for dL/dout in A[DOUT] (k,). y: (M,) the last head input.
    Writes G (Wh, bh, Wo, bo slots), A[DHID] and A[DY] (M,) = dL/dy (its first m entries for the cell,
    the rest, with the input skip, for the encoder: ``skip_grad_add``). acc, decay: as in
    encoder_backward (returns the L1 norm of the written slots when acc)."""
    m, h2, k = lay[LAY_HIN], lay[LAY_H2], lay[LAY_K]
    wh = P[lay[LAY_P_WH]:lay[LAY_P_WH] + h2 * m].reshape((h2, m))
    wo = P[lay[LAY_P_WO]:lay[LAY_P_WO] + k * h2].reshape((k, h2))
    gwh = G[lay[LAY_P_WH]:lay[LAY_P_WH] + h2 * m].reshape((h2, m))
    gbh = G[lay[LAY_P_BH]:lay[LAY_P_BH] + h2]
    gwo = G[lay[LAY_P_WO]:lay[LAY_P_WO] + k * h2].reshape((k, h2))
    gbo = G[lay[LAY_P_BO]:lay[LAY_P_BO] + k]
    hid = A[lay[LAY_A_HID]:lay[LAY_A_HID] + h2]
    dout = A[lay[LAY_A_DOUT]:lay[LAY_A_DOUT] + k]
    dhid = A[lay[LAY_A_DHID]:lay[LAY_A_DHID] + h2]
    dy = A[lay[LAY_A_DY]:lay[LAY_A_DY] + m]
    l1 = 0.0
    for i in range(h2):
        dhid[i] = 0.0
    for o in range(k):
        g = dout[o]
        if acc:
            v = decay * gbo[o] + g
            gbo[o] = v
            l1 += abs(v)
            for i in range(h2):
                v = decay * gwo[o, i] + g * hid[i]
                gwo[o, i] = v
                l1 += abs(v)
        else:
            gbo[o] = g
            for i in range(h2):
                gwo[o, i] = g * hid[i]
        for i in range(h2):
            dhid[i] += g * wo[o, i]
    _activation_slope_times(hid, dhid, lay[LAY_ACT])
    if lay[LAY_HEAD_LN]:
        _layer_norm_backward(dhid, A[lay[LAY_A_HLN]:lay[LAY_A_HLN] + h2], A[lay[LAY_A_HRSTD]])
    for j in range(m):
        dy[j] = 0.0
    for i in range(h2):
        g = dhid[i]
        if acc:
            v = decay * gbh[i] + g
            gbh[i] = v
            l1 += abs(v)
            for j in range(m):
                v = decay * gwh[i, j] + g * y[j]
                gwh[i, j] = v
                l1 += abs(v)
        else:
            gbh[i] = g
            for j in range(m):
                gwh[i, j] = g * y[j]
        for j in range(m):
            dy[j] += g * wh[i, j]
    return l1


@kernel
def encoder_backward_apply(genc, P, A, Z, lay, step, decay, do_apply):
    """The encoder's part of the deferred learning pass (``head_backward_apply``): if do_apply,
    We, be <- We, be + step z (z: their traces in Z); then z <- decay z + one-step gradient for
    dL/denc = genc (H,), with the input x read from A[X]. Returns ||z||_1 of the We, be slots."""
    d, h = lay[LAY_D], lay[LAY_H]
    if do_apply:
        # We then be, contiguous. Through views indexed from 0: a loop over range(start, stop) of P
        # itself did not vectorise (numba cannot prove the index non-negative) and cost 0.6 µs.
        lo, hi = lay[LAY_P_WE], lay[LAY_P_WE] + h * d + h
        p = P[lo:hi]
        z = Z[lo:hi]
        for i in range(p.shape[0]):
            p[i] += step * z[i]
    return encoder_backward(A[lay[LAY_A_X]:lay[LAY_A_X] + d], genc, P, A, Z, lay, True, decay)


@kernel
def _dense_backward_apply(w, b, zw, zb, x, g, gx, step, decay, do_apply, l1):
    """One Dense layer out = w x + b of the deferred learning pass (``head_backward_apply``): for
    dL/dout = g (k,) and its input x (d,) of the last forward: gx (d,) = wᵀ g with w before the step;
    if do_apply, w, b <- w, b + step (zw, zb); then zw, zb <- decay (zw, zb) + (g xᵀ, g). Returns
    l1 plus the L1 norm of the new traces. 2-D indexing, no per-row views: each view is an atomic
    reference-count update, and on the critic's helper thread those collided with the main thread's
    (see rtu_traces_grad_apply_accumulate)."""
    for j in range(gx.shape[0]):
        gx[j] = 0.0
    for o in range(g.shape[0]):
        go = g[o]
        for j in range(x.shape[0]):
            gx[j] += go * w[o, j]
        if do_apply:
            b[o] += step * zb[o]
            for j in range(x.shape[0]):
                w[o, j] += step * zw[o, j]
        v = decay * zb[o] + go
        zb[o] = v
        l1 += abs(v)
        for j in range(x.shape[0]):
            v = decay * zw[o, j] + go * x[j]
            zw[o, j] = v
            l1 += abs(v)
    return l1


@kernel
def head_backward_apply(y, P, A, Z, lay, step, decay, do_apply):
    """The head's part of the deferred learning pass of a network whose gradient was not materialised:
    for dL/dout in A[DOUT] (k,) and the head input y (M,) of the last forward, and for every head
    parameter w with eligibility trace z in Z: if do_apply, w <- w + step z (ObGD with the traces as
    they are); then z <- decay z + dL/dw (one-step gradient). A[DHID] and A[DY] = dL/dy (M,) are
    computed with the weights before the step. One sweep over each weight row: it reads w and z once
    where ``head_backward`` + ``_apply_accumulate`` wrote and re-read a gradient array. step, decay:
    scalars of P's dtype. Returns ||z||_1 of the head slots (float64)."""
    m, h2, k = lay[LAY_HIN], lay[LAY_H2], lay[LAY_K]
    wh = P[lay[LAY_P_WH]:lay[LAY_P_WH] + h2 * m].reshape((h2, m))
    bh = P[lay[LAY_P_BH]:lay[LAY_P_BH] + h2]
    wo = P[lay[LAY_P_WO]:lay[LAY_P_WO] + k * h2].reshape((k, h2))
    bo = P[lay[LAY_P_BO]:lay[LAY_P_BO] + k]
    zwh = Z[lay[LAY_P_WH]:lay[LAY_P_WH] + h2 * m].reshape((h2, m))
    zbh = Z[lay[LAY_P_BH]:lay[LAY_P_BH] + h2]
    zwo = Z[lay[LAY_P_WO]:lay[LAY_P_WO] + k * h2].reshape((k, h2))
    zbo = Z[lay[LAY_P_BO]:lay[LAY_P_BO] + k]
    hid = A[lay[LAY_A_HID]:lay[LAY_A_HID] + h2]
    dout = A[lay[LAY_A_DOUT]:lay[LAY_A_DOUT] + k]
    dhid = A[lay[LAY_A_DHID]:lay[LAY_A_DHID] + h2]
    dy = A[lay[LAY_A_DY]:lay[LAY_A_DY] + m]
    l1 = _dense_backward_apply(wo, bo, zwo, zbo, hid, dout, dhid, step, decay, do_apply, 0.0)
    _activation_slope_times(hid, dhid, lay[LAY_ACT])
    if lay[LAY_HEAD_LN]:
        _layer_norm_backward(dhid, A[lay[LAY_A_HLN]:lay[LAY_A_HLN] + h2], A[lay[LAY_A_HRSTD]])
    return _dense_backward_apply(wh, bh, zwh, zbh, y, dhid, dy, step, decay, do_apply, l1)

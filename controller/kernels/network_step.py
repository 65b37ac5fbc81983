"""Kernels over one network (encoder -> cell -> head) as a ``NetState`` StructRef
(``controller.kernels.netstate``): forward, backward, eligibility accumulation, ObGD's apply. They call the
plain array kernels ``dense`` (encoder, head), ``rtu`` / ``lru`` (the cell, chosen by
``s.kind[CODE_CELL]``) and ``traces``; ``controller.kernels.agent_step`` composes them into the agent's
tick and ``controller.networks.Network`` calls them one by one.

A network with fused traces (``s.kind[CODE_FUSED_TRACES]`` = 1: the RTU networks of the agent) keeps the
cell's eligibility traces in its gradient rows/slabs: the actor adds each gradient straight into them
(``net_backward_accumulate``), the critic's gradient is computed inside its next learning pass
(``_deferred_learn``). Every eligibility trace decays by ``s.decay`` (γλ per group), so no kernel here
takes a decay. Twins: the composition is checked against torch autograd in
tests/controller/test_networks.py.
"""
from controller.kernels.dense import (
    LAY_A_DY, LAY_A_ENC, LAY_H, LAY_M, LAY_SKIP, encoder_backward, encoder_backward_apply, encoder_forward,
    head_backward, head_backward_apply, head_forward, skip_gather, skip_grad_add,
)
from controller.kernels.jit import kernel
from controller.kernels.lru import lru_forward, lru_refresh_coefficients, lru_traces_grad
from controller.kernels.netstate import (
    CODE_ACTIVATION, CODE_CELL, CODE_FUSED_TRACES, CODE_VARIANT, DECAY_CELL, DECAY_DENSE, KIND_LRU, KIND_RTU,
    SC_CELL_STEP, SC_NO_DECAY, SC_STEP,
)
from controller.kernels.rtu import (
    rtu_forward, rtu_refresh_coefficients, rtu_traces_grad, rtu_traces_grad_accumulate,
    rtu_traces_grad_apply_accumulate,
)
from controller.kernels.traces import _accumulate, _apply, _apply_accumulate


@kernel
def net_forward(s, x):
    """x: (d,) normalised observation -> s.A[OUT]; advances the cell state (its traces wait). With the
    input skip the head sees s.hin = [cell output, encoder output]."""
    encoder_forward(x, s.P, s.A, s.lay)
    kind = s.kind[CODE_CELL]
    h = s.lay[LAY_H]
    a_enc = s.lay[LAY_A_ENC]
    if kind == KIND_RTU:
        rtu_forward(s.A[a_enc:a_enc + h], s.vec, s.mat, s.kind[CODE_VARIANT], s.kind[CODE_ACTIVATION],
                    s.official[0])
    elif kind == KIND_LRU:
        lru_forward(s.A[a_enc:a_enc + h], s.vec, s.mat, s.cmat, s.y)
    if s.lay[LAY_SKIP]:
        skip_gather(s.y, s.A, s.lay)
    head_forward(s.hin, s.P, s.A, s.lay)


@kernel
def _cell_io(s):
    """(the cell's input, dL/d(cell output)): the views of s.A holding the encoder output (H,) and the
    gradient the head sent back to the cell (m,)."""
    a_enc = s.lay[LAY_A_ENC]
    a_dy = s.lay[LAY_A_DY]
    return s.A[a_enc:a_enc + s.lay[LAY_H]], s.A[a_dy:a_dy + s.lay[LAY_M]]


@kernel
def net_backward(s, x):
    """After net_forward(s, x) with s.A[DOUT] set: head one-step gradient, cell RTRL trace update and
    full-history gradient, encoder one-step gradient, through the cell's input and (input skip) straight
    from the head (G and the cell's gradients overwritten)."""
    d = s.sc[SC_NO_DECAY]  # a scalar of the network's dtype, unused when not accumulating
    head_backward(s.hin, s.P, s.A, s.G, s.lay, False, d)
    kind = s.kind[CODE_CELL]
    x_cell, dy_cell = _cell_io(s)
    if kind == KIND_RTU:
        rtu_traces_grad(x_cell, dy_cell, s.vec, s.mat, s.dx, s.kind[CODE_VARIANT], s.kind[CODE_ACTIVATION], True)
        if s.lay[LAY_SKIP]:
            skip_grad_add(s.A, s.lay, s.dx)
        encoder_backward(x, s.dx, s.P, s.A, s.G, s.lay, False, d)
    elif kind == KIND_LRU:
        lru_traces_grad(x_cell, dy_cell, s.vec, s.mat, s.cmat, s.dx, True)
        if s.lay[LAY_SKIP]:
            skip_grad_add(s.A, s.lay, s.dx)
        encoder_backward(x, s.dx, s.P, s.A, s.G, s.lay, False, d)
    else:
        encoder_backward(x, dy_cell, s.P, s.A, s.G, s.lay, False, d)


@kernel
def net_backward_accumulate(s, x):
    """``net_backward`` then ``net_accumulate`` without materialising the gradient: for a network whose
    RTU keeps its eligibility traces in its gradient rows/slabs (``s.kind[CODE_FUSED_TRACES]`` = 1, see
    controller.networks), every one-step and RTRL gradient is added straight into the traces,
    z <- decay z + ∇ (decay: s.decay of the parameter's group), saving a write and a read of every
    gradient. Other networks take the two-pass route. Returns ||z||_1 (its dense and cell shares in
    s.zl1)."""
    if s.kind[CODE_FUSED_TRACES] == 0:
        net_backward(s, x)
        return net_accumulate(s)
    d = s.decay[DECAY_DENSE]
    l1_dense = head_backward(s.hin, s.P, s.A, s.Z, s.lay, True, d)
    x_cell, dy_cell = _cell_io(s)
    l1_cell = rtu_traces_grad_accumulate(x_cell, dy_cell, s.vec, s.mat, s.dx, s.kind[CODE_VARIANT],
                                         s.kind[CODE_ACTIVATION], s.decay[DECAY_CELL])
    if s.lay[LAY_SKIP]:
        skip_grad_add(s.A, s.lay, s.dx)
    l1_dense += encoder_backward(x, s.dx, s.P, s.A, s.Z, s.lay, True, d)
    return _record_l1(s, l1_dense, l1_cell)


@kernel
def net_forward_backward(s, x):
    """Forward and the backward work for a dL/dout already in s.A[DOUT] (the critic's dV = 1). For a
    network with fused traces (``s.kind[CODE_FUSED_TRACES]`` = 1) all of it is deferred: the next
    ``net_accumulate`` or ``net_apply(then_accumulate)`` updates the cell's RTRL traces and computes the gradient while it
    streams through the parameters and traces anyway (``_deferred_learn``)."""
    net_forward(s, x)
    if s.kind[CODE_FUSED_TRACES] == 0:
        net_backward(s, x)


@kernel
def _deferred_learn(s, step, cell_step, do_apply):
    """The learning pass of a fused-traces network after ``net_forward_backward``: the cell's RTRL
    trace update for that forward; if do_apply, ObGD's w <- w + step z (the cell's parameters:
    cell_step) with the eligibility traces as they are; then z <- decay z + ∇ (decay: s.decay of the
    parameter's group) with the gradient of that forward, computed here (head, cell, encoder) with the
    parameters before the step. One sweep over each weight array reads w, z (and the RTRL traces) once;
    the two-pass route wrote a gradient array in the backward and re-read it here. step, cell_step:
    scalars of the network's dtype. Returns ||z||_1 (shares in s.zl1)."""
    d = s.decay[DECAY_DENSE]
    l1_dense = head_backward_apply(s.hin, s.P, s.A, s.Z, s.lay, step, d, do_apply)
    x_cell, dy_cell = _cell_io(s)
    l1_cell = rtu_traces_grad_apply_accumulate(x_cell, dy_cell, s.vec, s.mat, s.dx, s.kind[CODE_VARIANT],
                                               s.kind[CODE_ACTIVATION], cell_step, s.decay[DECAY_CELL],
                                               do_apply)
    if s.lay[LAY_SKIP]:
        skip_grad_add(s.A, s.lay, s.dx)
    l1_dense += encoder_backward_apply(s.dx, s.P, s.A, s.Z, s.lay, step, d, do_apply)
    return _record_l1(s, l1_dense, l1_cell)


@kernel
def _record_l1(s, l1_dense, l1_cell):
    """s.zl1 = [l1_dense, l1_cell]; returns their sum, the network's ||z||_1."""
    s.zl1[0] = l1_dense
    s.zl1[1] = l1_cell
    return l1_dense + l1_cell


@kernel
def net_accumulate(s):
    """z <- decay z + g for every parameter of the network (decay: s.decay of its group); returns
    ||z||_1 (shares in s.zl1). A network with fused traces computes g here (the deferred gradient of its
    last ``net_forward_backward``)."""
    d = s.decay[DECAY_DENSE]
    dc = s.decay[DECAY_CELL]
    if s.kind[CODE_FUSED_TRACES] != 0:
        return _deferred_learn(s, d, dc, False)  # steps unused without do_apply
    l1_cell = _accumulate(dc, s.g1, s.z1) + _accumulate(dc, s.g2, s.z2) + _accumulate(dc, s.g3, s.z3)
    return _record_l1(s, _accumulate(d, s.G, s.Z), l1_cell)


@kernel
def _refresh(s):
    kind = s.kind[CODE_CELL]
    if kind == KIND_RTU:
        rtu_refresh_coefficients(s.vec, s.official[0])
    elif kind == KIND_LRU:
        lru_refresh_coefficients(s.vec)


@kernel
def net_apply(s, step, cell_step, then_accumulate):
    """w <- w + step z for the dense parameters and w <- w + cell_step z for the cell's; if
    then_accumulate, also z <- decay z + g in the same pass (decay: s.decay of the group; returns
    ||z||_1 with its shares in s.zl1, else 0; with fused traces g is the deferred gradient of the last
    ``net_forward_backward``). Refreshes the cell's coefficients, off the action path."""
    s.sc[SC_STEP] = step
    s.sc[SC_CELL_STEP] = cell_step
    st = s.sc[SC_STEP]  # in the network's dtype
    sc = s.sc[SC_CELL_STEP]
    l1 = 0.0
    if then_accumulate and s.kind[CODE_FUSED_TRACES] != 0:
        l1 = _deferred_learn(s, st, sc, True)
    elif then_accumulate:
        d = s.decay[DECAY_DENSE]
        dc = s.decay[DECAY_CELL]
        l1_cell = (_apply_accumulate(sc, dc, s.g1, s.z1, s.p1) + _apply_accumulate(sc, dc, s.g2, s.z2, s.p2)
                   + _apply_accumulate(sc, dc, s.g3, s.z3, s.p3))
        l1 = _record_l1(s, _apply_accumulate(st, d, s.G, s.Z, s.P), l1_cell)
    else:
        _apply(st, s.Z, s.P)
        _apply(sc, s.z1, s.p1)
        _apply(sc, s.z2, s.p2)
        _apply(sc, s.z3, s.p3)
    _refresh(s)
    return l1

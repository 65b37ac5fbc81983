"""Whole-network passes: encoder -> cell -> head in one call from Python (DESIGN §6 item 7).

Each call from Python to a numba kernel costs ~0.3 µs plus ~0.1 µs per array argument, so a network's
forward (three kernels) and backward (three kernels) are each fused here into one compiled function per
cell kind; calls between compiled functions cost almost nothing. Arguments: the network's flat arrays
(``controller.kernels.dense``), then the cell's packed arrays, then integer flags.

* ``*_forward``: x (d,) -> A[OUT]; advances the cell state (traces wait).
* ``*_backward``: after the forward and with A[DOUT] set: head one-step gradient, cell RTRL trace update
  and full-history gradient, encoder one-step gradient (G and the cell's gradient arrays overwritten).
* ``*_forward_backward``: both (the critic's pass, whose dL/dout = 1 is known in advance).
"""
from controller.kernels.dense import (
    LAY_A_DY, LAY_A_ENC, LAY_H, LAY_M, encoder_backward, encoder_forward, head_backward, head_forward,
)
from controller.kernels.jit import kernel
from controller.kernels.lru import lru_forward, lru_traces_grad
from controller.kernels.rtu import rtu_forward, rtu_traces_grad


@kernel
def rtu_network_forward(x, P, A, lay, vec, mat, y, variant, act, official):
    """x: (d,); P, A, lay: the network's arrays; vec, mat: the RTU's; y: (2n,) the RTU output view."""
    encoder_forward(x, P, A, lay)
    h = lay[LAY_H]
    rtu_forward(A[lay[LAY_A_ENC]:lay[LAY_A_ENC] + h], vec, mat, variant, act, official)
    head_forward(y, P, A, lay)


@kernel
def rtu_network_backward(x, P, A, G, lay, vec, mat, y, dx, variant, act):
    """dx: (H,) scratch for the RTU's input gradient."""
    head_backward(y, P, A, G, lay)
    h = lay[LAY_H]
    m = lay[LAY_M]
    rtu_traces_grad(A[lay[LAY_A_ENC]:lay[LAY_A_ENC] + h], A[lay[LAY_A_DY]:lay[LAY_A_DY] + m], vec, mat,
                    dx, variant, act, True)
    encoder_backward(x, dx, P, A, G, lay)


@kernel
def rtu_network_forward_backward(x, P, A, G, lay, vec, mat, y, dx, variant, act, official):
    rtu_network_forward(x, P, A, lay, vec, mat, y, variant, act, official)
    rtu_network_backward(x, P, A, G, lay, vec, mat, y, dx, variant, act)


@kernel
def lru_network_forward(x, P, A, lay, vec, mat, cmat, y):
    encoder_forward(x, P, A, lay)
    h = lay[LAY_H]
    lru_forward(A[lay[LAY_A_ENC]:lay[LAY_A_ENC] + h], vec, mat, cmat, y)
    head_forward(y, P, A, lay)


@kernel
def lru_network_backward(x, P, A, G, lay, vec, mat, cmat, y, dx):
    head_backward(y, P, A, G, lay)
    h = lay[LAY_H]
    m = lay[LAY_M]
    lru_traces_grad(A[lay[LAY_A_ENC]:lay[LAY_A_ENC] + h], A[lay[LAY_A_DY]:lay[LAY_A_DY] + m], vec, mat,
                    cmat, dx, True)
    encoder_backward(x, dx, P, A, G, lay)


@kernel
def lru_network_forward_backward(x, P, A, G, lay, vec, mat, cmat, y, dx):
    lru_network_forward(x, P, A, lay, vec, mat, cmat, y)
    lru_network_backward(x, P, A, G, lay, vec, mat, cmat, y, dx)


@kernel
def dense_network_forward(x, P, A, lay):
    """No recurrence: the head reads the encoder output directly."""
    encoder_forward(x, P, A, lay)
    h = lay[LAY_H]
    head_forward(A[lay[LAY_A_ENC]:lay[LAY_A_ENC] + h], P, A, lay)


@kernel
def dense_network_backward(x, P, A, G, lay):
    h = lay[LAY_H]
    head_backward(A[lay[LAY_A_ENC]:lay[LAY_A_ENC] + h], P, A, G, lay)
    encoder_backward(x, A[lay[LAY_A_DY]:lay[LAY_A_DY] + h], P, A, G, lay)


@kernel
def dense_network_forward_backward(x, P, A, G, lay):
    dense_network_forward(x, P, A, lay)
    dense_network_backward(x, P, A, G, lay)

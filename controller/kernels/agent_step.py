"""Fused kernels of the streaming agent: one call from Python per piece of a tick (design.md §6 item 7).

Every kernel takes whole networks as ``NetState`` StructRefs (``controller.kernels.netstate``) and calls
the plain array kernels: ``dense`` (encoder, head), ``rtu`` / ``lru`` (the cell, chosen by
``s.kind[CODE_CELL]``), ``traces`` (eligibility, ObGD), ``heads`` (policy), ``normalize``. A tick is then

    act:    act_gaussian / act_categorical     normalise obs -> actor forward -> sample
    learn:  critic_observe                     normalise s' -> critic forward -> V(s') (an RTU critic's
                                               RTRL update and gradient wait for δ: _deferred_learn)
            actor_credit_*                     d log π(a|s) (+ entropy) -> actor RTRL + gradients -> z_π
            agent_apply                        ObGD step of both networks (+ z_v takes ∇V(s'))

(``credit_*_and_apply`` fuse the last two; the ``*_threaded`` variants hand the critic's pass to its
helper thread, ``controller.critic_thread``.)

ObGD bounds each network's step by its whole ||z||₁, or (``per_group``) the dense layers and the cell
each by their own share (``NetState.zl1``), see ``obgd_steps``. Every eligibility trace decays by its
network's ``NetState.decay`` (γλ of the dense layers and of the cell, set when the network is built), so
no kernel here takes a decay.

Twins: each piece is the composition of array kernels that have their own twins and tests; the
composition is checked against torch autograd in tests/controller/test_networks.py and by the agent
tests.
"""
import math

import numpy as np

from controller.kernels.dense import (
    LAY_A_DY, LAY_A_ENC, LAY_A_OUT, LAY_H, LAY_M, LAY_SKIP, encoder_backward, encoder_backward_apply,
    encoder_forward, head_backward, head_backward_apply, head_forward, skip_gather, skip_grad_add,
)
from controller.kernels.heads import categorical_dout, categorical_sample, gaussian_dout, gaussian_sample
from controller.kernels.jit import exact, kernel
from controller.kernels.lru import lru_forward, lru_refresh_coefficients, lru_traces_grad
from controller.kernels.netstate import (
    CODE_ACTIVATION, CODE_CELL, CODE_FUSED_TRACES, CODE_VARIANT, DECAY_CELL, DECAY_DENSE, KIND_LRU, KIND_RTU,
    SC_CELL_STEP, SC_NO_DECAY, SC_STEP,
)
from controller.kernels.normalize import normalize_observation
from controller.kernels.rtu import (
    rtu_forward, rtu_refresh_coefficients, rtu_traces_grad, rtu_traces_grad_accumulate,
    rtu_traces_grad_apply_accumulate,
)
from controller.kernels.sync import load_acquire, store_release
from controller.kernels.traces import _accumulate, _apply, _apply_accumulate


# ----------------------------------------------------------------------------- one network
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
def net_backward(s, x):
    """After net_forward(s, x) with s.A[DOUT] set: head one-step gradient, cell RTRL trace update and
    full-history gradient, encoder one-step gradient, through the cell's input and (input skip) straight
    from the head (G and the cell's gradients overwritten)."""
    d = s.sc[SC_NO_DECAY]  # a scalar of the network's dtype, unused when not accumulating
    head_backward(s.hin, s.P, s.A, s.G, s.lay, False, d)
    kind = s.kind[CODE_CELL]
    h = s.lay[LAY_H]
    m = s.lay[LAY_M]
    a_enc = s.lay[LAY_A_ENC]
    a_dy = s.lay[LAY_A_DY]
    if kind == KIND_RTU:
        rtu_traces_grad(s.A[a_enc:a_enc + h], s.A[a_dy:a_dy + m], s.vec, s.mat, s.dx, s.kind[CODE_VARIANT],
                        s.kind[CODE_ACTIVATION], True)
        if s.lay[LAY_SKIP]:
            skip_grad_add(s.A, s.lay, s.dx)
        encoder_backward(x, s.dx, s.P, s.A, s.G, s.lay, False, d)
    elif kind == KIND_LRU:
        lru_traces_grad(s.A[a_enc:a_enc + h], s.A[a_dy:a_dy + m], s.vec, s.mat, s.cmat, s.dx, True)
        if s.lay[LAY_SKIP]:
            skip_grad_add(s.A, s.lay, s.dx)
        encoder_backward(x, s.dx, s.P, s.A, s.G, s.lay, False, d)
    else:
        encoder_backward(x, s.A[a_dy:a_dy + m], s.P, s.A, s.G, s.lay, False, d)


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
    dc = s.decay[DECAY_CELL]
    h = s.lay[LAY_H]
    m = s.lay[LAY_M]
    a_enc = s.lay[LAY_A_ENC]
    a_dy = s.lay[LAY_A_DY]
    l1_dense = head_backward(s.hin, s.P, s.A, s.Z, s.lay, True, d)
    l1_cell = rtu_traces_grad_accumulate(s.A[a_enc:a_enc + h], s.A[a_dy:a_dy + m], s.vec, s.mat, s.dx,
                                         s.kind[CODE_VARIANT], s.kind[CODE_ACTIVATION], dc)
    if s.lay[LAY_SKIP]:
        skip_grad_add(s.A, s.lay, s.dx)
    l1_dense += encoder_backward(x, s.dx, s.P, s.A, s.Z, s.lay, True, d)
    return _record_l1(s, l1_dense, l1_cell)


@kernel
def net_forward_backward(s, x):
    """Forward and the backward work for a dL/dout already in s.A[DOUT] (the critic's dV = 1). For a
    network with fused traces (``s.kind[CODE_FUSED_TRACES]`` = 1) all of it is deferred: the next ``net_accumulate`` or
    ``net_apply(then_accumulate)`` updates the cell's RTRL traces and computes the gradient while it
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
    dc = s.decay[DECAY_CELL]
    h = s.lay[LAY_H]
    m = s.lay[LAY_M]
    a_enc = s.lay[LAY_A_ENC]
    a_dy = s.lay[LAY_A_DY]
    l1_dense = head_backward_apply(s.hin, s.P, s.A, s.Z, s.lay, step, d, do_apply)
    l1_cell = rtu_traces_grad_apply_accumulate(s.A[a_enc:a_enc + h], s.A[a_dy:a_dy + m], s.vec, s.mat,
                                               s.dx, s.kind[CODE_VARIANT], s.kind[CODE_ACTIVATION], cell_step,
                                               dc, do_apply)
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


# ----------------------------------------------------------------------------- agent pieces
@exact
def _copy_finite(obs, out):
    """out = obs if every value is finite; returns the first non-finite index or -1 (out untouched)."""
    for i in range(obs.shape[0]):
        if not math.isfinite(obs[i]):
            return i
    for i in range(obs.shape[0]):
        out[i] = obs[i]
    return -1


@kernel
def observe(obs, stats, x, normalize, update):
    """Normalise obs into x (``normalize``; statistics updated first if ``update``) or copy it; returns
    the first non-finite index of obs or -1 (then x is untouched)."""
    if normalize:
        return normalize_observation(obs, stats, x, update)
    return _copy_finite(obs, x)


@kernel
def act_gaussian(s, obs, stats, x, normalize, update, noise, low, high, action):
    """Normalise obs into x (kept as it was if obs is not finite), actor forward, Gaussian sample into
    action (clipped to [low, high]). Returns (index of the first non-finite obs value or -1,
    1 if the policy output was not finite else 0)."""
    bad = observe(obs, stats, x, normalize, update)
    net_forward(s, x)
    return bad, gaussian_sample(s.A, s.lay, noise, low, high, action)


@kernel
def act_categorical(s, obs, stats, x, normalize, update, k, u):
    """As act_gaussian for a categorical policy over k actions (u ~ U[0, 1)). Returns (bad obs index or
    -1, the action index or -1 if the logits were not finite)."""
    bad = observe(obs, stats, x, normalize, update)
    net_forward(s, x)
    return bad, categorical_sample(s.A, s.lay, k, u)


@kernel
def critic_observe(s, obs, stats, x, normalize, update):
    """Normalise obs into x, then critic forward + RTRL + gradient of V (s.A[DOUT] holds 1; with fused
    traces the gradient is deferred to the critic's ``net_apply`` / ``net_accumulate``). Returns
    (bad obs index or -1, V(obs) as float64; 0 when obs is not finite and nothing was run)."""
    bad = observe(obs, stats, x, normalize, update)
    if bad >= 0:
        return bad, 0.0
    net_forward_backward(s, x)
    return bad, np.float64(s.A[s.lay[LAY_A_OUT]])


@kernel
def actor_credit_gaussian(s, x, action, low, high, ent_coef):
    """d/dout [log π(action) + ent_coef H] (π: the Gaussian clipped to [low, high], heads.gaussian_dout)
    -> actor RTRL + gradients -> z_π <- decay z_π + ∇ (s.decay per group). x: the actor's input of its
    last forward. Returns ||z_π||_1."""
    gaussian_dout(s.A, s.lay, action, low, high, ent_coef)
    return net_backward_accumulate(s, x)


@kernel
def actor_credit_categorical(s, x, k, action, ent_coef):
    """As actor_credit_gaussian for a categorical policy; action: the index credited."""
    categorical_dout(s.A, s.lay, k, action, ent_coef)
    return net_backward_accumulate(s, x)


@exact
def _obgd_step(alpha, kappa, delta, z_l1):
    """ObGD's α_eff = α / max(α κ max(|δ|, 1) ||z||₁, 1) (twin: traces.obgd_step_size). No fastmath:
    the same rounding as the Python twin, which the tests use as the oracle."""
    dbar = abs(delta) if abs(delta) > 1.0 else 1.0
    bound = alpha * kappa * dbar * z_l1
    return alpha / bound if bound > 1.0 else alpha


@exact
def obgd_steps(alpha, kappa, delta, zl1, per_group):
    """(α_eff of the dense layers, α_eff of the cell) of one network from its recorded trace norms
    zl1 = [dense, cell]: both from the whole ||z||₁ = zl1[0] + zl1[1], or with per_group each from its
    own share (each group's update then stays within 1/κ on its own)."""
    if per_group:
        return _obgd_step(alpha, kappa, delta, zl1[0]), _obgd_step(alpha, kappa, delta, zl1[1])
    step = _obgd_step(alpha, kappa, delta, zl1[0] + zl1[1])
    return step, step


@kernel
def agent_apply(actor, critic, delta, alpha, kappa_policy, kappa_value, per_group, critic_accumulate):
    """ObGD of both networks: step sizes from their trace norms (``obgd_steps``), then w <- w + α_eff δ z;
    if critic_accumulate, the critic's trace then takes its waiting gradient ∇V(s') in the same pass.
    Returns (α_eff of the actor's dense layers, α_eff of the critic's dense layers)."""
    step_p, cell_p = obgd_steps(alpha, kappa_policy, delta, actor.zl1, per_group)
    step_v, cell_v = obgd_steps(alpha, kappa_value, delta, critic.zl1, per_group)
    net_apply(actor, step_p * delta, cell_p * delta, False)
    net_apply(critic, step_v * delta, cell_v * delta, critic_accumulate)
    return step_p, step_v


@kernel
def _credit_and_apply(actor, critic, x, delta, alpha, kappa_policy, kappa_value, critic_accumulate,
                      per_group):
    """After the policy head wrote dL/dout: actor RTRL + gradients into z_π, then ``agent_apply``."""
    net_backward_accumulate(actor, x)
    return agent_apply(actor, critic, delta, alpha, kappa_policy, kappa_value, per_group, critic_accumulate)


@kernel
def credit_gaussian_and_apply(actor, critic, x, action, low, high, ent_coef, delta, alpha, kappa_policy,
                              kappa_value, critic_accumulate, per_group):
    """``actor_credit_gaussian`` then ``agent_apply`` in one call (the gymnasium-order learn, where δ is
    known before the actor's gradient). Returns (α_eff of the actor, α_eff of the critic), dense layers'."""
    gaussian_dout(actor.A, actor.lay, action, low, high, ent_coef)
    return _credit_and_apply(actor, critic, x, delta, alpha, kappa_policy, kappa_value, critic_accumulate,
                             per_group)


@kernel
def credit_categorical_and_apply(actor, critic, x, k, action, ent_coef, delta, alpha, kappa_policy,
                                 kappa_value, critic_accumulate, per_group):
    """As credit_gaussian_and_apply for a categorical policy (action: the index credited)."""
    categorical_dout(actor.A, actor.lay, k, action, ent_coef)
    return _credit_and_apply(actor, critic, x, delta, alpha, kappa_policy, kappa_value, critic_accumulate,
                             per_group)


# ----------------------------------------------------------------------------- critic on a helper thread
# Layout of the hand-over arrays between the agent and its critic thread (controller.critic_thread,
# controller.kernels.worker): ctl int64 (CTL_SIZE,), args float64 (ARGS_SIZE,).
CTL_REQUEST = 0     # number of the last pass requested (the main thread releases it; < 0: stop)
CTL_DONE = 1        # number of the last pass finished (the helper releases it)
CTL_READY = 2       # 1 once the helper runs
CTL_SIZE = 8        # one 64-byte cache line
ARG_STEP = 0        # OP_APPLY: net_apply(critic, step, cell step, accumulate)
ARG_CELL_STEP = 1
ARG_ACCUMULATE = 2
ARG_OP = 3          # OP_APPLY or OP_OBSERVE
ARG_NORMALIZE = 4   # OP_OBSERVE: critic_observe(critic, obs copy, stats, x_next, normalize, False)
ARG_RESULT = 5      # OP_OBSERVE result: V(obs) (float64)
ARG_BAD = 6         # OP_OBSERVE result: first non-finite obs index or -1
ARGS_SIZE = 8
OP_APPLY = 0
OP_OBSERVE = 1


@kernel
def request_critic_pass(ctl, args, step, cell_step, accumulate):
    """Write the critic pass's arguments into args, then release the next request number in ctl (the
    helper acquires it, so it sees the arguments and every array written before). Returns the number."""
    args[ARG_STEP] = step
    args[ARG_CELL_STEP] = cell_step
    args[ARG_ACCUMULATE] = 1.0 if accumulate else 0.0
    args[ARG_OP] = OP_APPLY
    request = load_acquire(ctl, CTL_REQUEST) + 1
    store_release(ctl, CTL_REQUEST, request)
    return request


@kernel
def _credit_and_apply_threaded(actor, critic_zl1, ctl, args, x, delta, alpha, kappa_policy, kappa_value,
                               critic_accumulate, per_group):
    """``_credit_and_apply`` with the critic's pass handed to its helper thread first (its step sizes
    need only the critic's recorded trace norms critic_zl1), so that it runs while this thread does the
    actor's credit and ObGD step. Returns (α_eff of the actor, α_eff of the critic, request number)."""
    step_v, cell_v = obgd_steps(alpha, kappa_value, delta, critic_zl1, per_group)
    request = request_critic_pass(ctl, args, step_v * delta, cell_v * delta, critic_accumulate)
    net_backward_accumulate(actor, x)
    step_p, cell_p = obgd_steps(alpha, kappa_policy, delta, actor.zl1, per_group)
    net_apply(actor, step_p * delta, cell_p * delta, False)
    return step_p, step_v, request


@kernel
def credit_gaussian_and_apply_threaded(actor, critic_zl1, ctl, args, x, action, low, high, ent_coef, delta,
                                       alpha, kappa_policy, kappa_value, critic_accumulate, per_group):
    """``credit_gaussian_and_apply`` with the critic's pass on the helper thread
    (``_credit_and_apply_threaded``). Returns (α_eff actor, α_eff critic, request number)."""
    gaussian_dout(actor.A, actor.lay, action, low, high, ent_coef)
    return _credit_and_apply_threaded(actor, critic_zl1, ctl, args, x, delta, alpha, kappa_policy,
                                      kappa_value, critic_accumulate, per_group)


@kernel
def credit_categorical_and_apply_threaded(actor, critic_zl1, ctl, args, x, k, action, ent_coef, delta,
                                          alpha, kappa_policy, kappa_value, critic_accumulate, per_group):
    """As credit_gaussian_and_apply_threaded for a categorical policy."""
    categorical_dout(actor.A, actor.lay, k, action, ent_coef)
    return _credit_and_apply_threaded(actor, critic_zl1, ctl, args, x, delta, alpha, kappa_policy,
                                      kappa_value, critic_accumulate, per_group)

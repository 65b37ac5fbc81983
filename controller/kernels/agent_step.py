"""Fused kernels of the streaming agent: one call from Python per piece of a tick (design.md §6 item 7).

Every kernel takes whole networks as ``NetState`` StructRefs (``controller.kernels.netstate``) and calls
the one-network kernels of ``controller.kernels.network_step`` (re-exported here), ``heads`` (policy)
and ``normalize``. A tick is then

    act:    act_gaussian / act_categorical     normalise obs -> actor forward -> sample
    learn:  critic_observe                     normalise s' -> critic forward -> V(s') (an RTU critic's
                                               RTRL update and gradient wait for δ: _deferred_learn)
            actor_credit_*                     d log π(a|s) (+ entropy) -> actor RTRL + gradients -> z_π
            agent_apply                        ObGD step of both networks (+ z_v takes ∇V(s'))

``credit_and_apply`` fuses the last two for either head and runs the critic's pass inline or hands it
to its helper thread (``controller.critic_thread``).

ObGD's hyperparameters travel as one float64 array built by ``obgd_params`` (fields ``OBGD_*``), so no
two of them can be swapped at a call. ObGD bounds each network's step by its whole ||z||₁, or
(per group) the dense layers and the cell each by their own share (``NetState.zl1``), see
``obgd_steps``. Every eligibility trace decays by its network's ``NetState.decay`` (γλ of the dense
layers and of the cell, set when the network is built), so no kernel here takes a decay.

Twins: each piece is the composition of array kernels that have their own twins and tests; the
composition is checked against torch autograd in tests/controller/test_networks.py and by the agent
tests.
"""
import math

import numpy as np
from numba import types
from numba.extending import overload

from controller.kernels.dense import LAY_A_OUT, LAY_K
from controller.kernels.heads import categorical_dout, categorical_sample, gaussian_dout, gaussian_sample
from controller.kernels.jit import KERNEL_OPTIONS, exact, kernel
from controller.kernels.network_step import (  # noqa: F401  (the one-network kernels, re-exported)
    net_accumulate, net_apply, net_backward, net_backward_accumulate, net_forward, net_forward_backward,
)
from controller.kernels.normalize import normalize_observation
from controller.kernels.sync import load_acquire, store_release

# ObGD's hyperparameters, one float64 array (obgd_params): no two of them can be swapped at a call
OBGD_ALPHA = 0          # step size α
OBGD_KAPPA_POLICY = 1   # κ of the actor
OBGD_KAPPA_VALUE = 2    # κ of the critic
OBGD_PER_GROUP = 3      # 1.0: one bound per parameter group (dense layers, cell); 0.0: per network
OBGD_SIZE = 4

BOUND_LOW = 0           # bounds[BOUND_LOW]: lower action bounds of a Gaussian head (credit_and_apply)
BOUND_HIGH = 1          # bounds[BOUND_HIGH]: upper action bounds


def obgd_params(*, alpha, kappa_policy, kappa_value, per_group):
    """float64 (OBGD_SIZE,) array of ObGD's hyperparameters, built once by the agent (keywords only)."""
    params = np.zeros(OBGD_SIZE, np.float64)
    params[OBGD_ALPHA] = alpha
    params[OBGD_KAPPA_POLICY] = kappa_policy
    params[OBGD_KAPPA_VALUE] = kappa_value
    params[OBGD_PER_GROUP] = 1.0 if per_group else 0.0
    return params


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
def agent_apply(actor, critic, delta, obgd, critic_accumulate):
    """ObGD of both networks: step sizes from their trace norms (``obgd_steps``; obgd: ``obgd_params``),
    then w <- w + α_eff δ z; if critic_accumulate, the critic's trace then takes its waiting gradient
    ∇V(s') in the same pass. Returns (α_eff of the actor's dense layers, α_eff of the critic's)."""
    alpha = obgd[OBGD_ALPHA]
    per_group = obgd[OBGD_PER_GROUP] != 0.0
    step_p, cell_p = obgd_steps(alpha, obgd[OBGD_KAPPA_POLICY], delta, actor.zl1, per_group)
    step_v, cell_v = obgd_steps(alpha, obgd[OBGD_KAPPA_VALUE], delta, critic.zl1, per_group)
    net_apply(actor, step_p * delta, cell_p * delta, False)
    net_apply(critic, step_v * delta, cell_v * delta, critic_accumulate)
    return step_p, step_v


@kernel
def credit_and_apply(actor, critic, x, action, bounds, ent_coef, delta, obgd, critic_accumulate, ctl=None,
                     args=None):
    """The gymnasium-order learning step after δ is known, in one call: the policy head's dL/dout for the
    credited action, actor RTRL + gradients into z_π, ObGD of both networks (as ``agent_apply``).

    Head: a Gaussian one passes ``action`` float64 (a,) and ``bounds`` float64 (2, a) = [low; high]
    (``BOUND_*``, ``heads.gaussian_dout``); a categorical one an index ``action`` and ``bounds`` None
    (``heads.categorical_dout`` over the actor's outputs). Critic: without ``ctl``, ``critic`` is its
    NetState and its pass runs here after the actor's; with the hand-over arrays ``ctl``, ``args`` of its
    helper thread, ``critic`` is its trace norms ``zl1`` and the pass is handed over before the actor's
    (``request_critic_pass``), so that both run at once. obgd: ``obgd_params``. numba compiles one
    specialisation per head kind and threading (``_policy_dout``, ``_critic_first``, ``_critic_last``
    choose by argument type). Returns (α_eff of the actor, α_eff of the critic, dense layers'; the
    hand-over's request number or 0)."""
    _policy_dout(actor, action, bounds, ent_coef)
    step_v, request = _critic_first(critic, obgd, delta, critic_accumulate, ctl, args)
    net_backward_accumulate(actor, x)
    step_p, cell_p = obgd_steps(obgd[OBGD_ALPHA], obgd[OBGD_KAPPA_POLICY], delta, actor.zl1,
                                obgd[OBGD_PER_GROUP] != 0.0)
    net_apply(actor, step_p * delta, cell_p * delta, False)
    return step_p, _critic_last(critic, obgd, delta, critic_accumulate, ctl, step_v), request


def _policy_dout(actor, action, bounds, ent_coef):
    """Write the actor's dL/dout for the credited action: ``heads.gaussian_dout`` with bounds (2, a),
    ``heads.categorical_dout`` with bounds None. Only compiled (``_policy_dout_for``)."""
    raise NotImplementedError("_policy_dout runs inside numba kernels only")


def _critic_first(critic, obgd, delta, accumulate, ctl, args):
    """With a helper thread (ctl an array): the critic's step size from its trace norms ``critic`` and the
    hand-over of its pass; returns (α_eff, request). Inline (ctl None): nothing, (0.0, 0)."""
    raise NotImplementedError("_critic_first runs inside numba kernels only")


def _critic_last(critic, obgd, delta, accumulate, ctl, step):
    """Inline (ctl None): ObGD of the critic NetState ``critic`` (as in ``agent_apply``); returns its
    α_eff. With a helper thread: returns ``step`` (its pass is on the helper already)."""
    raise NotImplementedError("_critic_last runs inside numba kernels only")


def _is_none(typ):
    return isinstance(typ, (types.NoneType, types.Omitted))


@overload(_policy_dout, jit_options=KERNEL_OPTIONS)
def _policy_dout_for(actor, action, bounds, ent_coef):
    if _is_none(bounds):
        def categorical(actor, action, bounds, ent_coef):
            categorical_dout(actor.A, actor.lay, actor.lay[LAY_K], action, ent_coef)
        return categorical

    def gaussian(actor, action, bounds, ent_coef):
        gaussian_dout(actor.A, actor.lay, action, bounds[BOUND_LOW], bounds[BOUND_HIGH], ent_coef)
    return gaussian


@overload(_critic_first, jit_options=KERNEL_OPTIONS)
def _critic_first_for(critic, obgd, delta, accumulate, ctl, args):
    if _is_none(ctl):
        return lambda critic, obgd, delta, accumulate, ctl, args: (0.0, 0)

    def hand_over(critic, obgd, delta, accumulate, ctl, args):
        step, cell_step = obgd_steps(obgd[OBGD_ALPHA], obgd[OBGD_KAPPA_VALUE], delta, critic,
                                     obgd[OBGD_PER_GROUP] != 0.0)
        return step, request_critic_pass(ctl, args, step * delta, cell_step * delta, accumulate)
    return hand_over


@overload(_critic_last, jit_options=KERNEL_OPTIONS)
def _critic_last_for(critic, obgd, delta, accumulate, ctl, step):
    if not _is_none(ctl):
        return lambda critic, obgd, delta, accumulate, ctl, step: step

    def inline(critic, obgd, delta, accumulate, ctl, step):
        step_v, cell_v = obgd_steps(obgd[OBGD_ALPHA], obgd[OBGD_KAPPA_VALUE], delta, critic.zl1,
                                    obgd[OBGD_PER_GROUP] != 0.0)
        net_apply(critic, step_v * delta, cell_v * delta, accumulate)
        return step_v
    return inline


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

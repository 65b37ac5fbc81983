"""Streaming recurrent actor-critic: Stream AC(λ) with ObGD on RTU networks trained by RTRL (DESIGN §3.5).

No replay buffer, no batches: every transition updates an actor network and a critic network (each
encoder -> cell -> head, ``controller.networks``) once, with eligibility traces fed by the cell's RTRL
gradient and one-step gradients for encoder and head, and ObGD's bounded step.

Two ways to drive it, both act-then-learn (``act`` does forward work only):

* gymnasium order, one call per transition::

      obs, _ = env.reset(seed=0)
      while True:
          action = agent.act(obs)
          obs, reward, terminated, truncated, _ = env.step(action)
          agent.learn(reward, obs, terminated, truncated)
          if terminated or truncated:
              obs, _ = env.reset()

* real-time loop order (``controller.loop``), where the action of tick t is written before the learning
  of the transition that ended at tick t: ``act(obs_t)``, write, ``update(r_t, obs_t, term, trunc)``
  (learning for the transition s_{t-1} -> s_t; ``skip(...)`` instead when the tick's budget is spent),
  ``credit(applied_action_t)``. The actor then acts with parameters one update older, and the sign of δ
  in the entropy term is the previous transition's. ``reset()`` starts a new episode.

Per transition (s, a, r, s'): δ = r̃ + γ (1 − terminated) V(s') − V(s), with r̃ the scaled reward;
z_v ← γλ z_v + ∇V(s); z_π ← γλ z_π + ∇[log π(a|s) + c_ent sign(δ) H(π(·|s))] (λ per parameter group
if set: ``lam_policy_dense``...); per network
α_eff = α / max(α κ max(|δ|, 1) ||z||₁, 1) and w ← w + α_eff δ z (``obgd_scope="group"``: one α_eff for
the dense layers and one for the cell, each from its own ||z||₁; stats["alpha_eff_*"] are the dense
layers'). Truncation bootstraps, termination does
not. V(s) is the value the critic computed when it saw s (one update older than V(s')): with a recurrent
critic, re-evaluating V(s) under the new parameters would need the whole history.

Bad input: a non-finite observation or reward is never learned from. ``act`` then reuses the last finite
normalised observation (so the action stays finite), the transitions touching it do not update the
parameters, ``stats["non_finite_inputs"]`` counts them and one ``NonFiniteInputWarning`` is issued per
agent. Wrong observation sizes raise ``ValueError`` naming the expected and given shapes.
"""
import dataclasses
import math
import warnings
from typing import Literal

import numpy as np

from controller.buffers import aligned_zeros
from controller.config import check
from controller.critic_thread import CriticThread, usable_cpus
from controller.kernels import agent_step as AS
from controller.kernels.dense import HIDDEN_ACTIVATIONS
from controller.networks import Network

NOISE_BLOCK = 4096  # standard-normal / uniform draws made at once, off the per-step path
LAM_GROUPS = ("lam_policy_dense", "lam_policy_cell", "lam_value_dense", "lam_value_cell")


class NonFiniteInputWarning(RuntimeWarning):
    """An observation or reward was NaN or inf; the agent did not learn from it."""


@dataclasses.dataclass(frozen=True)
class AgentConfig:
    """Every hyperparameter of the streaming agent (defaults: DESIGN §3.5)."""

    cell: Literal["rtu-linear", "rtu-nonlinear", "lru", "none"] = "rtu-linear"
    """recurrent cell of both networks; "none" is the same agent without recurrence (feed-forward)"""
    n_units: int = 192
    """RTU / LRU units n (the cell outputs 2n features)"""
    encoder_width: int = 64
    """Dense layer before the cell (LayerNorm, hidden_activation)"""
    head_width: int = 64
    """Dense layer after the cell"""
    hidden_activation: Literal["tanh", "leaky_relu"] = "leaky_relu"
    """activation of both dense hidden layers (encoder and head); DESIGN §3.5 said tanh, the streaming
    deep RL reference uses leaky ReLU, which learns ~2x faster here (docs/agent.md, "Architecture")"""
    head_layernorm: bool = True
    """LayerNorm (no affine) after the head's hidden Dense, as after the encoder's (reference code)"""
    input_skip: bool = False
    """the head's Dense also reads the cell's input (the encoder output), as the LRU's D x term: the head
    sees the observation's features directly; no effect with cell "none" (docs/agent.md, "Learner options")"""
    rtu_activation: Literal["tanh", "relu", "identity"] = "tanh"
    rtu_r_min: float = 0.0
    """the RTU's initial |λ| = r: r² is drawn uniform on [rtu_r_min², rtu_r_max²] (RTUCell's r_min;
    both networks; no effect with cell "lru" or "none")"""
    rtu_r_max: float = 1.0
    """upper end of the RTU's initial r (RTUCell's r_max)"""
    rtu_max_phase: float = 6.28
    """the RTU's initial phases θ are drawn uniform on (0, rtu_max_phase) radians (RTUCell's max_phase)"""
    alpha: float = 1.0
    """ObGD step size α"""
    gamma: float = 0.99
    """discount γ"""
    lam: float = 0.8
    """trace decay λ of every parameter group whose own λ below is null"""
    lam_policy_dense: float | None = None
    """λ of the actor's dense layers (encoder and head): its traces decay by γ·λ; null: lam"""
    lam_policy_cell: float | None = None
    """λ of the actor's recurrent cell parameters; null: lam (no effect with cell "none")"""
    lam_value_dense: float | None = None
    """λ of the critic's dense layers; null: lam"""
    lam_value_cell: float | None = None
    """λ of the critic's recurrent cell parameters; null: lam (no effect with cell "none")"""
    kappa_policy: float | None = None
    """ObGD κ of the actor; None: 1.5 with a recurrent cell, 3.0 without"""
    kappa_value: float | None = None
    """ObGD κ of the critic; None: 1.0 with a recurrent cell, 2.0 without"""
    obgd_scope: Literal["network", "group"] = "network"
    """what one ObGD bound covers: "network" (DESIGN §3.5: the whole network's ||z||₁) or "group" (the
    dense layers and the recurrent cell each bounded by their own ||z||₁, so the cell is not slowed by
    the dense layers' larger traces; docs/agent.md, "ObGD scope")"""
    entropy_coef: float = 0.01
    """c_ent"""
    sparsity: float = 0.9
    """fraction of each dense unit's incoming weights zeroed at init"""
    normalize_observations: bool = True
    scale_rewards: bool = True
    dtype: Literal["float32", "float64"] = "float32"

    def __post_init__(self):
        check(self.n_units >= 1, "n_units", "an integer >= 1", self.n_units)
        check(self.encoder_width >= 1, "encoder_width", "an integer >= 1", self.encoder_width)
        check(self.head_width >= 1, "head_width", "an integer >= 1", self.head_width)
        check(0.0 < self.rtu_r_max <= 1.0, "rtu_r_max", "a number in (0, 1]", self.rtu_r_max)
        check(0.0 <= self.rtu_r_min < self.rtu_r_max, "rtu_r_min", f"a number in [0, rtu_r_max = {self.rtu_r_max})",
              self.rtu_r_min)
        check(self.rtu_max_phase > 0 and math.isfinite(self.rtu_max_phase), "rtu_max_phase",
              "a finite number > 0 (radians)", self.rtu_max_phase)
        check(self.alpha > 0 and math.isfinite(self.alpha), "alpha", "a finite number > 0", self.alpha)
        check(0.0 <= self.gamma <= 1.0, "gamma", "a number in [0, 1]", self.gamma)
        check(0.0 <= self.lam <= 1.0, "lam", "a number in [0, 1]", self.lam)
        for name in LAM_GROUPS:
            v = getattr(self, name)
            check(v is None or 0.0 <= v <= 1.0, name, "null or a number in [0, 1]", v)
        for name in ("kappa_policy", "kappa_value"):
            v = getattr(self, name)
            check(v is None or (v > 0 and math.isfinite(v)), name, "null or a finite number > 0", v)
        check(self.entropy_coef >= 0 and math.isfinite(self.entropy_coef), "entropy_coef",
              "a finite number >= 0", self.entropy_coef)
        check(self.hidden_activation in HIDDEN_ACTIVATIONS, "hidden_activation",
              f"one of {list(HIDDEN_ACTIVATIONS)}", self.hidden_activation)
        check(0.0 <= self.sparsity < 1.0, "sparsity", "a number in [0, 1)", self.sparsity)
        check(self.obgd_scope in ("network", "group"), "obgd_scope", "'network' or 'group'", self.obgd_scope)
        check(isinstance(self.input_skip, bool), "input_skip", "true or false", self.input_skip)

    @property
    def recurrent(self):
        return self.cell != "none"

    @property
    def trace_decays(self):
        """γ·λ of each parameter group, λ of a group being lam unless set:
        ((actor dense layers, actor cell), (critic dense layers, critic cell))."""
        def decay(lam):
            return self.gamma * (self.lam if lam is None else lam)

        return ((decay(self.lam_policy_dense), decay(self.lam_policy_cell)),
                (decay(self.lam_value_dense), decay(self.lam_value_cell)))

    @property
    def kappas(self):
        """(κ_policy, κ_value) with the cell-dependent defaults resolved."""
        kp = self.kappa_policy if self.kappa_policy is not None else (1.5 if self.recurrent else 3.0)
        kv = self.kappa_value if self.kappa_value is not None else (1.0 if self.recurrent else 2.0)
        return kp, kv


class Agent:
    """Streaming actor-critic with RTRL-trained recurrent networks. See the module docstring.

    Agent(observation_space, action_space, config=AgentConfig(), seed=0, critic_thread=False):
    ``observation_space`` a 1-D gymnasium ``Box``; ``action_space`` a 1-D ``Box`` (Gaussian policy,
    actions clipped to the bounds) or ``Discrete`` (categorical policy). ``critic_thread``: run the
    critic's learning pass of ``learn`` on a helper thread, overlapped with the caller's next act and
    env step (``controller.critic_thread``; needs a spare core; ``close()`` stops it). It is an execution
    option, not a hyperparameter: checkpoints load across it.
    """

    def __init__(self, observation_space, action_space, config=None, seed=0, critic_thread=False):
        from gymnasium import spaces

        self.config = config if config is not None else AgentConfig()
        if not isinstance(self.config, AgentConfig):
            raise TypeError(f"Agent: config must be an AgentConfig, got {type(self.config).__name__}")
        if not isinstance(observation_space, spaces.Box) or len(observation_space.shape) != 1:
            raise ValueError(f"Agent: observation_space must be a 1-D gymnasium Box, got {observation_space}")
        cfg = self.config
        self.dtype = np.dtype(cfg.dtype)
        self.n_obs = int(observation_space.shape[0])
        if isinstance(action_space, spaces.Discrete):
            self.discrete = True
            self.n_actions = int(action_space.n)
            n_policy_out = self.n_actions
            self.action = np.zeros(1, np.int64)
            self._low = self._high = None
        elif isinstance(action_space, spaces.Box) and len(action_space.shape) == 1:
            self.discrete = False
            self.n_actions = int(action_space.shape[0])
            n_policy_out = 2 * self.n_actions
            self.action = np.zeros(self.n_actions, np.float64)
            self._low = np.asarray(action_space.low, np.float64).copy()
            self._high = np.asarray(action_space.high, np.float64).copy()
        else:
            raise ValueError(f"Agent: action_space must be a 1-D Box or Discrete, got {action_space}")
        self.observation_space, self.action_space = observation_space, action_space
        self.seed = int(seed)
        seeds = np.random.SeedSequence(self.seed).spawn(3)
        net = dict(encoder_width=cfg.encoder_width, n_units=cfg.n_units, head_width=cfg.head_width,
                   rtu_activation=cfg.rtu_activation, sparsity=cfg.sparsity, dtype=self.dtype,
                   hidden_activation=cfg.hidden_activation, head_layernorm=cfg.head_layernorm,
                   rtu_r_min=cfg.rtu_r_min, rtu_r_max=cfg.rtu_r_max, rtu_max_phase=cfg.rtu_max_phase,
                   input_skip=cfg.input_skip)
        (policy_dense, policy_cell), (value_dense, value_cell) = cfg.trace_decays
        self.actor = Network(self.n_obs, n_policy_out, cfg.cell,
                             seed=int(seeds[0].generate_state(1)[0]), fused_traces=True,
                             trace_decay=policy_dense, cell_trace_decay=policy_cell, **net)
        self.critic = Network(self.n_obs, 1, cfg.cell, seed=int(seeds[1].generate_state(1)[0]),
                              fused_traces=True, trace_decay=value_dense, cell_trace_decay=value_cell, **net)
        self.critic.dout[0] = 1.0
        self.rng = np.random.default_rng(seeds[2])
        self._noise = np.zeros(NOISE_BLOCK, np.float64)
        self._noise_pos = NOISE_BLOCK  # refill on first use
        # own cache lines (aligned_zeros): the critic's helper thread reads and writes some of these
        self._obs_stats = aligned_zeros(1 + 2 * self.n_obs, np.float64)
        self._x = aligned_zeros(self.n_obs, self.dtype)       # normalised observation of the last act
        self._x_next = aligned_zeros(self.n_obs, self.dtype)  # normalised observation for the critic
        # Welford count, mean, M2 of the return trace u: Python floats (NumPy scalar arithmetic costs
        # ~0.1-0.2 µs per operation on the per-step path)
        self._rs_count = self._rs_mean = self._rs_m2 = 0.0
        self._gamma = cfg.gamma
        self._alpha = cfg.alpha
        self._ent_coef = cfg.entropy_coef
        self._normalize = cfg.normalize_observations
        self._scale = cfg.scale_rewards
        self._kappa_policy, self._kappa_value = cfg.kappas
        self._per_group = cfg.obgd_scope == "group"
        self.stats = {"steps": 0, "updates": 0, "skipped": 0, "refused": 0, "non_finite_inputs": 0,
                      "episodes": 0, "last_delta": 0.0, "last_value": 0.0,
                      "alpha_eff_policy": cfg.alpha, "alpha_eff_value": cfg.alpha}
        self._warned = False
        self._fuse = True            # gymnasium-order learn: credit and ObGD in one kernel call
        self._reward_trace = 0.0
        self._sign = 1.0
        self._reset_flags()
        # the critic's learning pass on a helper thread (controller.critic_thread), or None
        if critic_thread and usable_cpus() < 2:
            warnings.warn("Agent: critic_thread=True needs 2 CPUs, this process may use "
                          f"{usable_cpus()}; running the critic on the calling thread", RuntimeWarning,
                          stacklevel=2)
            critic_thread = False
        self._critic_thread = (CriticThread(self.critic.private_state, self._obs_stats, self._x_next,
                                            self.n_obs) if critic_thread else None)

    # ------------------------------------------------------------------ helper thread
    @property
    def uses_critic_thread(self):
        """True when the critic's learning pass runs on a helper thread (``critic_thread=True`` was
        asked for and the process may use 2 CPUs; with fewer the agent warned and runs single-threaded)."""
        return self._critic_thread is not None

    def sync(self):
        """Wait until the critic's helper thread (``critic_thread=True``) has finished the pass it was
        given; afterwards the critic's arrays may be read or written. Every method of the agent does this
        itself; call it before reading ``agent.critic`` directly. A no-op without the thread."""
        if self._critic_thread is not None:
            self._critic_thread.wait()

    def close(self):
        """Stop the critic's helper thread, if any (also done when the agent is garbage-collected)."""
        if self._critic_thread is not None:
            self._critic_thread.close()

    # ------------------------------------------------------------------ episode bookkeeping
    def _reset_flags(self):
        self._new_episode = True     # the next act starts an episode: reset states and traces
        self._critic_ready = False   # critic has seen the obs of the last act (V, z_v include it)
        self._pending_credit = False  # actor acted; its gradient for that action is not yet in z_π
        self._acted = False          # act() ran since the last update()/learn()
        self._bad_current = False    # the observation of the last act was not finite
        self._bad_previous = False   # the observation the pending update starts from was not finite
        self._value = 0.0            # V(s) of the observation the next update starts from
        self._skip_credit = False    # skip(): the next credit restarts the actor's traces instead

    def reset(self):
        """A new episode starts at the next ``act``: recurrent states, RTRL and eligibility traces are
        zeroed then (normaliser statistics, parameters and counters are kept)."""
        self._reset_flags()

    def _start_episode(self):
        self.sync()
        for net in (self.actor, self.critic):
            net.reset_state()
            net.reset_traces()
        self._new_episode = False
        self.stats["episodes"] += 1

    # ------------------------------------------------------------------ inputs
    def _check_obs(self, obs, name):
        if not isinstance(obs, np.ndarray):
            obs = np.asarray(obs, dtype=np.float64)
        if obs.shape != (self.n_obs,):
            raise ValueError(f"Agent: {name} must have shape ({self.n_obs},), got {obs.shape}")
        if obs.dtype.kind != "f":
            obs = obs.astype(np.float64)
        return obs

    def _non_finite(self, what):
        self.stats["non_finite_inputs"] += 1
        if not self._warned:
            self._warned = True
            warnings.warn(f"Agent: non-finite input {what}; not learning from it (counted in "
                          f"stats['non_finite_inputs'], warned once)", NonFiniteInputWarning, stacklevel=3)

    def _scale_reward(self, reward, done):
        """r / sqrt(Var(u) + 1e-8) with u <- γ (1 - done) u + r (streaming deep RL's reward scaling)."""
        if not self._scale:
            return reward
        u = self._gamma * self._reward_trace + reward
        count = self._rs_count + 1.0
        delta = u - self._rs_mean
        mean = self._rs_mean + delta / count
        m2 = self._rs_m2 + delta * (u - mean)
        self._rs_count, self._rs_mean, self._rs_m2 = count, mean, m2
        var = m2 / (count - 1.0) if count >= 2.0 else 1.0
        self._reward_trace = 0.0 if done else u
        return reward / math.sqrt(var + 1e-8)

    # ------------------------------------------------------------------ acting
    def act(self, obs):
        """The action for obs (forward work only). obs: (n_obs,) float array.

        Returns for Box spaces an (a,) float64 array clipped to the bounds (an internal buffer: copy it to
        keep it), for Discrete an int. Never NaN: a non-finite obs is replaced by the last finite one.
        """
        obs = self._check_obs(obs, "obs")
        if self._new_episode:
            self._start_episode()
        self._acted = True
        self._pending_credit = True
        self.stats["steps"] += 1
        norm = self._normalize
        if self.discrete:
            u = float(self._draw(1)[0])
            bad, a = AS.act_categorical(self.actor.state, obs, self._obs_stats, self._x, norm, True,
                                        self.n_actions, u)
            self._bad_current = bad >= 0
            if bad >= 0:
                self._non_finite(f"observation[{bad}] = {obs[bad]}")
            if a < 0:  # non-finite logits: parameters diverged; act uniformly, never learn from it
                self._non_finite("policy logits")
                a = int(self.rng.integers(self.n_actions))
                self._bad_current = True
            self.action[0] = a
            return int(a)
        noise = self._draw(self.n_actions)
        bad, flag = AS.act_gaussian(self.actor.state, obs, self._obs_stats, self._x, norm, True, noise,
                                    self._low, self._high, self.action)
        self._bad_current = bad >= 0
        if bad >= 0:
            self._non_finite(f"observation[{bad}] = {obs[bad]}")
        if flag:
            self._non_finite("policy output")
            self._bad_current = True
        return self.action

    def _draw(self, k):
        if self._noise_pos + k > NOISE_BLOCK:
            if self.discrete:
                self.rng.random(out=self._noise)
            else:
                self.rng.standard_normal(out=self._noise)
            self._noise_pos = 0
        view = self._noise[self._noise_pos:self._noise_pos + k]
        self._noise_pos += k
        return view

    # ------------------------------------------------------------------ learning pieces
    def _critic_catch_up(self):
        """At an episode's first learning call: the critic sees the episode's first observation."""
        if not self._critic_ready:
            self._value = float(self.critic.forward_backward(self._x)[0])
            self.critic.accumulate()
            self._critic_ready = True

    def _credit(self, applied):
        """Actor: RTRL traces for the last act, gradient of log π(applied) + c sign(δ) H, into z_π."""
        if not self._pending_credit:
            return
        self._pending_credit = False
        a = self.actor
        ent = self._ent_coef * self._sign
        if self.discrete:
            idx = int(self.action[0]) if applied is None else self._applied_index(applied)
            AS.actor_credit_categorical(a.state, self._x, self.n_actions, idx, ent)
        else:
            act = self.action if applied is None else self._applied_array(applied)
            AS.actor_credit_gaussian(a.state, self._x, act, self._low, self._high, ent)

    def _applied_index(self, applied):
        idx = int(np.asarray(applied).reshape(-1)[0])
        if not 0 <= idx < self.n_actions:
            raise ValueError(f"Agent: applied action must be in [0, {self.n_actions}), got {idx}")
        return idx

    def _applied_array(self, applied):
        arr = applied if isinstance(applied, np.ndarray) and applied.dtype == np.float64 \
            else np.asarray(applied, dtype=np.float64)
        arr = arr.reshape(-1)
        if arr.shape != (self.n_actions,):
            raise ValueError(f"Agent: applied action must have shape ({self.n_actions},), got {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"Agent: applied action must be finite, got {arr}")
        return arr

    def _td_error(self, reward, v_next, terminated, truncated):
        """δ = r̃ + γ (1 − terminated) V(s') − V(s) for the transition out of the current critic value."""
        r = self._scale_reward(reward, terminated or truncated)
        return r + (0.0 if terminated else self._gamma * v_next) - self._value

    def _apply(self, delta, then_accumulate):
        """ObGD on both networks with their current eligibility traces (step sizes from the trace norms
        the kernels recorded in ``Network.zl1``); if then_accumulate, the critic's trace takes its new
        gradient (∇V(s')) in the same pass."""
        step_p, step_v = AS.agent_apply(self.actor.state, self.critic.state, delta, self._alpha,
                                        self._kappa_policy, self._kappa_value, self._per_group,
                                        then_accumulate)
        self.stats["alpha_eff_value"] = step_v
        self.stats["alpha_eff_policy"] = step_p
        self.stats["updates"] += 1

    def _transition(self, reward, v_next, ok_next, terminated, truncated, bad, credit_first, applied=None):
        """The shared body of learn() and update(), after the critic saw s' (v_next = V(s'), its gradient
        waiting in G): δ, (credit), ObGD, new ∇V into z_v."""
        if not math.isfinite(reward):
            self._non_finite(f"reward = {reward}")
            bad = True
            reward = 0.0
        if not ok_next:
            v_next = self._value
        delta = self._td_error(reward, v_next, terminated, truncated)
        self.stats["last_delta"] = delta
        self.stats["last_value"] = v_next
        sign = 1.0 if delta >= 0 else -1.0
        episode_over = terminated or truncated
        accumulate = ok_next and not episode_over
        refuse = bad or not ok_next or not math.isfinite(delta)
        if credit_first:
            self._sign = sign
            if self._fuse and self._pending_credit and not refuse:
                self._credit_and_apply(applied, delta, accumulate)
                self._after_transition(sign, episode_over, v_next)
                return
            self._credit(applied)
        if refuse:
            self.stats["refused"] += 1
            if accumulate:
                self.critic.accumulate()
        else:
            self._apply(delta, accumulate)
        self._after_transition(sign, episode_over, v_next)

    def _after_transition(self, sign, episode_over, v_next):
        self._sign = sign
        if episode_over:
            self._reset_flags()
            return
        self._value = v_next

    def _credit_and_apply(self, applied, delta, accumulate):
        """``_credit`` + ``_apply`` in one kernel call (gymnasium order; equal to the two calls up to the
        summation order of the trace norms)."""
        self._pending_credit = False
        a, c = self.actor.state, self.critic.state
        ent = self._ent_coef * self._sign
        if self.discrete:
            idx = int(self.action[0]) if applied is None else self._applied_index(applied)
            if self._critic_thread is not None:
                worker = self._critic_thread
                step_p, step_v, request = AS.credit_categorical_and_apply_threaded(
                    a, self.critic.zl1, worker.ctl, worker.args, self._x, self.n_actions, idx, ent,
                    delta, self._alpha, self._kappa_policy, self._kappa_value, accumulate, self._per_group)
                worker.submitted(request)
            else:
                step_p, step_v = AS.credit_categorical_and_apply(
                    a, c, self._x, self.n_actions, idx, ent, delta, self._alpha,
                    self._kappa_policy, self._kappa_value, accumulate, self._per_group)
        else:
            act = self.action if applied is None else self._applied_array(applied)
            if self._critic_thread is not None:
                worker = self._critic_thread
                step_p, step_v, request = AS.credit_gaussian_and_apply_threaded(
                    a, self.critic.zl1, worker.ctl, worker.args, self._x, act, self._low, self._high, ent,
                    delta, self._alpha, self._kappa_policy, self._kappa_value, accumulate, self._per_group)
                worker.submitted(request)
            else:
                step_p, step_v = AS.credit_gaussian_and_apply(
                    a, c, self._x, act, self._low, self._high, ent, delta, self._alpha,
                    self._kappa_policy, self._kappa_value, accumulate, self._per_group)
        stats = self.stats
        stats["alpha_eff_value"] = step_v
        stats["alpha_eff_policy"] = step_p
        stats["updates"] += 1

    # ------------------------------------------------------------------ gymnasium order
    def learn(self, reward, next_obs, terminated, truncated, applied_action=None):
        """Learn from the transition (obs of the last act, its action, reward, next_obs).

        reward: float; next_obs: (n_obs,) float array; terminated: no bootstrap; truncated: bootstrap
        from V(next_obs). After a terminated or truncated transition the next ``act`` starts a new
        episode. The actor's gradient is taken after δ is known (exact Stream AC order).
        applied_action: the action actually executed if it differs from what act() returned.
        """
        next_obs = self._check_obs(next_obs, "next_obs")
        if not self._acted:
            raise RuntimeError("Agent.learn: call act(obs) before each learn(...)")
        self._acted = False
        bad = self._bad_current
        self.sync()
        self._critic_catch_up()
        if self._critic_thread is not None and next_obs.dtype == np.float64:
            # on the helper, whose core keeps the critic's arrays in its cache
            bad_next, v_next = self._critic_thread.observe(next_obs, self._normalize)
        else:
            bad_next, v_next = AS.critic_observe(self.critic.state, next_obs, self._obs_stats, self._x_next,
                                                 self._normalize, False)
        if bad_next >= 0:
            self._non_finite(f"next_obs[{bad_next}] = {next_obs[bad_next]}")
        self._transition(float(reward), v_next, bad_next < 0, bool(terminated), bool(truncated), bad, True,
                         applied_action)

    # ------------------------------------------------------------------ real-time loop order
    def update(self, reward, obs, terminated, truncated):
        """Learning for the transition that ended in obs, after ``act(obs)`` already ran (unless obs is
        terminal). See the module docstring; the loop then calls ``credit`` with the applied action."""
        obs = self._check_obs(obs, "obs")
        self.sync()
        if self._acted:   # act(obs) normalised it already
            ok = not self._bad_current
            bad = self._bad_previous
            v = float(self.critic.forward_backward(self._x)[0]) if ok else self._value
        else:
            bad_obs, v = AS.critic_observe(self.critic.state, obs, self._obs_stats, self._x_next,
                                           self._normalize, True)
            ok = bad_obs < 0
            if not ok:
                self._non_finite(f"obs[{bad_obs}] = {obs[bad_obs]}")
            bad = self._bad_current
        self._acted = False
        self._transition(float(reward), v, ok, bool(terminated), bool(truncated), bad, False)

    def credit(self, applied_action=None):
        """Tell the learner the action actually sent for the last act (after clipping/safety); computes
        the actor's gradient for it. ``None``: the action act() returned."""
        self.sync()
        self._critic_catch_up()
        if self._skip_credit:
            self._skip_credit = False
            self._pending_credit = False
            self.actor.reset_rtrl()
            self.actor.reset_traces()
            return
        self._credit(applied_action)
        self._bad_previous = self._bad_current

    def skip(self, reward, obs, terminated, truncated):
        """Instead of ``update`` when the tick has no budget left: keeps the critic's recurrent state in
        step (forward only) but learns nothing from this transition; the RTRL and eligibility traces of
        both networks restart from zero (truncated history), so the next ``credit`` is cheap too.
        Counted in stats["skipped"]."""
        obs = self._check_obs(obs, "obs")
        self.sync()
        if self._acted:
            x = self._x
        else:
            bad = AS.observe(obs, self._obs_stats, self._x_next, self._normalize, True)
            if bad >= 0:
                self._non_finite(f"observation[{bad}] = {obs[bad]}")
            x = self._x_next
        self._acted = False
        self.stats["skipped"] += 1
        if terminated or truncated:
            self._reset_flags()
            return
        self.critic.forward(x)
        self._value = float(self.critic.out[0])
        self.critic.reset_rtrl()     # the traces did not follow this forward: restart them
        self.critic.reset_traces()
        self._skip_credit = True
        self._critic_ready = True


# ----------------------------------------------------------------------------- checkpoints
_FLAGS = ("_new_episode", "_critic_ready", "_pending_credit", "_acted", "_bad_current", "_bad_previous",
          "_skip_credit", "_warned")
_SCALARS = ("_value", "_reward_trace", "_sign", "_noise_pos", "_rs_count",
            "_rs_mean", "_rs_m2")
# AgentConfig fields added after checkpoints existed, each with a default that reproduces the agent from
# before it: a checkpoint without them holds an agent with those defaults
_LATER_FIELDS = LAM_GROUPS + ("rtu_r_min", "rtu_r_max", "rtu_max_phase", "input_skip")


def agent_arrays(agent):
    """Every array that defines the agent's learning state (views, not copies): both networks'
    parameters, gradients, eligibility traces, activations, cell states and RTRL traces, the normaliser
    and reward-scaling statistics, the last normalised observations, the pre-drawn noise and the action."""
    agent.sync()
    out = {}
    for name, net in (("actor", agent.actor), ("critic", agent.critic)):
        for key, arr in net.arrays().items():
            out[f"{name}.{key}"] = arr
        out[f"{name}.G"] = net.G
        if net.cell is not None:
            out[f"{name}.cell_dx"] = net.cell.dx
    out.update({"obs_stats": agent._obs_stats, "x": agent._x,
                "x_next": agent._x_next, "noise": agent._noise, "action": agent.action})
    return out


def agent_meta(agent):
    """JSON-serialisable rest of the state: configuration and spaces (checked on load), episode flags,
    scalars, counters and the RNG state."""
    return {"config": dataclasses.asdict(agent.config), "seed": agent.seed, "n_obs": agent.n_obs,
            "n_actions": agent.n_actions, "discrete": agent.discrete,
            "flags": {k: bool(getattr(agent, k)) for k in _FLAGS},
            "scalars": {k: float(getattr(agent, k)) for k in _SCALARS},
            "stats": dict(agent.stats), "rng": agent.rng.bit_generator.state}


def save_agent(path, agent, extra_meta=None):
    """Atomically write the complete learner state (controller.checkpoint format); returns the path."""
    from controller.checkpoint import save_arrays

    meta = agent_meta(agent)
    if extra_meta:
        meta["extra"] = extra_meta
    return save_arrays(path, {k: np.array(v, copy=True) for k, v in agent_arrays(agent).items()}, meta)


def _difference(key, saved, current):
    """'key: checkpoint has ..., agent has ...', for a configuration only the fields that differ."""
    if isinstance(saved, dict) and isinstance(current, dict):
        missing = "<missing>"
        names = sorted(k for k in saved.keys() | current.keys() if saved.get(k, missing) != current.get(k, missing))
        saved = ", ".join(f"{k}={saved.get(k, missing)!r}" for k in names)
        current = ", ".join(f"{k}={current.get(k, missing)!r}" for k in names)
        return f"{key}: checkpoint has {saved}, agent has {current}"
    return f"{key}: checkpoint has {saved!r}, agent has {current!r}"


def load_agent(path, agent):
    """Restore a checkpoint written by save_agent into an agent built with the same configuration and
    spaces, in place, so that its next actions and updates are bit-identical to the saved agent's.
    Raises ``controller.checkpoint.CheckpointError`` naming the file and the mismatch; on error the
    agent is left untouched. Returns the saved ``extra_meta`` (or {})."""
    from controller.checkpoint import CheckpointError, check_arrays, copy_arrays, load_arrays

    arrays, meta = load_arrays(path)
    agent.sync()
    expected = agent_meta(agent)
    if isinstance(meta.get("config"), dict):
        defaults = dataclasses.asdict(AgentConfig())
        meta["config"] = {**{k: defaults[k] for k in _LATER_FIELDS}, **meta["config"]}
    diffs = [_difference(k, meta.get(k), expected[k])
             for k in ("config", "n_obs", "n_actions", "discrete") if meta.get(k) != expected[k]]
    if diffs:
        raise CheckpointError(f"{path}: does not match this agent ({'; '.join(diffs)})")
    targets = agent_arrays(agent)
    # checkpoints older than the recorded trace norms: recomputed from the traces after the copy
    derived = [name for name in ("actor.zl1", "critic.zl1") if name not in arrays]
    for name in derived:
        del targets[name]
    check_arrays(path, arrays, targets)
    try:
        flags, scalars, stats = meta["flags"], meta["scalars"], meta["stats"]
        rng_state = meta["rng"]
        missing = [k for k in _FLAGS if k not in flags] + [k for k in _SCALARS if k not in scalars]
    except (KeyError, TypeError) as err:
        raise CheckpointError(f"{path}: agent metadata incomplete ({err})") from None
    if missing:
        raise CheckpointError(f"{path}: agent metadata lacks {missing}")
    copy_arrays(arrays, targets)
    for name in derived:
        net = agent.actor if name.startswith("actor.") else agent.critic
        net.zl1[:] = net.trace_norms()
    for k in _FLAGS:
        setattr(agent, k, bool(flags[k]))
    for k in _SCALARS:
        setattr(agent, k, int(scalars[k]) if k == "_noise_pos" else float(scalars[k]))
    agent.stats.clear()
    agent.stats.update(stats)
    agent.rng.bit_generator.state = rng_state
    return meta.get("extra", {})

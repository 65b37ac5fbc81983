"""Streaming recurrent actor-critic: Stream AC(λ) with ObGD on RTU networks trained by RTRL (design.md §3.5).

No replay buffer, no batches: every transition updates an actor and a critic network (encoder -> cell ->
head, ``controller.networks``) once, with eligibility traces of RTRL gradients (cell) and one-step
gradients (encoder, head), and ObGD's bounded step.

Two ways to drive it, both act-then-learn (``act`` does forward work only):

* gymnasium order, one call per transition::

      obs, _ = env.reset(seed=0)
      while True:
          action = agent.act(obs)
          obs, reward, terminated, truncated, _ = env.step(action)
          agent.learn(reward, obs, terminated, truncated)
          if terminated or truncated:
              obs, _ = env.reset()

* real-time loop order, the call order that ``controller.interfaces.Policy`` describes: the action of
  tick t is written before the learning of the transition that ended at tick t (``update``, or ``skip``
  when the tick's budget is spent), then ``credit(applied_action_t)``. The actor then acts with
  parameters one update older, and the sign of δ in the entropy term is the previous transition's.
  ``reset()`` starts a new episode.

Per transition (s, a, r, s'): δ = r̃ + γ (1 − terminated) V(s') − V(s), with r̃ the scaled reward;
z_v ← γλ z_v + ∇V(s); z_π ← γλ z_π + ∇[log π(a|s) + c_ent sign(δ) H(π(·|s))] (λ per parameter group
if set: ``lam_policy_dense``...); per network α_eff = α / max(α κ max(|δ|, 1) ||z||₁, 1) and
w ← w + α_eff δ z (``obgd_scope="group"``: one α_eff for the dense layers and one for the cell, each from
its own ||z||₁; stats["alpha_eff_*"] are the dense layers'). Truncation bootstraps, termination does not.
V(s) is the value the critic computed when it saw s (one update older than V(s')): with a recurrent
critic, re-evaluating V(s) under the new parameters would need the whole history.

Bad input: a non-finite observation or reward is never learned from. ``act`` then reuses the last finite
normalised observation (the action stays finite), the transitions touching it do not update parameters,
``stats["non_finite_inputs"]`` counts them and one ``NonFiniteInputWarning`` is issued per agent. Wrong
sizes raise ``ValueError`` naming the expected and given shapes.

Parts: ``agent_config`` (``AgentConfig``), ``policy_heads`` (Gaussian or categorical), ``episode`` (episode
bookkeeping), ``agent_checkpoint`` (``save_agent``, ``load_agent``); their public names are re-exported here.
"""
import math
import warnings

import numpy as np

from controller.agent_checkpoint import agent_arrays, agent_meta, load_agent, save_agent  # noqa: F401
from controller.agent_config import LAM_GROUPS, AgentConfig  # noqa: F401
from controller.buffers import aligned_zeros
from controller.critic_thread import CriticThread, usable_cpus
from controller.episode import EpisodeState
from controller.errors import message
from controller.kernels.agent_step import agent_apply, credit_and_apply, critic_observe, obgd_params, observe
from controller.networks import Network
from controller.policy_heads import make_head

NOISE_BLOCK = 4096  # standard-normal / uniform draws made at once, off the per-step path


class NonFiniteInputWarning(RuntimeWarning):
    """An observation or reward was NaN or inf; the agent did not learn from it."""


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
            raise TypeError(message("Agent.config", "an AgentConfig", type(self.config).__name__))
        if not isinstance(observation_space, spaces.Box) or len(observation_space.shape) != 1:
            raise ValueError(message("Agent.observation_space", "a 1-D gymnasium Box", observation_space))
        cfg = self.config
        self.dtype = np.dtype(cfg.dtype)
        self.n_obs = int(observation_space.shape[0])
        self._head = make_head(action_space)
        self.discrete = self._head.discrete
        self.n_actions = self._head.n_actions
        self.action = self._head.action
        self.observation_space, self.action_space = observation_space, action_space
        self.seed = int(seed)
        seeds = np.random.SeedSequence(self.seed).spawn(3)
        net = dict(encoder_width=cfg.encoder_width, n_units=cfg.n_units, head_width=cfg.head_width,
                   rtu_activation=cfg.rtu_activation, sparsity=cfg.sparsity, dtype=self.dtype,
                   hidden_activation=cfg.hidden_activation, head_layernorm=cfg.head_layernorm,
                   rtu_r_min=cfg.rtu_r_min, rtu_r_max=cfg.rtu_r_max, rtu_max_phase=cfg.rtu_max_phase,
                   input_skip=cfg.input_skip)
        (policy_dense, policy_cell), (value_dense, value_cell) = cfg.trace_decays
        self.actor = Network(self.n_obs, self._head.n_outputs, cfg.cell,
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
        # Welford count, mean, M2 of the return trace u: Python floats, cheaper than NumPy scalars here
        self._rs_count = self._rs_mean = self._rs_m2 = 0.0
        self._gamma = cfg.gamma
        self._ent_coef = cfg.entropy_coef
        self._normalize = cfg.normalize_observations
        self._scale = cfg.scale_rewards
        kappa_policy, kappa_value = cfg.kappas
        self._obgd = obgd_params(alpha=cfg.alpha, kappa_policy=kappa_policy, kappa_value=kappa_value,
                                 per_group=cfg.obgd_scope == "group")
        self.stats = {"steps": 0, "updates": 0, "skipped": 0, "refused": 0, "non_finite_inputs": 0,
                      "episodes": 0, "last_delta": 0.0, "last_value": 0.0,
                      "alpha_eff_policy": cfg.alpha, "alpha_eff_value": cfg.alpha}
        self._warned = False
        self._fuse = True            # gymnasium-order learn: credit and ObGD in one kernel call
        self._reward_trace = 0.0
        self._sign = 1.0
        self._episode, self._value = EpisodeState(), 0.0   # _value: V(s) of the s the next update starts from
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
    def reset(self):
        """A new episode starts at the next ``act``: recurrent states, RTRL and eligibility traces are
        zeroed then (normaliser statistics, parameters and counters are kept)."""
        self._episode.restart()
        self._value = 0.0

    def _start_episode(self):
        self.sync()
        for net in (self.actor, self.critic):
            net.reset_state()
            net.reset_traces()
        self._episode.started()
        self.stats["episodes"] += 1

    # ------------------------------------------------------------------ inputs
    def _check_obs(self, obs, name):
        if not isinstance(obs, np.ndarray):
            obs = np.asarray(obs, dtype=np.float64)
        if obs.shape != (self.n_obs,):
            raise ValueError(message(f"Agent.{name}", f"shape ({self.n_obs},)", obs.shape))
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
        episode = self._episode
        if episode.new_episode:
            self._start_episode()
        self.stats["steps"] += 1
        head = self._head
        bad, non_finite_output, action = head.act(self.actor.state, obs, self._obs_stats, self._x,
                                                  self._normalize, self._draw(head.draws_per_act), self.rng)
        episode.acted_on(bad >= 0 or non_finite_output)
        if bad >= 0:
            self._non_finite(f"observation[{bad}] = {obs[bad]}")
        if non_finite_output:   # parameters diverged: never learn from this action
            self._non_finite(head.non_finite_output)
        return action

    def _draw(self, k):
        if self._noise_pos + k > NOISE_BLOCK:
            self._head.fill_noise(self.rng, self._noise)
            self._noise_pos = 0
        view = self._noise[self._noise_pos:self._noise_pos + k]
        self._noise_pos += k
        return view

    # ------------------------------------------------------------------ learning pieces
    def _critic_catch_up(self):
        """At an episode's first learning call: the critic sees the episode's first observation."""
        if not self._episode.critic_ready:
            self._value = float(self.critic.forward_backward(self._x)[0])
            self.critic.accumulate()
            self._episode.critic_caught_up()

    def _credit(self, applied):
        """Actor: RTRL traces for the last act, gradient of log π(applied) + c sign(δ) H, into z_π."""
        if self._episode.take_credit():
            self._head.credit(self.actor.state, self._x, applied, self._ent_coef * self._sign)

    def _td_error(self, reward, v_next, terminated, truncated):
        """δ = r̃ + γ (1 − terminated) V(s') − V(s) for the transition out of the current critic value."""
        r = self._scale_reward(reward, terminated or truncated)
        return r + (0.0 if terminated else self._gamma * v_next) - self._value

    def _record_steps(self, step_policy, step_value):
        stats = self.stats
        stats["alpha_eff_value"] = step_value
        stats["alpha_eff_policy"] = step_policy
        stats["updates"] += 1

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
            if self._fuse and self._episode.pending_credit and not refuse:
                self._credit_and_apply(applied, delta, accumulate)
                self._after_transition(sign, episode_over, v_next)
                return
            self._credit(applied)
        if refuse:
            self.stats["refused"] += 1
            if accumulate:
                self.critic.accumulate()
        else:   # ObGD of both networks from their recorded trace norms; the critic's trace then takes ∇V(s')
            self._record_steps(*agent_apply(self.actor.state, self.critic.state, delta, self._obgd, accumulate))
        self._after_transition(sign, episode_over, v_next)

    def _after_transition(self, sign, episode_over, v_next):
        self._sign = sign
        if episode_over:
            self.reset()
            return
        self._value = v_next

    def _credit_and_apply(self, applied, delta, accumulate):
        """``_credit`` + ``_apply`` in one kernel call (gymnasium order; equal to the two calls up to the
        summation order of the trace norms), for either head and with or without the critic's thread."""
        self._episode.take_credit()
        head, worker = self._head, self._critic_thread
        # the critic's pass runs here, or on its helper thread (the kernel then gets its trace norms and hand-over)
        critic, handover = ((self.critic.state, ()) if worker is None
                            else (self.critic.zl1, (worker.ctl, worker.args)))
        step_p, step_v, request = credit_and_apply(self.actor.state, critic, self._x, head.applied(applied),
                                                   head.bounds, self._ent_coef * self._sign, delta, self._obgd,
                                                   accumulate, *handover)
        if worker is not None:
            worker.submitted(request)
        self._record_steps(step_p, step_v)

    # ------------------------------------------------------------------ gymnasium order
    def learn(self, reward, next_obs, terminated, truncated, applied_action=None):
        """Learn from the transition (obs of the last act, its action, reward, next_obs).

        reward: float; next_obs: (n_obs,) float array; terminated: no bootstrap; truncated: bootstrap
        from V(next_obs). After a terminated or truncated transition the next ``act`` starts a new
        episode. The actor's gradient is taken after δ is known (exact Stream AC order).
        applied_action: the action actually executed if it differs from what act() returned.
        """
        next_obs = self._check_obs(next_obs, "next_obs")
        episode = self._episode
        if not episode.acted:
            raise RuntimeError("Agent.learn: call act(obs) before each learn(...)")
        episode.learning_from_act()
        bad = episode.bad_current
        self.sync()
        self._critic_catch_up()
        if self._critic_thread is not None and next_obs.dtype == np.float64:
            # on the helper, whose core keeps the critic's arrays in its cache
            bad_next, v_next = self._critic_thread.observe(next_obs, self._normalize)
        else:
            bad_next, v_next = critic_observe(self.critic.state, next_obs, self._obs_stats, self._x_next,
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
        episode = self._episode
        if episode.acted:   # act(obs) normalised it already
            ok = not episode.bad_current
            bad = episode.bad_previous
            v = float(self.critic.forward_backward(self._x)[0]) if ok else self._value
        else:
            bad_obs, v = critic_observe(self.critic.state, obs, self._obs_stats, self._x_next,
                                        self._normalize, True)
            ok = bad_obs < 0
            if not ok:
                self._non_finite(f"obs[{bad_obs}] = {obs[bad_obs]}")
            bad = episode.bad_current
        episode.learning_from_act()
        self._transition(float(reward), v, ok, bool(terminated), bool(truncated), bad, False)

    def credit(self, applied_action=None):
        """Tell the learner the action actually sent for the last act (after clipping/safety); computes
        the actor's gradient for it. ``None``: the action act() returned. A float64 C-contiguous array of
        shape (action_dim,) (what ``controller.loop`` passes) is checked without allocating; anything else
        is converted, or rejected with a ``ValueError`` naming what was expected."""
        self.sync()
        self._critic_catch_up()
        episode = self._episode
        if episode.skip_credit:
            episode.skip_done()
            self.actor.reset_rtrl()
            self.actor.reset_traces()
            return
        self._credit(applied_action)
        episode.credited()

    def skip(self, reward, obs, terminated, truncated):
        """Instead of ``update`` when the tick has no budget left: keeps the critic's recurrent state in
        step (forward only) but learns nothing from this transition; the RTRL and eligibility traces of
        both networks restart from zero (truncated history), so the next ``credit`` is cheap too.
        Counted in stats["skipped"]."""
        obs = self._check_obs(obs, "obs")
        self.sync()
        episode = self._episode
        if episode.acted:
            x = self._x
        else:
            bad = observe(obs, self._obs_stats, self._x_next, self._normalize, True)
            if bad >= 0:
                self._non_finite(f"observation[{bad}] = {obs[bad]}")
            x = self._x_next
        episode.learning_from_act()
        self.stats["skipped"] += 1
        if terminated or truncated:
            self.reset()
            return
        self.critic.forward(x)
        self._value = float(self.critic.out[0])
        self.critic.reset_rtrl()     # the traces did not follow this forward: restart them
        self.critic.reset_traces()
        episode.skipped()

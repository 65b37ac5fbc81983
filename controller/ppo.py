"""PPO whose recurrent layer learns by RTRL (the RTU paper's control algorithm), in NumPy.

Network, one trunk shared by both heads (o: normalised observation, a: action size):

    o_t -> Dense(encoder_width) + tanh = x_t -> RTU(n_units): c_t, y_t = ReLU([Re c_t, Im c_t]) (2n,)
    actor:  Dense(head_width) + tanh -> Dense(a) = mean; log std: a learned (a,) vector (state-independent)
    critic: Dense(head_width) + tanh -> Dense(1) = V

Acting: ``RTUCell.step`` (numba) advances the state and the RTRL traces S_t = ∂c_t/∂θ_RTU every env
step; the rollout stores o_t, x_t, c_{t-1}, copies of S_t, the unclipped Gaussian sample, its log-prob,
V(o_t), the scaled reward and the done flags (``controller.ppo_buffer.Rollout``, ≈ 103 KB per step in
float32 at paper size). After ``rollout_steps`` transitions: GAE, then ``epochs`` x ``minibatches`` Adam
steps on shuffled single time steps. A minibatch recomputes, with the current parameters, the encoder,
one RTU step from the stored c_{t-1} (``rtu_batch_step``), the heads and the PPO loss; the backward pass
is exact for the dense layers, the RTU parameters get (∂L/∂c_t) contracted with the STORED S_t (stale
sensitivities, never recomputed between epochs), and the encoder gets the one-step ∂c_t/∂x_t.

Loss (as the official code): −min(ρ Â, clip(ρ, 1 ± ε) Â) with Â standardised per minibatch,
+ value_coef · 0.5 max((V − R)², (V_old + clip(V − V_old, ±ε) − R)²) − entropy_coef · H.
Truncation bootstraps from V of the final observation, termination does not; at an episode end the
RTU state and traces restart from zero.

``cell: none`` (feed-forward baseline): the heads read x_t; the rollout stores no state and no traces
(≈ 0.4 KB per step). Unlike the official code, the trace contracted is the S_t stored while acting (it
recomputes the last trace step from a stored S_{t-1} with the current parameters), and the ϑ derivative
is the exact one (RTUCell's default). Checkpoints: ``controller.ppo_checkpoint``. The update's matrices
are small: one BLAS thread is fastest on a busy machine (``rtu-control train`` pins it).
"""
import math
import time

import numpy as np

from controller.cells import RTUCell
from controller.errors import message
from controller.ppo_buffer import ObservationNormalizer, RewardScaler, Rollout
from controller.ppo_config import PPOConfig

_LOG_2PI = math.log(2.0 * math.pi)
_BETA1, _BETA2 = 0.9, 0.999


def rtu_coefficients(nu_log, theta_log, dtype):
    """(g, φ, η), each (n,) of ``dtype``, computed in float64 as RTUCell does: r = exp(−exp(ν)),
    θ = exp(ϑ), g = r cos θ, φ = r sin θ, η = sqrt(1 − r²) + 1e-8."""
    e_nu, theta = np.exp(np.asarray(nu_log, np.float64)), np.exp(np.asarray(theta_log, np.float64))
    r = np.exp(-e_nu)
    eta = np.sqrt(-np.expm1(-2.0 * e_nu)) + 1e-8
    return (r * np.cos(theta)).astype(dtype), (r * np.sin(theta)).astype(dtype), eta.astype(dtype)


def rtu_batch_step(c_prev, x, nu_log, theta_log, w1, w2, variant):
    """One RTU step for a batch of independent states, with ReLU as the activation (new arrays).

    c_prev: (B, 2, n) states c_{t-1} = [Re, Im]; x: (B, d) inputs; nu_log, theta_log: (n,); w1, w2: (n, d).
    Returns c (B, 2, n) the new states, y (B, 2n) = [Re part, Im part] of the output, a (B, 2, n) the
    pre-activations and η (n,), all of x's dtype. Linear RTU: c = a, y = ReLU(c); non-linear: c = y = ReLU(a).
    """
    g, phi, eta = rtu_coefficients(nu_log, theta_log, x.dtype)
    c1, c2 = c_prev[:, 0], c_prev[:, 1]
    a = np.empty(c_prev.shape, x.dtype)
    a[:, 0] = g * c1 - phi * c2 + eta * (x @ w1.T)
    a[:, 1] = g * c2 + phi * c1 + eta * (x @ w2.T)
    y = np.maximum(a, 0.0)
    c = a if variant == "linear" else y
    return c, y.reshape(len(x), -1), a, eta


def _orthogonal(rng, rows, cols, gain):
    """(rows, cols) orthogonal matrix times gain (orthonormal rows or columns, whichever are fewer)."""
    q, r = np.linalg.qr(rng.standard_normal((max(rows, cols), min(rows, cols))))
    q *= np.sign(np.diag(r))
    return gain * (q if rows >= cols else q.T)


class PPOAgent:
    """PPO-RTRL agent. See the module docstring.

    PPOAgent(observation_space, action_space, config=PPOConfig(), seed=0): 1-D gymnasium ``Box``
    observations and actions. Same driving API as ``controller.agent.Agent`` in gymnasium order::

        action = agent.act(obs)      # (a,) of the action space's dtype, clipped to its bounds
        obs, reward, terminated, truncated, _ = env.step(action)
        agent.learn(reward, obs, terminated, truncated)   # the update runs inside, every rollout_steps

    ``params``: dict of the live parameter arrays (the RTU's are views into ``cell``, None with
    ``cell: none``; updates are in place). ``stats``: steps, episodes, updates (Adam steps), rollouts,
    and of the last update the means over its minibatches of policy_loss, value_loss, entropy,
    total_loss, approx_kl, clip_fraction, grad_norm (before clipping), plus explained_variance and
    update_seconds; skipped, refused, non_finite_inputs (0) and last_delta (0.0: no per-step TD error)
    are there for callers of the streaming agent (``launch.trainer``).
    """

    def __init__(self, observation_space, action_space, config=None, seed=0):
        from gymnasium import spaces

        self.config = cfg = config if config is not None else PPOConfig()
        if not isinstance(cfg, PPOConfig):
            raise TypeError(message("PPOAgent.config", "a PPOConfig", type(cfg).__name__))
        for name, space in (("observation_space", observation_space), ("action_space", action_space)):
            if not isinstance(space, spaces.Box) or len(space.shape) != 1:
                raise ValueError(message(f"PPOAgent.{name}", "a 1-D gymnasium Box", space))
        self.dtype = f = np.dtype(cfg.dtype)
        self.n_obs, self.n_actions = int(observation_space.shape[0]), int(action_space.shape[0])
        self.observation_space, self.action_space = observation_space, action_space
        self.seed = int(seed)
        init, cell_seed, noise, shuffle = np.random.SeedSequence(self.seed).spawn(4)
        rng = np.random.default_rng(init)
        E, H, A = cfg.encoder_width, cfg.head_width, self.n_actions
        n = cfg.n_units if cfg.variant else 0     # n = 0: no cell, the heads read x_t (E,)
        F = 2 * n if n else E                     # features the heads read
        self.cell = RTUCell(E, n, variant=cfg.variant, activation="relu", dtype=f,
                            seed=int(cell_seed.generate_state(1)[0])) if n else None
        cp = self.cell.params if n else {}
        # encoder: LeCun normal, the official code's (its MLP wrapper drops the orthogonal init it is given);
        # heads: orthogonal with the official gains (2, then 0.01 for the mean: near-zero initial actions)
        self.params = {
            "enc_w": rng.normal(0.0, 1.0 / math.sqrt(self.n_obs), (E, self.n_obs)), "enc_b": np.zeros(E),
            **cp, "actor_w1": _orthogonal(rng, H, F, 2.0), "actor_b1": np.zeros(H),
            "actor_w2": _orthogonal(rng, A, H, 0.01), "actor_b2": np.zeros(A),
            "log_std": np.full(A, cfg.log_std_init),
            "critic_w1": _orthogonal(rng, H, F, 2.0), "critic_b1": np.zeros(H),
            "critic_w2": _orthogonal(rng, 1, H, 1.0), "critic_b2": np.zeros(1)}
        for k, v in self.params.items():
            if k not in cp:
                self.params[k] = np.ascontiguousarray(v, f)
        self._m, self._v = ({k: np.zeros(v.shape, f) for k, v in self.params.items()} for _ in range(2))
        self._adam_steps = 0
        traces = self.cell.traces if n else {}
        vec_keys = ("S1_nu_log", "S2_nu_log", "S1_theta_log", "S2_theta_log") if n else ()
        mat_keys = (("S1_w1", "S2_w1") + (("S1_w2", "S2_w2") if cfg.variant == "nonlinear" else ())) if n else ()
        self._vec_traces = [traces[k] for k in vec_keys]
        self._mat_traces = [traces[k].T for k in mat_keys]   # (d, n) C-contiguous slabs: plain copies
        self.rollout = Rollout(cfg.rollout_steps, self.n_obs, E, n, A, len(self._mat_traces), f)
        self._obs_norm = ObservationNormalizer(self.n_obs, cfg.normalize_observations)
        self._reward_scale = RewardScaler(cfg.gamma, cfg.normalize_rewards)
        self._noise_rng, self._shuffle_rng = np.random.default_rng(noise), np.random.default_rng(shuffle)
        self._ha, self._hv, self._mean, self._std = np.zeros(H, f), np.zeros(H, f), np.zeros(A, f), np.zeros(A, f)
        self._action = np.zeros(A, action_space.dtype)
        self._low, self._high = (np.asarray(b, action_space.dtype) for b in (action_space.low, action_space.high))
        self._t, self._pending, self._episode_return = 0, False, 0.0
        self.stats = {"steps": 0, "episodes": 0, "updates": 0, "rollouts": 0, "last_episode_return": math.nan,
                      "policy_loss": math.nan, "value_loss": math.nan, "entropy": math.nan,
                      "total_loss": math.nan, "approx_kl": math.nan, "clip_fraction": math.nan,
                      "grad_norm": math.nan, "explained_variance": math.nan, "update_seconds": math.nan,
                      "skipped": 0, "refused": 0, "non_finite_inputs": 0, "last_delta": 0.0}
        self._new_rollout()

    # ------------------------------------------------------------------ lifecycle
    def reset(self):
        """A new episode starts at the next ``act``: zero RTU state and traces, restart the reward's
        return; an ``act`` not yet followed by ``learn`` is dropped; a stored step that did not end its
        episode is cut there as a truncation (bootstrapping from its own V). Parameters and statistics stay."""
        if self.cell is not None:
            self.cell.reset()
        t, ro = self._t - 1, self.rollout
        if t >= 0 and not ro.done[t]:   # GAE must not run on into the next episode
            ro.done[t], ro.boot[t] = True, ro.values[t]
        self._pending = False
        self._reward_scale.ret = 0.0
        self._episode_return = 0.0

    def close(self):
        """Nothing to release (no threads); present for the streaming agent's API."""

    def _new_rollout(self):
        """After a parameter change: the policy's std and log-prob constant, fresh noise, index 0."""
        log_std = self.params["log_std"]
        np.exp(log_std, out=self._std)
        self._logp_const = -float(np.sum(log_std, dtype=np.float64)) - 0.5 * self.n_actions * _LOG_2PI
        noise = self.rollout.noise
        self._noise_rng.standard_normal(noise.shape, dtype=noise.dtype, out=noise)
        self._t = 0

    def _check_obs(self, obs, name):
        if not isinstance(obs, np.ndarray) or obs.dtype.kind != "f":
            obs = np.asarray(obs, np.float64)
        if obs.shape != (self.n_obs,):
            raise ValueError(message(f"PPOAgent.{name}", f"shape ({self.n_obs},)", obs.shape))
        if not math.isfinite(float(obs.sum())):  # one reduction instead of a temporary mask
            raise ValueError(message(f"PPOAgent.{name}", "finite values", obs))
        return obs

    # ------------------------------------------------------------------ acting
    def act(self, obs):
        """Sample an action for obs (n_obs,) and store the step. Returns an internal (a,) buffer of the
        action space's dtype, clipped to its bounds (copy it to keep it); the unclipped sample is stored."""
        if self._pending:
            raise RuntimeError("PPOAgent.act: call learn(...) after each act(obs)")
        obs = self._check_obs(obs, "obs")
        p, ro, t = self.params, self.rollout, self._t
        o, x = ro.obs[t], ro.x[t]
        self._obs_norm.update_normalize(obs, o)
        np.dot(p["enc_w"], o, out=x)
        x += p["enc_b"]
        np.tanh(x, out=x)
        y = x
        if self.cell is not None:
            ro.c_prev[t] = self.cell.state
            y = self.cell.step_unchecked(x)  # x: a C-contiguous row of the cell's dtype, finite by construction
            for i, s in enumerate(self._vec_traces):
                ro.trace_vec[t, i] = s
            for i, s in enumerate(self._mat_traces):
                ro.trace_mat[t, i] = s
        ha, hv, mean = self._ha, self._hv, self._mean
        np.dot(p["actor_w1"], y, out=ha)
        ha += p["actor_b1"]
        np.tanh(ha, out=ha)
        np.dot(p["actor_w2"], ha, out=mean)
        mean += p["actor_b2"]
        np.dot(p["critic_w1"], y, out=hv)
        hv += p["critic_b1"]
        np.tanh(hv, out=hv)
        ro.values[t] = float(np.dot(p["critic_w2"][0], hv)) + float(p["critic_b2"][0])
        eps, a = ro.noise[t], ro.actions[t]
        np.multiply(self._std, eps, out=a)
        a += mean
        ro.logp[t] = self._logp_const - 0.5 * float(np.dot(eps, eps))
        np.clip(a, self._low, self._high, out=self._action)
        self._pending = True
        return self._action

    # ------------------------------------------------------------------ learning
    def learn(self, reward, next_obs, terminated, truncated):
        """Store the transition of the last ``act``; runs the update once ``rollout_steps`` are stored.

        reward: float; next_obs: (n_obs,); terminated: no bootstrap; truncated: bootstrap from V(next_obs)
        (the one-step value from the current RTU state). Either flag ends the episode: the RTU state and
        traces restart from zero.
        """
        if not self._pending:
            raise RuntimeError("PPOAgent.learn: call act(obs) before each learn(...)")
        next_obs = self._check_obs(next_obs, "next_obs")
        reward = float(reward)
        if not math.isfinite(reward):
            raise ValueError(message("PPOAgent.reward", "a finite number", reward))
        terminated, truncated = bool(terminated), bool(truncated)
        done = terminated or truncated
        ro, t = self.rollout, self._t
        ro.rewards[t] = self._reward_scale(reward, done)
        ro.terminated[t], ro.done[t] = terminated, done
        ro.boot[t] = self._value_of(next_obs) if truncated and not terminated else 0.0
        self._pending = False
        self._t = t + 1
        self.stats["steps"] += 1
        self._episode_return += reward
        if self._t == ro.steps:
            self._update(0.0 if done else self._value_of(next_obs))
        if done:
            self.stats["episodes"] += 1
            self.stats["last_episode_return"] = self._episode_return
            self._episode_return = 0.0
            if self.cell is not None:
                self.cell.reset()

    def _value_of(self, obs):
        """V(obs) one RTU step from the cell's current state, statistics frozen (float)."""
        o = self._obs_norm.normalize(obs).astype(self.dtype)[None]
        return float(self._forward(o, None if self.cell is None else self.cell.state[None])["v"][0])

    def _forward(self, o, c_prev):
        """Batched forward with the current parameters: o (B, n_obs), c_prev (B, 2, n) -> dict of new arrays
        x (B, d), c, a (B, 2, n), y (B, 2n), eta (n,), ha, hv (B, H), mean (B, a), v (B,). Without a cell
        c_prev is ignored, y is x and c, a, eta are absent."""
        p = self.params
        out = {"x": np.tanh(o @ p["enc_w"].T + p["enc_b"])}
        out["y"] = out["x"]
        if self.cell is not None:
            out["c"], out["y"], out["a"], out["eta"] = rtu_batch_step(
                c_prev, out["x"], p["nu_log"], p["theta_log"], p["w1"], p["w2"], self.config.variant)
        out["ha"] = ha = np.tanh(out["y"] @ p["actor_w1"].T + p["actor_b1"])
        out["hv"] = hv = np.tanh(out["y"] @ p["critic_w1"].T + p["critic_b1"])
        out["mean"] = ha @ p["actor_w2"].T + p["actor_b2"]
        out["v"] = hv @ p["critic_w2"][0] + p["critic_b2"][0]
        return out

    def minibatch_gradient(self, idx):
        """Loss gradient for the stored time steps idx (B,) ints, with the current parameters.

        Needs ``rollout.advantages``/``returns`` (``Rollout.finish``). Returns (grads, info): grads a dict
        of new arrays with the keys and shapes of ``params`` (not clipped); info the loss terms, approx_kl
        (mean of (ρ − 1) − log ρ), clip_fraction and explained_variance, as floats.
        """
        cfg, p, ro, f = self.config, self.params, self.rollout, self.dtype
        o, eps = ro.obs[idx], cfg.clip
        fw = self._forward(o, ro.c_prev[idx])
        B = len(idx)
        std = np.exp(p["log_std"].astype(np.float64))
        z = (ro.actions[idx] - fw["mean"]).astype(np.float64) / std
        logp = -0.5 * np.sum(z * z, axis=1) - np.sum(np.log(std)) - 0.5 * self.n_actions * _LOG_2PI
        log_ratio = logp - ro.logp[idx]
        ratio = np.exp(log_ratio)
        adv = ro.advantages[idx]
        if cfg.normalize_advantages:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        policy_loss = -np.mean(np.minimum(ratio * adv, np.clip(ratio, 1.0 - eps, 1.0 + eps) * adv))
        # the clipped branch is the minimum, and constant, only outside the clip range on Â's side
        active = ~(((adv > 0) & (ratio > 1.0 + eps)) | ((adv < 0) & (ratio < 1.0 - eps)))
        d_logp = -adv * active * ratio / B
        v, v_old, ret = fw["v"].astype(np.float64), ro.values[idx], ro.returns[idx]
        l_plain = (v - ret) ** 2
        d_v = v - ret
        if cfg.clip_value_loss:
            v_clip = v_old + np.clip(v - v_old, -eps, eps)
            l_clip = (v_clip - ret) ** 2
            value_loss = 0.5 * np.mean(np.maximum(l_plain, l_clip))
            d_v = np.where(l_plain >= l_clip, d_v, (v_clip - ret) * (np.abs(v - v_old) < eps))
        else:
            value_loss = 0.5 * np.mean(l_plain)
        d_v *= cfg.value_coef / B
        entropy = float(np.sum(0.5 + 0.5 * _LOG_2PI + p["log_std"].astype(np.float64)))
        g = {"log_std": (np.sum(d_logp[:, None] * (z * z - 1.0), axis=0) - cfg.entropy_coef).astype(f)}
        # heads: exact dense backward
        d_mean = (d_logp[:, None] * z / std).astype(f)
        ha, hv, y = fw["ha"], fw["hv"], fw["y"]
        g["actor_w2"], g["actor_b2"] = d_mean.T @ ha, d_mean.sum(0)
        d_pre = (d_mean @ p["actor_w2"]) * (1.0 - ha * ha)
        g["actor_w1"], g["actor_b1"] = d_pre.T @ y, d_pre.sum(0)
        dy = d_pre @ p["actor_w1"]
        d_v = d_v.astype(f)
        g["critic_w2"], g["critic_b2"] = (d_v @ hv)[None], np.array([d_v.sum()], f)
        d_pre = d_v[:, None] * p["critic_w2"] * (1.0 - hv * hv)
        g["critic_w1"], g["critic_b1"] = d_pre.T @ y, d_pre.sum(0)
        dy += d_pre @ p["critic_w1"]
        dx = dy if self.cell is None else self._rtu_backward(dy.reshape(B, 2, -1), fw, idx, g)
        # encoder: exact dense backward from the one-step input gradient
        d_pre = dx * (1.0 - fw["x"] ** 2)
        g["enc_w"], g["enc_b"] = d_pre.T @ o, d_pre.sum(0)
        grads = {k: np.asarray(g[k], f) for k in p}
        total = policy_loss + cfg.value_coef * value_loss - cfg.entropy_coef * entropy
        var_ret = np.var(ret)
        info = {"policy_loss": float(policy_loss), "value_loss": float(value_loss), "entropy": entropy,
                "total_loss": float(total), "approx_kl": float(np.mean(ratio - 1.0 - log_ratio)),
                "clip_fraction": float(np.mean(np.abs(ratio - 1.0) > eps)),
                "explained_variance": float(1.0 - np.var(ret - v) / var_ret) if var_ret > 0 else math.nan}
        return grads, info

    def _rtu_backward(self, dy, fw, idx, g):
        """The RTU's parameter gradients into g: δ = ∂L/∂c_t (dy (B, 2, n)) contracted with the stored
        traces S_t. Returns ∂L/∂x_t (B, d) through the one-step input path (q = ∂L/∂a_t)."""
        p, ro, variant = self.params, self.rollout, self.config.variant
        if variant == "linear":
            delta = q = dy * (fw["c"] > 0)
        else:
            delta, q = dy, dy * (fw["a"] > 0)
        s_vec, s_mat = ro.trace_vec[idx], ro.trace_mat[idx]
        g["nu_log"] = np.einsum("bsk,bsk->k", delta, s_vec[:, 0:2])
        g["theta_log"] = np.einsum("bsk,bsk->k", delta, s_vec[:, 2:4])
        g["w1"] = np.einsum("bsk,bsjk->kj", delta, s_mat[:, 0:2])
        if variant == "linear":  # S1_w2 = -S2_w1, S2_w2 = S1_w1
            g["w2"] = np.einsum("bk,bjk->kj", delta[:, 1], s_mat[:, 0]) - np.einsum(
                "bk,bjk->kj", delta[:, 0], s_mat[:, 1])
        else:
            g["w2"] = np.einsum("bsk,bsjk->kj", delta, s_mat[:, 2:4])
        q = q * fw["eta"]
        return q[:, 0] @ p["w1"] + q[:, 1] @ p["w2"]

    def apply_gradients(self, grads):
        """Global-norm clip (``max_grad_norm``) then one Adam step, in place on ``params`` (the RTU's
        arrays are the cell's). Returns the norm before clipping (float)."""
        cfg = self.config
        norm = math.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads.values()))
        scale = 1.0
        if cfg.max_grad_norm is not None and norm > cfg.max_grad_norm:
            scale = cfg.max_grad_norm / norm
        self._adam_steps += 1
        k = self._adam_steps
        step = cfg.lr * math.sqrt(1.0 - _BETA2 ** k) / (1.0 - _BETA1 ** k)
        eps_hat = cfg.adam_eps * math.sqrt(1.0 - _BETA2 ** k)  # ε on sqrt(v̂), moved onto sqrt(v)
        for name, p in self.params.items():
            gr = grads[name] * scale
            m, v = self._m[name], self._v[name]
            m *= _BETA1
            m += (1.0 - _BETA1) * gr
            v *= _BETA2
            v += (1.0 - _BETA2) * gr * gr
            p -= step * m / (np.sqrt(v) + eps_hat)
        self.stats["updates"] += 1
        return norm

    def _update(self, last_value):
        """GAE, then epochs x minibatches Adam steps; refreshes the cell's coefficients and the rollout."""
        start = time.perf_counter()
        cfg, ro = self.config, self.rollout
        ro.finish(last_value, cfg.gamma, cfg.gae_lambda)
        sums, count = {}, 0
        for _ in range(cfg.epochs):
            perm = self._shuffle_rng.permutation(ro.steps)
            for idx in perm.reshape(cfg.minibatches, cfg.minibatch_size):
                grads, info = self.minibatch_gradient(idx)
                info["grad_norm"] = self.apply_gradients(grads)
                for key, val in info.items():
                    sums[key] = sums.get(key, 0.0) + val
                count += 1
        if self.cell is not None:
            self.cell.refresh_coefficients()
        self._new_rollout()
        self.stats.update({key: val / count for key, val in sums.items()})
        self.stats["rollouts"] += 1
        self.stats["update_seconds"] = time.perf_counter() - start

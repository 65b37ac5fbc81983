"""Rollout storage, GAE and the running normalisers of ``controller.ppo.PPOAgent``.

* ``Rollout``: preallocated arrays of one rollout, written by index while acting (no per-step allocation).
* ``gae``: advantages and value targets with termination / truncation handled separately.
* ``ObservationNormalizer``, ``RewardScaler``: gymnasium's NormalizeObservation / NormalizeReward
  statistics (RunningMeanStd with count 1e-4, mean 0, variance 1 at the start).
"""
import math

import numpy as np


class Rollout:
    """One rollout of T steps, every array preallocated (``dtype`` = the network's unless said).

    Per step t (act on o_t, then learn from the transition):

    * ``obs``      (T, n_obs)    normalised observation o_t
    * ``x``        (T, d)        encoder output x_t (the RTU's input)
    * ``c_prev``   (T, 2, n)     RTU state before the step, c_{t-1} = [Re, Im]
    * ``trace_vec`` (T, 4, n)    RTRL traces after the step: S1_nu_log, S2_nu_log, S1_theta_log, S2_theta_log
    * ``trace_mat`` (T, K, d, n) RTRL traces after the step, input-major (the transposed (n, d) traces):
      K = 2 (linear RTU: S1_w1, S2_w1; the w2 traces follow from them) or 4 (non-linear: + S1_w2, S2_w2)
    * ``noise``    (T, a)        standard-normal draws of the policy, filled once per rollout
    * ``actions``  (T, a)        unclipped Gaussian sample
    * ``logp``, ``values``, ``rewards`` (T,) float64: log π(a_t|o_t), V(o_t), scaled reward
    * ``terminated``, ``done`` (T,) bool: termination, termination or truncation
    * ``boot``     (T,) float64  V of the final observation where truncated, else 0
    * ``advantages``, ``returns`` (T,) float64: filled by ``finish``

    Bytes per stored step: itemsize * (n_obs + d + 2n + 4n + K d n + 2a) + 6 * 8 + 2; float32 at paper
    size (n_obs 8, d 64, n 192, a 6, linear) ≈ 103 KB, i.e. ≈ 211 MB for 2048 steps (non-linear ≈ 410 MB).
    Without a recurrent cell n = K = 0: ``c_prev`` and the traces are empty, 386 bytes per step.
    """

    def __init__(self, steps, n_obs, d, n, n_actions, n_mat_traces, dtype):
        f = np.dtype(dtype)
        self.steps = steps
        self.obs = np.zeros((steps, n_obs), f)
        self.x = np.zeros((steps, d), f)
        self.c_prev = np.zeros((steps, 2, n), f)
        self.trace_vec = np.zeros((steps, 4, n), f)
        self.trace_mat = np.zeros((steps, n_mat_traces, d, n), f)
        self.noise = np.zeros((steps, n_actions), f)
        self.actions = np.zeros((steps, n_actions), f)
        self.logp = np.zeros(steps)
        self.values = np.zeros(steps)
        self.rewards = np.zeros(steps)
        self.boot = np.zeros(steps)
        self.terminated = np.zeros(steps, bool)
        self.done = np.zeros(steps, bool)
        self.advantages = np.zeros(steps)
        self.returns = np.zeros(steps)
        for big in (self.trace_mat, self.trace_vec, self.c_prev):
            big.fill(0.0)  # fault the pages in now: a first touch while acting costs ~200 µs per step

    @property
    def bytes_per_step(self):
        """Bytes the arrays above hold per time step."""
        arrays = (self.obs, self.x, self.c_prev, self.trace_vec, self.trace_mat, self.noise, self.actions,
                  self.logp, self.values, self.rewards, self.boot, self.terminated, self.done,
                  self.advantages, self.returns)
        return sum(a.nbytes for a in arrays) // self.steps

    def finish(self, last_value, gamma, lam):
        """Fill ``advantages`` and ``returns`` (in place) for a full rollout; ``last_value``: V of the
        observation after the last step (ignored when that step ended an episode)."""
        self.advantages[:], self.returns[:] = gae(self.rewards, self.values, self.terminated, self.done,
                                                  self.boot, last_value, gamma, lam)


def gae(rewards, values, terminated, done, boot, last_value, gamma, lam):
    """Generalised advantage estimates and value targets, both (T,) float64 (new arrays).

    rewards, values, boot: (T,) floats; terminated, done: (T,) bools (done = terminated or truncated).
    The value after step t is V(o_{t+1}) inside an episode, ``last_value`` after the last step,
    ``boot[t]`` after a truncation and 0 after a termination; the recursion
    A_t = δ_t + γ λ (1 - done_t) A_{t+1} stops at every episode end.
    """
    rewards = np.asarray(rewards, np.float64)
    values = np.asarray(values, np.float64)
    done = np.asarray(done, bool)
    next_values = np.empty_like(values)
    next_values[:-1] = values[1:]
    next_values[-1] = last_value
    next_values = np.where(done, np.where(terminated, 0.0, boot), next_values)
    deltas = rewards + gamma * next_values - values
    carry = gamma * lam * ~done
    adv = np.empty_like(values)
    acc = 0.0
    for t in range(len(values) - 1, -1, -1):  # a Python loop: 2048 steps cost about a millisecond
        acc = deltas[t] + carry[t] * acc
        adv[t] = acc
    return adv, adv + values


class ObservationNormalizer:
    """Running mean and variance of the observations (float64), gymnasium's RunningMeanStd for a batch
    of one: count starts at 1e-4, mean at 0, var at 1. ``update_normalize`` updates then normalises,
    as gymnasium's NormalizeObservation; ``normalize`` only normalises (frozen statistics)."""

    def __init__(self, n_obs, enabled=True):
        self.enabled = enabled
        self.count = 1e-4
        self.mean = np.zeros(n_obs)
        self.var = np.ones(n_obs)
        self._delta = np.zeros(n_obs)
        self._scale = np.ones(n_obs)    # scratch, then sqrt(var + 1e-8)

    def update_normalize(self, obs, out):
        """Update the statistics with obs (n_obs,) and write (obs - mean) / sqrt(var + 1e-8) into out
        (n_obs,) of any float dtype. No allocation."""
        if not self.enabled:
            out[:] = obs
            return out
        d, count = self._delta, self.count
        total = count + 1.0
        np.subtract(obs, self.mean, out=d)
        self.var *= count
        np.multiply(d, d, out=self._scale)
        self._scale *= count / total
        self.var += self._scale
        self.var /= total
        d /= total
        self.mean += d
        self.count = total
        np.add(self.var, 1e-8, out=self._scale)
        np.sqrt(self._scale, out=self._scale)
        np.subtract(obs, self.mean, out=d)
        np.divide(d, self._scale, out=out, casting="same_kind")
        return out

    def normalize(self, obs):
        """(obs - mean) / sqrt(var + 1e-8) as a new float64 array (statistics unchanged)."""
        obs = np.asarray(obs, np.float64)
        return (obs - self.mean) / np.sqrt(self.var + 1e-8) if self.enabled else obs.copy()


class RewardScaler:
    """r / sqrt(Var(G) + 1e-8) with G ← γ G + r the discounted return, gymnasium's NormalizeReward
    (its RunningMeanStd starts at count 1e-4, var 1). G restarts at every episode end, as the official
    code's wrapper does (gymnasium restarts it at termination only)."""

    def __init__(self, gamma, enabled=True):
        self.gamma, self.enabled = gamma, enabled
        self.count, self.mean, self.var = 1e-4, 0.0, 1.0
        self.ret = 0.0

    def __call__(self, reward, episode_over):
        """The scaled reward (float); updates the statistics."""
        if not self.enabled:
            return reward
        self.ret = self.gamma * self.ret + reward
        total = self.count + 1.0
        delta = self.ret - self.mean
        self.mean += delta / total
        self.var = (self.var * self.count + delta * delta * self.count / total) / total
        self.count = total
        scaled = reward / math.sqrt(self.var + 1e-8)
        if episode_over:
            self.ret = 0.0
        return scaled

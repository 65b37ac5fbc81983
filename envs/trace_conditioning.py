"""Trace conditioning: the animal-learning prediction benchmark used to test memory in the RTU paper.

A continuing stream of trials. In each trial a conditioned stimulus (CS) is on for one step; after an
inter-stimulus interval (ISI) of ``isi`` steps the unconditioned stimulus (US) is on for one step; then an
inter-trial interval (ITI) of ``iti`` steps passes before the next CS. Between CS and US nothing marks the
passage of time, so predicting the US requires remembering the CS. ``n_distractors`` further binary
features switch on independently with probability ``distractor_prob`` per step; they carry no information.

Observation (``Box(0, 1, (2 + n_distractors,), float32)``): ``[CS_t, US_t, distractor_1..n]``.
Action space: ``Discrete(1)`` (a prediction task: the action is ignored).
Cumulant: the reward returned by ``step`` is ``US_{t+1}``, the US of the observation it returns.
Target: the discounted return of observation t, ``G_t = Σ_{k≥0} γ^k US_{t+k+1}`` with the env's ``gamma``,
given exactly (to within ``RETURN_TOL``) in ``info["return"]`` from ``reset`` and every ``step``, because
the env draws its trial schedule ahead of time. Score a predictor with
:func:`envs.returns.msre` (predictions vs ``info["return"]``).

Known answers: with fixed ``isi = I`` and ``iti = J`` (period P = I + J, one US per period), the return at
a CS step is ``γ^(I−1) / (1 − γ^P)`` and at the step just before a US ``1 / (1 − γ^P)``.
Timing: the first CS is at a step drawn from the ITI range (so t = 0 is a blank step); ISIs and ITIs are
drawn uniformly from their inclusive ranges, independently per trial. Never terminates or truncates
(registered without a time limit; pass ``max_episode_steps`` to ``gymnasium.make`` for one).
"""
from __future__ import annotations

import math
from collections import deque

import gymnasium as gym
import numpy as np

from envs.errors import EnvConfigError, check_float, check_int

__all__ = ["TraceConditioning", "RETURN_TOL", "MAX_INTERVAL", "MAX_DISTRACTORS"]

#: ``info["return"]`` omits at most this much of the infinite discounted sum.
RETURN_TOL = 1e-12
#: largest allowed ISI or ITI, in steps.
MAX_INTERVAL = 100_000
#: largest allowed number of distractor features.
MAX_DISTRACTORS = 1000


def _interval(name: str, value) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise EnvConfigError(f"{name} must be an integer or a (low, high) pair; got {value!r}")
        low = check_int(f"{name}[0]", value[0], 1, MAX_INTERVAL)
        high = check_int(f"{name}[1]", value[1], 1, MAX_INTERVAL)
        if low > high:
            raise EnvConfigError(f"{name} must be a (low, high) pair with low <= high; got {value!r}")
        return low, high
    v = check_int(name, value, 1, MAX_INTERVAL)
    return v, v


class TraceConditioning(gym.Env):
    """Trace conditioning stream; see the module docstring for the definition.

    Args:
        isi: steps from CS onset to US onset, an int or an inclusive (low, high) range; each in [1, 100000].
        iti: steps from a US to the next CS, an int or an inclusive (low, high) range; each in [1, 100000].
        n_distractors: number of distractor features, in [0, 1000].
        distractor_prob: per-step probability that each distractor is on, in [0, 1].
        gamma: discount of the target return, in [0, 1).
    """

    metadata = {"render_modes": []}

    def __init__(self, isi=(14, 26), iti=(80, 120), n_distractors: int = 10, distractor_prob: float = 0.1,
                 gamma: float = 0.9, render_mode=None):
        self.isi = _interval("isi", isi)
        self.iti = _interval("iti", iti)
        self.n_distractors = check_int("n_distractors", n_distractors, 0, MAX_DISTRACTORS)
        self.distractor_prob = check_float("distractor_prob", distractor_prob, 0.0, 1.0)
        self.gamma = check_float("gamma", gamma, 0.0, 1.0, high_inclusive=False)
        if render_mode is not None:
            raise EnvConfigError(f"render_mode must be None (no rendering); got {render_mode!r}")
        self.render_mode = None
        # steps of lookahead so that the omitted tail Σ_{k≥H} γ^k ≤ RETURN_TOL
        if self.gamma == 0.0:
            self.horizon = 1
        else:
            self.horizon = max(1, math.ceil(math.log(RETURN_TOL * (1.0 - self.gamma)) / math.log(self.gamma)))
        self.observation_space = gym.spaces.Box(0.0, 1.0, shape=(2 + self.n_distractors,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(1)
        self._trials: deque = deque()  # (cs_step, us_step), ascending, non-overlapping
        self._t = 0
        self._next_cs = 0
        self._trial_rng = np.random.default_rng(0)
        self._distractor_rng = np.random.default_rng(0)

    # --- schedule -------------------------------------------------------------------------------------
    def _extend_schedule(self, until: int) -> None:
        while not self._trials or self._trials[-1][1] <= until:
            cs = self._next_cs
            us = cs + int(self._trial_rng.integers(self.isi[0], self.isi[1] + 1))
            self._trials.append((cs, us))
            self._next_cs = us + int(self._trial_rng.integers(self.iti[0], self.iti[1] + 1))

    def _observe(self) -> tuple[np.ndarray, dict]:
        t = self._t
        while self._trials and self._trials[0][1] < t:
            self._trials.popleft()
        self._extend_schedule(t + self.horizon)
        cs, us = self._trials[0]
        obs = np.zeros(self.observation_space.shape, dtype=np.float32)
        obs[0] = 1.0 if cs == t else 0.0
        obs[1] = 1.0 if us == t else 0.0
        if self.n_distractors:
            obs[2:] = self._distractor_rng.random(self.n_distractors) < self.distractor_prob
        return obs, {"return": self.true_return(), "t": t}

    def true_return(self) -> float:
        """G_t of the current observation: Σ over future US steps u > t of γ^(u − t − 1), to RETURN_TOL."""
        t, g = self._t, 0.0
        for _, us in self._trials:
            k = us - t - 1
            if k < 0:
                continue
            if k >= self.horizon:
                break
            g += self.gamma**k
        return g

    # --- gymnasium API ----------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        s1, s2 = self.np_random.integers(0, 2**63 - 1, size=2)
        self._trial_rng = np.random.default_rng(int(s1))
        self._distractor_rng = np.random.default_rng(int(s2))
        self._trials.clear()
        self._t = 0
        self._next_cs = int(self._trial_rng.integers(self.iti[0], self.iti[1] + 1))
        return self._observe()

    def step(self, action):
        a = np.asarray(action)
        if a.size != 1 or not np.issubdtype(a.dtype, np.integer) or int(a.reshape(-1)[0]) != 0:
            raise EnvConfigError(f"action must be 0 (the only action of Discrete(1)); got {action!r}")
        self._t += 1
        obs, info = self._observe()
        return obs, float(obs[1]), False, False, info

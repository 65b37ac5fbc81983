"""Delayed cue: remember a cue over a delay drawn per episode, through channels of Gaussian noise.

Episode (``delay + 2`` steps, every one of them an action), ``delay`` drawn uniformly from the inclusive
range ``delay = (lo, hi)`` (default 8..24) by the env's seeded ``np_random`` at every reset:

* step 0 — the cue channels show the cue as a one-hot vector over ``n_cues``;
* steps 1..delay — the cue channels and the query flag are 0;
* step delay+1 — the *query*: the query flag is 1. The action taken on the query observation is scored:
  reward +1 if it names the cue, 0 otherwise, and the episode terminates. Earlier actions earn 0.

At every step, the cue and query steps included, ``n_distractors`` further channels (default 8) carry
independent N(0, noise_std²) noise (``noise_std`` default 1.0), drawn from ``np_random``. The query
observation is the same for every cue and every delay except for that noise, so it reveals neither.

Observation: ``Box((n_cues + 1 + n_distractors,), float32)`` =
``[cue one-hot (n_cues), query flag, distractors (n_distractors)]``; cue and flag in {0, 1}, distractors
unbounded. The returned observation after the answer (terminal) has cue and flag 0.

``DelayedCue`` (``DelayedCue-v0``): actions ``Discrete(n_cues)``; action i names cue i.
``DelayedCueContinuous`` (``DelayedCueContinuous-v0``): actions ``Box(-1, 1, (1,), float32)``; cue i has
the target ``linspace(-1, 1, n_cues)[i]`` and the action (clipped to [-1, 1]) names the cue whose target
is nearest (two cues: the sign of the action; ties go to the lower cue).

Known answers: the optimal return is 1 per episode (remember the cue, name it at the query). The query
observation's distribution does not depend on the cue, so any memoryless policy — any function of the
current observation, however it uses the noise — earns exactly ``1 / n_cues`` on average (chance level,
``env.unwrapped.chance_level``), as does a uniformly random action. With the defaults an episode lasts
18 steps on average (10..26), so 300k steps hold about 16,700 episodes.

Scoring: the episode return is 1 when the answer was correct and 0 otherwise, so the mean return over
episodes is the fraction correct. ``info`` (from ``reset`` and every ``step``) carries ``cue`` (int),
``delay`` (int, this episode's), ``t`` (int, index of the returned observation in the episode),
``query`` (bool: the returned observation is the query) and ``correct`` (None until the query has been
answered; then a bool, on the terminating step).
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np

from envs.cue_recall import nearest_target
from envs.errors import EnvConfigError, check_float, check_int, check_int_range

__all__ = ["DelayedCue", "DelayedCueContinuous", "MAX_DELAY", "MAX_CUES", "MAX_DISTRACTORS", "MAX_NOISE_STD"]

#: largest allowed delay (steps between cue and query).
MAX_DELAY = 100_000
#: largest allowed number of cues.
MAX_CUES = 1000
#: largest allowed number of distractor channels.
MAX_DISTRACTORS = 1000
#: largest allowed distractor standard deviation.
MAX_NOISE_STD = 1e3


class _DelayedCueBase(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, n_cues: int = 2, delay=(8, 24), n_distractors: int = 8, noise_std: float = 1.0,
                 render_mode=None):
        self.n_cues = check_int("n_cues", n_cues, 2, MAX_CUES)
        self.delay_range = check_int_range("delay", delay, 0, MAX_DELAY)
        self.n_distractors = check_int("n_distractors", n_distractors, 0, MAX_DISTRACTORS)
        self.noise_std = check_float("noise_std", noise_std, 0.0, MAX_NOISE_STD)
        if render_mode is not None:
            raise EnvConfigError(f"render_mode must be None (no rendering); got {render_mode!r}")
        self.render_mode = None
        n_clean = self.n_cues + 1
        low = np.concatenate([np.zeros(n_clean), np.full(self.n_distractors, -np.inf)]).astype(np.float32)
        high = np.concatenate([np.ones(n_clean), np.full(self.n_distractors, np.inf)]).astype(np.float32)
        self.observation_space = gym.spaces.Box(low, high, dtype=np.float32)
        self._blank = np.zeros(self.observation_space.shape, dtype=np.float32)
        self._cue = 0
        self._delay = self.delay_range[0]
        self._t = 0
        self._correct: bool | None = None
        self._done = True

    @property
    def chance_level(self) -> float:
        """Expected reward per episode of any memoryless policy: 1 / n_cues."""
        return 1.0 / self.n_cues

    def _obs(self) -> np.ndarray:
        obs = self._blank.copy()
        if self._t == 0:
            obs[self._cue] = 1.0
        if self._t == self._delay + 1 and not self._done:
            obs[self.n_cues] = 1.0
        if self.n_distractors:
            noise = obs[self.n_cues + 1:]
            self.np_random.standard_normal(self.n_distractors, dtype=np.float32, out=noise)
            noise *= self.noise_std
        return obs

    def _info(self) -> dict:
        return {"cue": self._cue, "delay": self._delay, "t": self._t,
                "query": self._t == self._delay + 1 and not self._done, "correct": self._correct}

    def _chosen_cue(self, action) -> int:
        raise NotImplementedError

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._cue = int(self.np_random.integers(self.n_cues))
        self._delay = int(self.np_random.integers(self.delay_range[0], self.delay_range[1] + 1))
        self._t = 0
        self._correct = None
        self._done = False
        return self._obs(), self._info()

    def step(self, action):
        if self._done:
            raise gym.error.ResetNeeded("step() called on a finished episode; call reset() first")
        chosen = self._chosen_cue(action)  # validates the action
        self._t += 1
        if self._t == self._delay + 2:
            self._correct = chosen == self._cue
            self._done = True
            return self._obs(), float(self._correct), True, False, self._info()
        return self._obs(), 0.0, False, False, self._info()


class DelayedCue(_DelayedCueBase):
    """Discrete delayed cue. Args: ``n_cues`` in [2, 1000] (default 2); ``delay`` an int or an inclusive
    (low, high) range of steps between cue and query, each in [0, 100000] (default (8, 24)), drawn
    uniformly per episode; ``n_distractors`` noise channels in [0, 1000] (default 8); ``noise_std`` their
    standard deviation in [0, 1000] (default 1.0). Actions: ``Discrete(n_cues)``."""

    def __init__(self, n_cues: int = 2, delay=(8, 24), n_distractors: int = 8, noise_std: float = 1.0,
                 render_mode=None):
        super().__init__(n_cues, delay, n_distractors, noise_std, render_mode)
        self.action_space = gym.spaces.Discrete(self.n_cues)

    def _chosen_cue(self, action) -> int:
        if type(action) is int or isinstance(action, np.integer):  # the common case, without conversions
            a = int(action)
        else:
            arr = np.asarray(action)
            if arr.size != 1 or arr.dtype.kind not in "iu":
                raise EnvConfigError(f"action must be an integer in [0, {self.n_cues}); got {action!r}")
            a = int(arr.reshape(-1)[0])
        if not 0 <= a < self.n_cues:
            raise EnvConfigError(f"action must be an integer in [0, {self.n_cues}); got {action!r}")
        return a


class DelayedCueContinuous(_DelayedCueBase):
    """Continuous-action delayed cue. Args as :class:`DelayedCue`. Actions: ``Box(-1, 1, (1,), float32)``;
    ``targets[i] = linspace(-1, 1, n_cues)[i]`` and the chosen cue is the one with the nearest target."""

    def __init__(self, n_cues: int = 2, delay=(8, 24), n_distractors: int = 8, noise_std: float = 1.0,
                 render_mode=None):
        super().__init__(n_cues, delay, n_distractors, noise_std, render_mode)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self.targets = np.linspace(-1.0, 1.0, self.n_cues)

    def _chosen_cue(self, action) -> int:
        return nearest_target(action, self.targets)

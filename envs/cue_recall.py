"""Cue recall: a control task that can only be solved by remembering a cue across a delay.

Episode (``delay + 2`` steps, every one of them an action):

* step 0 — observation shows the cue as a one-hot vector over ``n_cues``;
* steps 1..delay — blank observations (all zeros);
* step delay+1 — the *query*: the last entry of the observation is 1 ("act now"). The action taken on
  the query observation is scored: reward +1 if it matches the cue, 0 otherwise, and the episode
  terminates. Actions before the query are ignored (reward 0).

Observation: ``Box(0, 1, (n_cues + 1,), float32)`` = ``[cue one-hot (n_cues), query flag]``.

``CueRecall`` (``CueRecall-v0``): actions ``Discrete(n_cues)``; action i matches cue i.
``CueRecallContinuous`` (``CueRecallContinuous-v0``): actions ``Box(-1, 1, (1,), float32)``; cue i has
the target ``linspace(−1, 1, n_cues)[i]`` and the action (clipped to [−1, 1]) matches the cue whose target
is nearest (for ``n_cues = 2``: the sign of the action; ties go to the lower cue).

Known answers: the optimal return is 1 per episode. Without memory the query step looks the same for
every cue, so any memoryless policy earns ``1 / n_cues`` on average (chance level), e.g. 0.5 for two
cues; a uniformly random action also earns ``1 / n_cues`` in both versions.
``info`` carries ``cue`` (int) and ``query`` (bool: the returned observation is the query).
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np

from envs.errors import EnvConfigError, check_int

__all__ = ["CueRecall", "CueRecallContinuous", "MAX_CUE_DELAY", "MAX_CUES"]

#: largest allowed number of blank steps.
MAX_CUE_DELAY = 100_000
#: largest allowed number of cues.
MAX_CUES = 1000


class _CueRecallBase(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, n_cues: int = 2, delay: int = 5, render_mode=None):
        self.n_cues = check_int("n_cues", n_cues, 2, MAX_CUES)
        self.delay = check_int("delay", delay, 0, MAX_CUE_DELAY)
        if render_mode is not None:
            raise EnvConfigError(f"render_mode must be None (no rendering); got {render_mode!r}")
        self.render_mode = None
        self.observation_space = gym.spaces.Box(0.0, 1.0, shape=(self.n_cues + 1,), dtype=np.float32)
        self._cue = 0
        self._t = 0
        self._done = True

    @property
    def chance_level(self) -> float:
        """Expected reward per episode of any memoryless policy: 1 / n_cues."""
        return 1.0 / self.n_cues

    def _obs(self) -> np.ndarray:
        obs = np.zeros(self.observation_space.shape, dtype=np.float32)
        if self._t == 0:
            obs[self._cue] = 1.0
        if self._t == self.delay + 1:
            obs[-1] = 1.0
        return obs

    def _info(self) -> dict:
        return {"cue": self._cue, "query": self._t == self.delay + 1}

    def _chosen_cue(self, action) -> int:
        raise NotImplementedError

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._cue = int(self.np_random.integers(self.n_cues))
        self._t = 0
        self._done = False
        return self._obs(), self._info()

    def step(self, action):
        if self._done:
            raise gym.error.ResetNeeded("step() called on a finished episode; call reset() first")
        chosen = self._chosen_cue(action)  # validates the action
        if self._t == self.delay + 1:
            reward = 1.0 if chosen == self._cue else 0.0
            self._done = True
            return self._obs(), reward, True, False, self._info()
        self._t += 1
        return self._obs(), 0.0, False, False, self._info()


class CueRecall(_CueRecallBase):
    """Discrete cue recall. Args: ``n_cues`` in [2, 1000] (default 2), ``delay`` blank steps in
    [0, 100000] (default 5). Actions: ``Discrete(n_cues)``."""

    def __init__(self, n_cues: int = 2, delay: int = 5, render_mode=None):
        super().__init__(n_cues=n_cues, delay=delay, render_mode=render_mode)
        self.action_space = gym.spaces.Discrete(self.n_cues)

    def _chosen_cue(self, action) -> int:
        a = np.asarray(action)
        if a.size != 1 or not np.issubdtype(a.dtype, np.integer) or not 0 <= int(a.reshape(-1)[0]) < self.n_cues:
            raise EnvConfigError(f"action must be an integer in [0, {self.n_cues}); got {action!r}")
        return int(a.reshape(-1)[0])


def nearest_target(action, targets) -> int:
    """Index of the entry of ``targets`` (n,) nearest to a one-number continuous action, clipped to
    [-1, 1] first; raises EnvConfigError unless the action is one finite number."""
    a = np.asarray(action, dtype=np.float64)
    if a.size != 1 or not np.isfinite(a).all():
        raise EnvConfigError(f"action must be one finite number (clipped to [-1, 1]); got {action!r}")
    a = float(np.clip(a.reshape(-1)[0], -1.0, 1.0))
    return int(np.argmin(np.abs(targets - a)))


class CueRecallContinuous(_CueRecallBase):
    """Continuous-action cue recall. Args as :class:`CueRecall`. Actions: ``Box(-1, 1, (1,), float32)``;
    ``targets[i] = linspace(-1, 1, n_cues)[i]`` and the chosen cue is the one with the nearest target."""

    def __init__(self, n_cues: int = 2, delay: int = 5, render_mode=None):
        super().__init__(n_cues=n_cues, delay=delay, render_mode=render_mode)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self.targets = np.linspace(-1.0, 1.0, self.n_cues)

    def _chosen_cue(self, action) -> int:
        return nearest_target(action, self.targets)

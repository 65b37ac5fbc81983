"""Optional observation wrappers, composable with any env that has a 1-D ``Box`` observation space.

* :class:`GaussianObservationNoise` – adds N(0, std²) noise to each observation entry.
* :class:`ObservationDelay` – the agent sees the observation from ``delay`` steps ago.
* :class:`PreviousActionReward` – appends the previous action and/or reward to the observation.
* :func:`apply_wrappers` – stacks them in one documented order: delay → noise → previous action/reward
  → frame stack (the delayed observation is the one that gets noise; the appended action and reward are
  never delayed or noisy, because the agent knows them; ``frame_stack`` = k > 1 then shows the last k of
  those observations, flattened: gymnasium's ``FrameStackObservation`` + ``FlattenObservation``, the
  classic memory baseline for a feed-forward agent).

All are ``gymnasium.Wrapper`` s that record their constructor arguments (so ``gymnasium.make(env.spec)``
rebuilds them). Parameters are validated at construction; errors are :class:`~envs.errors.EnvConfigError`
(a ``ValueError``) naming the parameter and the allowed values.
"""
from __future__ import annotations

from collections import deque

import gymnasium as gym
import numpy as np
from gymnasium.utils import RecordConstructorArgs

from envs.errors import EnvConfigError, check_choice, check_int

__all__ = [
    "MAX_DELAY",
    "MAX_NOISE_STD",
    "GaussianObservationNoise",
    "ObservationDelay",
    "PreviousActionReward",
    "apply_wrappers",
]

#: largest allowed observation delay, in env steps.
MAX_DELAY = 1000
#: largest allowed frame stack (observations shown at once).
MAX_FRAME_STACK = 64
#: largest allowed noise standard deviation (in the observation's own units).
MAX_NOISE_STD = 1e6
# mixed into the reset seed so the noise stream differs from the env's own random stream
_NOISE_STREAM = 0x6E6F697365


def _box_1d(env: gym.Env, who: str) -> gym.spaces.Box:
    space = env.observation_space
    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
        raise EnvConfigError(f"{who} needs a 1-D Box observation space; got {space}")
    return space


class GaussianObservationNoise(gym.ObservationWrapper, RecordConstructorArgs):
    """Observation + N(0, std²) i.i.d. noise per entry, then clipped to the observation space bounds.

    Args:
        env: env with a 1-D Box observation space of shape ``(n,)``.
        std: scalar or length-``n`` array, finite, in ``[0, MAX_NOISE_STD]``; same units as the observation.
        seed: seeds the noise generator at construction. ``reset(seed=s)`` reseeds it from ``s`` (so a
            seeded reset gives a reproducible noise stream); ``reset()`` without a seed continues the stream.

    The output dtype is the base space's dtype; clipping keeps every observation inside the space (it only
    matters for bounded entries such as CartPole's x or Pendulum's cos/sin).
    """

    def __init__(self, env: gym.Env, std=0.1, seed: int | None = None):
        RecordConstructorArgs.__init__(self, std=np.asarray(std).tolist(), seed=seed)
        gym.ObservationWrapper.__init__(self, env)
        space = _box_1d(env, "GaussianObservationNoise")
        std_arr = np.asarray(std, dtype=np.float64)
        if std_arr.ndim > 1 or (std_arr.ndim == 1 and std_arr.shape != space.shape):
            raise EnvConfigError(f"std must be a scalar or have shape {space.shape}; got shape {std_arr.shape}")
        if not np.all(np.isfinite(std_arr)) or np.any(std_arr < 0) or np.any(std_arr > MAX_NOISE_STD):
            raise EnvConfigError(f"std must be finite and in [0, {MAX_NOISE_STD:g}]; got {std!r}")
        if seed is not None:
            check_int("seed", seed, 0)
        self.std = np.broadcast_to(std_arr, space.shape).copy()
        self._rng = np.random.default_rng(seed)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self._rng = np.random.default_rng([int(seed), _NOISE_STREAM])
        return super().reset(seed=seed, options=options)

    def observation(self, observation):
        space = self.observation_space
        noisy = np.asarray(observation, dtype=np.float64) + self.std * self._rng.standard_normal(space.shape)
        return np.clip(noisy, space.low, space.high).astype(space.dtype)


class ObservationDelay(gym.Wrapper, RecordConstructorArgs):
    """The observation returned at step ``t`` is the base env's observation from step ``t − delay``.

    Args:
        env: env with a 1-D Box observation space.
        delay: integer in ``[0, MAX_DELAY]``; 0 is the identity.
        fill: what is seen during the first ``delay`` steps after a reset, before any delayed observation
            exists: ``"reset"`` repeats the reset observation (default), ``"zeros"`` gives zeros (allowed
            only if 0 lies inside the observation bounds).

    ``info["undelayed_observation"]`` holds the current, undelayed observation. Spaces are unchanged.
    """

    def __init__(self, env: gym.Env, delay: int = 1, fill: str = "reset"):
        RecordConstructorArgs.__init__(self, delay=delay, fill=fill)
        gym.Wrapper.__init__(self, env)
        space = _box_1d(env, "ObservationDelay")
        self.delay = check_int("delay", delay, 0, MAX_DELAY)
        self.fill = check_choice("fill", fill, ("reset", "zeros"))
        if fill == "zeros" and not space.contains(np.zeros(space.shape, dtype=space.dtype)):
            raise EnvConfigError(
                f"fill='zeros' needs 0 inside the observation bounds [{space.low}, {space.high}]; use fill='reset'"
            )
        self._buffer: deque = deque(maxlen=self.delay + 1)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        space = self.observation_space
        first = np.zeros(space.shape, dtype=space.dtype) if self.fill == "zeros" else np.array(obs, copy=True)
        self._buffer.clear()
        for _ in range(self.delay):
            self._buffer.append(first)
        self._buffer.append(np.array(obs, copy=True))
        info = {**info, "undelayed_observation": obs}
        return self._buffer[0], info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._buffer.append(np.array(obs, copy=True))
        info = {**info, "undelayed_observation": obs}
        return self._buffer[0], reward, terminated, truncated, info


class PreviousActionReward(gym.Wrapper, RecordConstructorArgs):
    """Append the previous action and/or the previous reward to the observation.

    Output: ``concat(obs, a_prev, [r_prev])`` of the base observation's dtype, where

    * ``a_prev`` (if ``action=True``): for ``Discrete(n)`` a one-hot vector of length n; for a ``Box``
      action space the flattened action clipped to its bounds (what a controller with those limits
      applies). Bounds: [0, 1] for one-hot, the action bounds for Box.
    * ``r_prev`` (if ``reward=True``): the last reward, bounds (−inf, inf).

    After a reset ``a_prev`` is all zeros for Discrete (no action yet) and ``clip(0, low, high)`` for Box,
    and ``r_prev`` is 0.
    """

    def __init__(self, env: gym.Env, action: bool = True, reward: bool = True):
        RecordConstructorArgs.__init__(self, action=action, reward=reward)
        gym.Wrapper.__init__(self, env)
        space = _box_1d(env, "PreviousActionReward")
        if not isinstance(action, bool) or not isinstance(reward, bool):
            raise EnvConfigError(f"action and reward must be True or False; got {action!r}, {reward!r}")
        if not (action or reward):
            raise EnvConfigError("PreviousActionReward with action=False and reward=False appends nothing")
        self.include_action, self.include_reward = action, reward
        aspace = env.action_space
        lows, highs = [space.low.astype(np.float64)], [space.high.astype(np.float64)]
        if action:
            if isinstance(aspace, gym.spaces.Discrete):
                n = int(aspace.n)
                self._a_low, self._a_high = np.zeros(n), np.ones(n)
                self._a_reset = np.zeros(n)
            elif isinstance(aspace, gym.spaces.Box):
                self._a_low = aspace.low.astype(np.float64).ravel()
                self._a_high = aspace.high.astype(np.float64).ravel()
                self._a_reset = np.clip(0.0, self._a_low, self._a_high)
            else:
                raise EnvConfigError(f"action space must be Discrete or Box to append actions; got {aspace}")
            lows.append(self._a_low)
            highs.append(self._a_high)
        if reward:
            lows.append(np.array([-np.inf]))
            highs.append(np.array([np.inf]))
        dtype = space.dtype if np.issubdtype(space.dtype, np.floating) else np.float32
        self.observation_space = gym.spaces.Box(
            np.concatenate(lows).astype(dtype), np.concatenate(highs).astype(dtype), dtype=dtype
        )
        self._n_obs = space.shape[0]

    def _encode_action(self, action) -> np.ndarray:
        if isinstance(self.env.action_space, gym.spaces.Discrete):
            out = np.zeros_like(self._a_low)
            out[int(action) - int(self.env.action_space.start)] = 1.0
            return out
        return np.clip(np.asarray(action, dtype=np.float64).ravel(), self._a_low, self._a_high)

    def _augment(self, obs, a_feat, reward) -> np.ndarray:
        parts = [np.asarray(obs, dtype=np.float64).ravel()]
        if self.include_action:
            parts.append(a_feat)
        if self.include_reward:
            parts.append(np.array([reward], dtype=np.float64))
        return np.concatenate(parts).astype(self.observation_space.dtype)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        a_feat = self._a_reset if self.include_action else None
        return self._augment(obs, a_feat, 0.0), info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        a_feat = self._encode_action(action) if self.include_action else None
        return self._augment(obs, a_feat, float(reward)), reward, terminated, truncated, info


def apply_wrappers(
    env: gym.Env,
    *,
    delay: int = 0,
    delay_fill: str = "reset",
    noise_std=0.0,
    noise_seed: int | None = None,
    prev_action: bool = False,
    prev_reward: bool = False,
    frame_stack: int = 1,
) -> gym.Env:
    """Wrap ``env`` in the order delay → noise → previous action/reward → frame stack, skipping those
    that are off (``delay == 0``, ``noise_std == 0`` everywhere, ``prev_action`` and ``prev_reward`` both
    False, ``frame_stack == 1``).

    ``frame_stack`` k in [1, MAX_FRAME_STACK]: the observation becomes the last k observations of the
    inner wrappers, oldest first, flattened to one 1-D Box of k n entries, [o_{t-k+1}, ..., o_t]; right
    after a reset the missing older ones repeat the reset observation (gymnasium's ``padding_type=
    "reset"``)."""
    delay = check_int("delay", delay, 0, MAX_DELAY)
    frame_stack = check_int("frame_stack", frame_stack, 1, MAX_FRAME_STACK)
    if delay:
        env = ObservationDelay(env, delay=delay, fill=delay_fill)
    std = np.asarray(noise_std, dtype=np.float64)
    if std.size == 0 or np.any(std != 0) or np.any(~np.isfinite(std)):
        env = GaussianObservationNoise(env, std=noise_std, seed=noise_seed)
    if prev_action or prev_reward:
        env = PreviousActionReward(env, action=bool(prev_action), reward=bool(prev_reward))
    if frame_stack > 1:
        _box_1d(env, "frame_stack")
        env = gym.wrappers.FlattenObservation(
            gym.wrappers.FrameStackObservation(env, frame_stack, padding_type="reset"))
    return env

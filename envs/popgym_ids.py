"""The POPGym memory tasks used by the RTU paper, behind ``POPGym-<Task>Easy-v0`` ids.

``popgym`` is an optional dependency (``pip install popgym``; it needs only numpy and gymnasium). The ids
are registered on ``import envs`` whether or not it is installed; ``gymnasium.make`` of one raises an
``ImportError`` that says ``pip install popgym`` when it is missing. Nothing here imports popgym until an
env is made.

Compared with popgym's own ids (``popgym-RepeatFirstEasy-v0`` etc., usable directly after
``import popgym``), ours differ only in the observation: popgym's ``Discrete`` / ``MultiDiscrete`` /
``Tuple`` observations are flattened to one-hot ``Box(0, 1, (d,), float32)`` vectors
(``gymnasium.spaces.flatten``), the observation type our agents take. Actions (all ``Discrete``),
rewards, terminations and episode lengths are popgym's. Option ``prev_action`` (default ``None``: only
for tasks that declare ``obs_requires_prev_action``, i.e. Concentration) appends the previous action as a
one-hot vector (:class:`envs.wrappers.PreviousActionReward` with ``reward=False``).

| id | popgym class | obs size (one-hot) | actions |
|---|---|---|---|
| ``POPGym-RepeatFirstEasy-v0`` | RepeatFirstEasy | 4 | Discrete(4) |
| ``POPGym-CountRecallEasy-v0`` | CountRecallEasy | 4 | Discrete(27) |
| ``POPGym-AutoencodeEasy-v0`` | AutoencodeEasy | 6 | Discrete(4) |
| ``POPGym-HigherLowerEasy-v0`` | HigherLowerEasy | 13 | Discrete(2) |
| ``POPGym-ConcentrationEasy-v0`` | ConcentrationEasy | 156 + 52 (previous action) | Discrete(52) |
"""
from __future__ import annotations

import copy
import importlib

import gymnasium as gym
import numpy as np
from gymnasium.utils import RecordConstructorArgs

from envs.errors import EnvConfigError, check_choice

__all__ = ["POPGYM_TASKS", "POPGYM_IDS", "OneHotObservation", "make_popgym", "register_popgym_envs"]

#: popgym class names exposed (the "Easy" level used by the RTU paper).
POPGYM_TASKS: tuple[str, ...] = (
    "RepeatFirstEasy",
    "CountRecallEasy",
    "AutoencodeEasy",
    "HigherLowerEasy",
    "ConcentrationEasy",
)
POPGYM_IDS: tuple[str, ...] = tuple(f"POPGym-{task}-v0" for task in POPGYM_TASKS)


class OneHotObservation(gym.ObservationWrapper, RecordConstructorArgs):
    """Flatten a Discrete / MultiDiscrete / Tuple / Box observation to a float32 Box (one-hot for the
    discrete parts), using ``gymnasium.spaces.flatten``. Output shape ``(flatdim,)``."""

    def __init__(self, env: gym.Env):
        RecordConstructorArgs.__init__(self)
        gym.ObservationWrapper.__init__(self, env)
        flat = gym.spaces.flatten_space(env.observation_space)
        if not isinstance(flat, gym.spaces.Box):
            raise EnvConfigError(f"cannot flatten observation space {env.observation_space} to a Box")
        self.observation_space = gym.spaces.Box(
            flat.low.astype(np.float32), flat.high.astype(np.float32), dtype=np.float32
        )

    # Some popgym envs return the same info dict on every call; hand out copies so callers may keep them.
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, info = super().reset(seed=seed, options=options)
        return obs, copy.deepcopy(info)

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        return obs, reward, terminated, truncated, copy.deepcopy(info)

    def observation(self, observation):
        return gym.spaces.flatten(self.env.observation_space, observation).astype(np.float32)


def _load_popgym_class(task: str):
    try:
        module = importlib.import_module("popgym.envs")
    except ImportError as e:
        raise ImportError(
            f"POPGym-{task}-v0 needs the optional 'popgym' package, which is not installed: "
            f"pip install popgym"
        ) from e
    return getattr(module, task)


def make_popgym(task: str, prev_action: bool | None = None) -> gym.Env:
    """Build popgym's ``task`` (one of :data:`POPGYM_TASKS`) with a one-hot Box observation."""
    from envs.wrappers import PreviousActionReward

    check_choice("task", task, POPGYM_TASKS)
    check_choice("prev_action", prev_action, (None, True, False))
    env = OneHotObservation(_load_popgym_class(task)())
    if prev_action is None:
        prev_action = bool(getattr(env.unwrapped, "obs_requires_prev_action", False))
    if prev_action:
        env = PreviousActionReward(env, action=True, reward=False)
    return env


def _entry(task: str, **kwargs) -> gym.Env:
    return make_popgym(task, **kwargs)


def register_popgym_envs() -> tuple[str, ...]:
    """Register :data:`POPGYM_IDS` (idempotent; needs no popgym until an env is made)."""
    for env_id, task in zip(POPGYM_IDS, POPGYM_TASKS):
        existing = gym.registry.get(env_id)
        if existing is not None and existing.entry_point == f"{__name__}:_entry":
            continue
        gym.register(id=env_id, entry_point=f"{__name__}:_entry", kwargs={"task": task})
    return POPGYM_IDS

"""Partially observable versions of gymnasium envs: ``<Name>-P-v5`` (positions/angles only) and
``<Name>-V-v5`` (velocities only), plus ``CartPole-P-v1`` and ``Pendulum-P-v1``.

The mask is an index list derived from the simulator's layout (:mod:`envs.masks`); the dropped entries are
removed, not zeroed, and the observation space keeps the base space's bounds and dtype at the kept indices.
Rewards, terminations, truncations, ``info`` and the action space are the base env's, unchanged.

Options (keyword arguments to ``gymnasium.make``) go to the base env. Two are checked here:

* ``include_cfrc_ext_in_observation`` (Ant): defaults to ``False`` in both Ant-P and Ant-V; ``True`` raises
  :class:`~envs.errors.MaskOptionError`. Contact forces are not positions, and MuJoCo computes them with a
  velocity-dependent constraint solver, so they would leak velocity information into -P; they are not
  velocities either, so -V would have to drop them and the option would do nothing. Use ``Ant-v5`` for them.
* ``exclude_current_positions_from_observation=False`` is allowed: the -P observation then also holds the
  root's x (and y for Ant, Swimmer) position, as the base env's observation does.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import load_env_creator
from gymnasium.utils import RecordConstructorArgs

from envs.errors import EnvConfigError, MaskOptionError
from envs.masks import (
    CLASSIC_BASES,
    KEEP_KINDS,
    MUJOCO_BASES,
    SUPPORTED_BASES,
    base_name,
    kept_segments,
    mask_indices,
    observation_layout,
)

__all__ = [
    "MaskObservation",
    "FreshBodyOffset",
    "make_masked",
    "masked_id",
    "register_masked_envs",
    "MASKED_MUJOCO_IDS",
    "MASKED_CLASSIC_IDS",
    "MASKED_IDS",
]

#: the -P/-V ids of the MuJoCo v5 bases, in :data:`envs.masks.MUJOCO_BASES` order, P before V.
MASKED_MUJOCO_IDS: tuple[str, ...] = tuple(f"{n}-{k}-v5" for n in MUJOCO_BASES for k in ("P", "V"))
#: the classic-control -P ids.
MASKED_CLASSIC_IDS: tuple[str, ...] = tuple(f"{n}-P-v1" for n in CLASSIC_BASES)
MASKED_IDS: tuple[str, ...] = MASKED_MUJOCO_IDS + MASKED_CLASSIC_IDS

# base name → options our registration sets (the caller's kwargs override them, then _check_options runs)
_DEFAULT_OPTIONS: dict[str, dict] = {"Ant": {"include_cfrc_ext_in_observation": False}}
_CFRC_REASON = (
    "contact forces (cfrc_ext) are neither positions nor velocities; MuJoCo's constraint solver makes them "
    "depend on the velocities, so they would leak velocity information into a -P observation, and a -V "
    "observation would drop them anyway. Allowed values: False (the default here). Use 'Ant-v5' to observe "
    "contact forces"
)


class MaskObservation(gym.ObservationWrapper, RecordConstructorArgs):
    """Keep only the observation entries at ``indices`` (1-D Box observations).

    Args:
        env: an env with a 1-D ``Box`` observation space of shape ``(n,)``.
        indices: distinct integers in ``[0, n)``; the output is ``obs[indices]`` in that order.
        labels: optional names of the kept entries, stored as ``self.labels``.

    The new space is ``Box(low[indices], high[indices], dtype=base dtype)``, shape ``(len(indices),)``.
    """

    def __init__(self, env: gym.Env, indices, labels=None):
        RecordConstructorArgs.__init__(self, indices=[int(i) for i in np.asarray(indices).ravel()], labels=labels)
        gym.ObservationWrapper.__init__(self, env)
        space = env.observation_space
        if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
            raise EnvConfigError(f"MaskObservation needs a 1-D Box observation space; got {space}")
        idx = np.asarray(indices)
        if idx.ndim != 1 or idx.size == 0 or not np.issubdtype(idx.dtype, np.integer):
            raise EnvConfigError(f"indices must be a non-empty 1-D integer sequence; got {indices!r}")
        n = space.shape[0]
        if idx.min() < 0 or idx.max() >= n or np.unique(idx).size != idx.size:
            raise EnvConfigError(f"indices must be distinct integers in [0, {n}); got {idx.tolist()}")
        self.indices = idx.astype(np.int64)
        self.labels = labels
        self.observation_space = gym.spaces.Box(
            low=space.low[self.indices], high=space.high[self.indices], dtype=space.dtype
        )

    def observation(self, observation):
        return np.asarray(observation)[self.indices]


class FreshBodyOffset(MaskObservation):
    """:class:`MaskObservation` that also overwrites ``out[offset_at : offset_at + 2]`` with
    ``(xpos[body_a] − xpos[body_b])[:2]`` computed by forward kinematics from the *current* ``qpos``.

    Used for Reacher-P: after ``mj_step`` MuJoCo's ``data.xpos`` holds the kinematics of the last
    integration stage, not of the final ``qpos``; the difference (≈1e-6 m) is a function of the velocities,
    so passing the base env's fingertip−target entries through would leak velocity information into a
    positions-only observation. The simulator's own ``data`` is not modified (a scratch ``MjData`` is used).
    """

    def __init__(self, env: gym.Env, indices, offset_at: int, body_a: str, body_b: str, labels=None):
        import mujoco  # imported here so that `import envs` stays light

        super().__init__(env, indices, labels=labels)
        # the parent recorded only its own arguments; record ours so the spec can rebuild this wrapper
        self._saved_kwargs = {
            "indices": self.indices.tolist(), "offset_at": offset_at, "body_a": body_a, "body_b": body_b,
            "labels": labels,
        }
        self._mujoco = mujoco
        self._model = env.unwrapped.model
        self._scratch = mujoco.MjData(self._model)
        self._offset_at = int(offset_at)
        self._bodies = (body_a, body_b)
        if not 0 <= self._offset_at <= self.indices.size - 2:
            raise EnvConfigError(f"offset_at must be in [0, {self.indices.size - 2}]; got {offset_at}")

    def observation(self, observation):
        out = np.array(np.asarray(observation)[self.indices], copy=True)
        self._scratch.qpos[:] = self.env.unwrapped.data.qpos
        self._mujoco.mj_kinematics(self._model, self._scratch)
        a, b = self._bodies
        diff = self._scratch.body(a).xpos - self._scratch.body(b).xpos
        out[self._offset_at : self._offset_at + 2] = diff[:2]
        return out


def masked_id(base_id: str, keep: str) -> str:
    """``("Hopper-v5", "P")`` → ``"Hopper-P-v5"``."""
    name = base_name(base_id)
    version = SUPPORTED_BASES[name].rsplit("-", 1)[1]
    return f"{name}-{keep}-{version}"


def _check_options(name: str, keep: str, kwargs: dict) -> None:
    if kwargs.get("include_cfrc_ext_in_observation", False):
        raise MaskOptionError(
            f"{name}-{keep}: include_cfrc_ext_in_observation="
            f"{kwargs['include_cfrc_ext_in_observation']!r} is not allowed: {_CFRC_REASON}"
        )


_WRAPPER_KEYS = ("delay", "delay_fill", "noise_std", "noise_seed", "prev_action", "prev_reward", "frame_stack")


def make_masked(base_id: str, keep: str, wrappers: dict | None = None, inner=None, **kwargs) -> gym.Env:
    """Build the base env ``base_id`` with ``kwargs`` (its registered kwargs overridden by ``kwargs``) and
    wrap it in :class:`MaskObservation` keeping the ``keep`` kind ("P": positions, "V": velocities).

    ``wrappers`` (optional dict, also accepted by ``gymnasium.make(id, wrappers={...})``) is passed to
    :func:`envs.wrappers.apply_wrappers` around the mask; keys: ``delay``, ``delay_fill``, ``noise_std``,
    ``noise_seed``, ``prev_action``, ``prev_reward``, ``frame_stack``. ``inner`` (optional): a callable
    wrapping the base env before the mask (``envs.nonstationary.ChangingDynamics``).

    The base env is built from its entry point (no TimeLimit or checker wrappers: ``gymnasium.make`` adds
    those around the masked env, using the base env's ``max_episode_steps``). ``env.unwrapped`` is the base
    simulator env, so ``env.unwrapped.data`` holds its qpos/qvel.
    """
    name = base_name(base_id)
    if keep not in KEEP_KINDS:
        raise EnvConfigError(f"keep must be one of {sorted(KEEP_KINDS)!r}; got {keep!r}")
    options = {**_DEFAULT_OPTIONS.get(name, {}), **kwargs}
    _check_options(name, keep, options)
    spec = gym.spec(base_id)
    creator = load_env_creator(spec.entry_point)
    env = creator(**{**spec.kwargs, **options})
    layout = observation_layout(base_id, env)
    if inner is not None:
        env = inner(env)
    idx = mask_indices(layout, keep)
    if idx.size == 0:
        raise EnvConfigError(f"{name}-{keep}: the layout {layout} has nothing of kind {KEEP_KINDS[keep]!r}")
    labels = []
    for seg in kept_segments(layout, keep):
        labels.extend(f"{seg.name}#{i}" for i in range(seg.size))
    if name == "Reacher" and keep == "P":
        at = labels.index("(fingertip - target)[:2]#0")
        wrapped = FreshBodyOffset(env, idx, offset_at=at, body_a="fingertip", body_b="target", labels=tuple(labels))
    else:
        wrapped = MaskObservation(env, idx, labels=tuple(labels))
    wrapped.layout = layout
    if wrappers:
        from envs.wrappers import apply_wrappers

        if not isinstance(wrappers, dict):
            raise EnvConfigError(f"wrappers must be a dict with keys from {list(_WRAPPER_KEYS)}; got {wrappers!r}")
        unknown = sorted(set(wrappers) - set(_WRAPPER_KEYS))
        if unknown:
            raise EnvConfigError(f"wrappers: unknown key(s) {unknown}; allowed keys are {list(_WRAPPER_KEYS)}")
        return apply_wrappers(wrapped, **wrappers)
    return wrapped


def _entry(base_id: str, keep: str, wrappers: dict | None = None, **kwargs) -> gym.Env:
    # The registered entry point: gymnasium.make passes the registered kwargs plus the caller's.
    return make_masked(base_id, keep, wrappers=wrappers, **kwargs)


def register_masked_envs() -> tuple[str, ...]:
    """Register every id in :data:`MASKED_IDS` (idempotent: an id already registered by us is left alone)."""
    for env_id in MASKED_IDS:
        name, keep, _ = env_id.split("-")
        base_id = SUPPORTED_BASES[name]
        existing = gym.registry.get(env_id)
        if existing is not None and existing.entry_point == f"{__name__}:_entry":
            continue
        base = gym.spec(base_id)
        gym.register(
            id=env_id,
            entry_point=f"{__name__}:_entry",
            max_episode_steps=base.max_episode_steps,
            reward_threshold=base.reward_threshold,
            kwargs={"base_id": base_id, "keep": keep, **_DEFAULT_OPTIONS.get(name, {})},
        )
    return MASKED_IDS

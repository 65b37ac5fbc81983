"""Registration of the memory diagnostics: ``TraceConditioning-v0``, ``CueRecall-v0``,
``CueRecallContinuous-v0``, ``DelayedCue-v0``, ``DelayedCueContinuous-v0``, ``HiddenVelocity-v0`` and its
full-information reference ``HiddenVelocityFull-v0`` (definitions in :mod:`envs.trace_conditioning`,
:mod:`envs.cue_recall`, :mod:`envs.delayed_cue` and :mod:`envs.hidden_velocity`).
Keyword arguments to ``gymnasium.make`` go to the env constructors."""
from __future__ import annotations

import gymnasium as gym

__all__ = ["DIAGNOSTIC_IDS", "register_diagnostic_envs"]

_ENTRIES = {  # id -> (entry point, default constructor kwargs)
    "TraceConditioning-v0": ("envs.trace_conditioning:TraceConditioning", {}),
    "CueRecall-v0": ("envs.cue_recall:CueRecall", {}),
    "CueRecallContinuous-v0": ("envs.cue_recall:CueRecallContinuous", {}),
    "DelayedCue-v0": ("envs.delayed_cue:DelayedCue", {}),
    "DelayedCueContinuous-v0": ("envs.delayed_cue:DelayedCueContinuous", {}),
    "HiddenVelocity-v0": ("envs.hidden_velocity:HiddenVelocity", {}),
    "HiddenVelocityFull-v0": ("envs.hidden_velocity:HiddenVelocity", {"observe_velocity": True}),
}
DIAGNOSTIC_IDS: tuple[str, ...] = tuple(_ENTRIES)


def register_diagnostic_envs() -> tuple[str, ...]:
    """Register :data:`DIAGNOSTIC_IDS` (idempotent). No time limits: trace conditioning is a continuing
    stream, a cue episode ends by itself after ``delay + 2`` steps and a hidden-velocity episode
    truncates itself after ``episode_steps``."""
    for env_id, (entry, kwargs) in _ENTRIES.items():
        existing = gym.registry.get(env_id)
        if existing is not None and existing.entry_point == entry and existing.kwargs == kwargs:
            continue
        gym.register(id=env_id, entry_point=entry, kwargs=dict(kwargs))
    return DIAGNOSTIC_IDS

"""Registration of the memory diagnostics: ``TraceConditioning-v0``, ``CueRecall-v0``,
``CueRecallContinuous-v0`` (definitions in :mod:`envs.trace_conditioning` and :mod:`envs.cue_recall`).
Keyword arguments to ``gymnasium.make`` go to the env constructors."""
from __future__ import annotations

import gymnasium as gym

__all__ = ["DIAGNOSTIC_IDS", "register_diagnostic_envs"]

_ENTRIES = {
    "TraceConditioning-v0": "envs.trace_conditioning:TraceConditioning",
    "CueRecall-v0": "envs.cue_recall:CueRecall",
    "CueRecallContinuous-v0": "envs.cue_recall:CueRecallContinuous",
}
DIAGNOSTIC_IDS: tuple[str, ...] = tuple(_ENTRIES)


def register_diagnostic_envs() -> tuple[str, ...]:
    """Register :data:`DIAGNOSTIC_IDS` (idempotent). No time limits: trace conditioning is a continuing
    stream, and a cue-recall episode ends by itself after ``delay + 2`` steps."""
    for env_id, entry in _ENTRIES.items():
        existing = gym.registry.get(env_id)
        if existing is not None and existing.entry_point == entry:
            continue
        gym.register(id=env_id, entry_point=entry)
    return DIAGNOSTIC_IDS

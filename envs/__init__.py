"""Environments for rtu-control, registered with gymnasium on ``import envs``:

* ``<Name>-P-v5`` / ``<Name>-V-v5`` (positions only / velocities only) for the MuJoCo v5 bases, and
  ``CartPole-P-v1``, ``Pendulum-P-v1`` — :mod:`envs.masked`, masks derived in :mod:`envs.masks`;
* observation wrappers (noise, delay, previous action/reward) — :mod:`envs.wrappers`;
* memory diagnostics ``TraceConditioning-v0``, ``CueRecall-v0``, ``CueRecallContinuous-v0``,
  ``DelayedCue-v0``, ``DelayedCueContinuous-v0``, ``HiddenVelocity-v0``, ``HiddenVelocityFull-v0`` —
  :mod:`envs.trace_conditioning`, :mod:`envs.cue_recall`, :mod:`envs.delayed_cue`,
  :mod:`envs.hidden_velocity`; returns and MSRE in :mod:`envs.returns`;
* robots whose dynamics change during a run: ``SlipperyAnt-v5``, ``SlipperyAnt-P-v5``,
  ``ChangingHalfCheetah-v5``, ``ChangingHalfCheetah-P-v5`` — :mod:`envs.nonstationary`,
  :mod:`envs.nonstationary_ids`;
* ``POPGym-<Task>Easy-v0`` through the optional ``popgym`` package — :mod:`envs.popgym_ids`.

See ``docs/envs.md`` for the id table. Importing this package is cheap and never imports torch,
matplotlib, ray or popgym. Registration is idempotent (re-importing or reloading is harmless).
"""
from envs.cue_recall import CueRecall, CueRecallContinuous
from envs.delayed_cue import DelayedCue, DelayedCueContinuous
from envs.diagnostics import DIAGNOSTIC_IDS, register_diagnostic_envs
from envs.errors import EnvConfigError, LayoutError, MaskOptionError, UnknownEnvError
from envs.hidden_velocity import HiddenVelocity
from envs.nonstationary import ChangingDynamics
from envs.nonstationary_ids import NONSTATIONARY_IDS, register_nonstationary_envs
from envs.masked import (
    MASKED_CLASSIC_IDS,
    MASKED_IDS,
    MASKED_MUJOCO_IDS,
    MaskObservation,
    make_masked,
    register_masked_envs,
)
from envs.popgym_ids import POPGYM_IDS, OneHotObservation, make_popgym, register_popgym_envs
from envs.returns import discounted_returns, msre
from envs.trace_conditioning import TraceConditioning
from envs.wrappers import GaussianObservationNoise, ObservationDelay, PreviousActionReward, apply_wrappers


def register_all() -> tuple[str, ...]:
    """Register every id of this package (idempotent) and return them."""
    return (register_masked_envs() + register_diagnostic_envs() + register_nonstationary_envs()
            + register_popgym_envs())


#: every id registered by this package, in table order.
ALL_IDS: tuple[str, ...] = register_all()

__all__ = [
    "ALL_IDS",
    "MASKED_IDS",
    "MASKED_MUJOCO_IDS",
    "MASKED_CLASSIC_IDS",
    "DIAGNOSTIC_IDS",
    "POPGYM_IDS",
    "NONSTATIONARY_IDS",
    "ChangingDynamics",
    "register_nonstationary_envs",
    "register_all",
    "register_masked_envs",
    "register_diagnostic_envs",
    "register_popgym_envs",
    "make_masked",
    "make_popgym",
    "MaskObservation",
    "OneHotObservation",
    "GaussianObservationNoise",
    "ObservationDelay",
    "PreviousActionReward",
    "apply_wrappers",
    "TraceConditioning",
    "CueRecall",
    "CueRecallContinuous",
    "DelayedCue",
    "DelayedCueContinuous",
    "HiddenVelocity",
    "discounted_returns",
    "msre",
    "EnvConfigError",
    "UnknownEnvError",
    "MaskOptionError",
    "LayoutError",
]

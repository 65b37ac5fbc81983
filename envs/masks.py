"""Observation layouts of the supported base envs, and the index masks derived from them.

A *layout* is the ordered list of :class:`Segment` s that make up a base env's flat observation vector.
It is read from the simulator, not typed by hand:

* HalfCheetah, Hopper, Walker2d, Ant, Swimmer, InvertedPendulum (MuJoCo v5): from the env's
  ``observation_structure`` dict (``{"skipped_qpos": k, "qpos": m, "qvel": n[, "cfrc_ext": c]}``), which
  already reflects ``exclude_current_positions_from_observation`` and ``include_cfrc_ext_in_observation``;
  ``skipped_qpos`` entries are not in the observation.
* InvertedDoublePendulum v5 (no ``observation_structure``): ``[qpos[:1], sin(qpos[1:]), cos(qpos[1:]),
  clip(qvel, ±10), clip(qfrc_constraint, ±10)[:1]]`` with sizes from ``model.nq`` and ``model.nv``.
* Reacher v5: ``[cos(qpos[:nu]), sin(qpos[:nu]), qpos[nu:], qvel[:nu], (fingertip − target)[:2]]`` with
  ``nu = model.nu`` actuated arm joints and the remaining ``nq − nu`` joints the target's x, y.
* CartPole v1: ``[x, x_dot, theta, theta_dot]``; Pendulum v1: ``[cos θ, sin θ, θ_dot]``.

Each segment has a *kind*: ``"position"`` (positions, angles and smooth functions of them such as cos/sin
or a fingertip−target vector), ``"velocity"`` (generalised velocities, possibly clipped by the base env),
or ``"force"`` (constraint or contact forces: neither, and dropped by both masks). A segment that is a
contiguous slice of ``data.qpos`` or ``data.qvel`` also says which (``source``, ``first``) and the bound
the base env clips it to (``clip``), so that a robot's sensor channels can be mapped onto it
(``hardware.tasks``). The sum of the segment
sizes is checked against the base observation space, so a layout that no longer matches (another
``xml_file``, a new env version) is an error rather than a silent wrong mask.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from envs.errors import EnvConfigError, LayoutError, UnknownEnvError

__all__ = [
    "POSITION",
    "VELOCITY",
    "FORCE",
    "Segment",
    "MUJOCO_BASES",
    "CLASSIC_BASES",
    "SUPPORTED_BASES",
    "KEEP_KINDS",
    "base_name",
    "observation_layout",
    "mask_indices",
    "kept_segments",
]

POSITION = "position"
VELOCITY = "velocity"
FORCE = "force"

#: MuJoCo v5 bases that get ``-P-v5`` and ``-V-v5`` ids.
MUJOCO_BASES: tuple[str, ...] = (
    "HalfCheetah",
    "Hopper",
    "Walker2d",
    "Ant",
    "Swimmer",
    "InvertedPendulum",
    "InvertedDoublePendulum",
    "Reacher",
)
#: classic-control bases that get a ``-P-v1`` id.
CLASSIC_BASES: tuple[str, ...] = ("CartPole", "Pendulum")
#: base name → the base gymnasium id that is masked.
SUPPORTED_BASES: dict[str, str] = {
    **{name: f"{name}-v5" for name in MUJOCO_BASES},
    **{name: f"{name}-v1" for name in CLASSIC_BASES},
}
#: mask letter → the segment kind it keeps.
KEEP_KINDS: dict[str, str] = {"P": POSITION, "V": VELOCITY}

# observation_structure key → kind. "skipped_qpos" is absent on purpose: those qpos are not observed.
_STRUCTURE_KINDS = {"qpos": POSITION, "qvel": VELOCITY, "cfrc_ext": FORCE}


@dataclass(frozen=True)
class Segment:
    """A contiguous block of the base observation.

    ``name`` says what the block holds (e.g. ``"qpos[2:]"``), ``size`` its length, ``kind`` one of
    :data:`POSITION`, :data:`VELOCITY`, :data:`FORCE`, ``start`` its first index in the base observation.
    ``source`` is ``"qpos"`` or ``"qvel"`` when the block is ``clip(data.<source>[first:first + size],
    -clip, clip)`` (``clip`` inf: not clipped), ``""`` when it is computed from them (sin, cos, forces).
    """

    name: str
    size: int
    kind: str
    start: int = 0
    source: str = ""
    first: int = 0
    clip: float = math.inf


def base_name(base_id: str) -> str:
    """``"Hopper-v5"`` → ``"Hopper"``; raises :class:`UnknownEnvError` for an unsupported base id."""
    if not isinstance(base_id, str):
        raise UnknownEnvError(f"base env id must be a string; got {base_id!r}")
    for name, supported_id in SUPPORTED_BASES.items():
        if base_id == supported_id:
            return name
    raise UnknownEnvError(
        f"unknown base env {base_id!r}: masks are defined for {sorted(SUPPORTED_BASES.values())!r}"
    )


# bases whose observation clips qvel to ±QVEL_CLIP (names only: the values are checked against data in the
# tests)
_CLIPPED_QVEL = {"Hopper", "Walker2d"}
#: the bound gymnasium v5 clips velocities to in Hopper, Walker2d and InvertedDoublePendulum
QVEL_CLIP = 10.0
_CLIPPED_QVEL_NAME = f"clip(qvel, -{QVEL_CLIP:g}, {QVEL_CLIP:g})"


def _structure_layout(structure: dict, clipped_qvel: bool = False) -> list[tuple]:
    out = []
    skipped = 0
    for key, size in structure.items():
        if key == "skipped_qpos":
            skipped = int(size)
            continue
        if key not in _STRUCTURE_KINDS:
            raise LayoutError(
                f"observation_structure has key {key!r}; known keys are "
                f"{sorted(['skipped_qpos', *_STRUCTURE_KINDS])!r}"
            )
        if key == "qpos":
            out.append((f"qpos[{skipped}:]" if skipped else "qpos", int(size), POSITION, "qpos", skipped))
        elif key == "qvel" and clipped_qvel:
            out.append((_CLIPPED_QVEL_NAME, int(size), VELOCITY, "qvel", 0, QVEL_CLIP))
        elif key == "qvel":
            out.append(("qvel", int(size), VELOCITY, "qvel", 0))
        else:
            out.append((key, int(size), _STRUCTURE_KINDS[key]))
    return out


def _raw_layout(name: str, env) -> list[tuple]:
    """(name, size, kind[, source, first[, clip]]) of each segment, in order."""
    u = env.unwrapped
    if name == "InvertedDoublePendulum":
        nq, nv = int(u.model.nq), int(u.model.nv)
        return [
            ("qpos[:1]", 1, POSITION, "qpos", 0),
            ("sin(qpos[1:])", nq - 1, POSITION),
            ("cos(qpos[1:])", nq - 1, POSITION),
            (_CLIPPED_QVEL_NAME, nv, VELOCITY, "qvel", 0, QVEL_CLIP),
            ("clip(qfrc_constraint, -10, 10)[:1]", 1, FORCE),
        ]
    if name == "Reacher":
        nq, nu = int(u.model.nq), int(u.model.nu)
        return [
            (f"cos(qpos[:{nu}])", nu, POSITION),
            (f"sin(qpos[:{nu}])", nu, POSITION),
            (f"qpos[{nu}:]", nq - nu, POSITION, "qpos", nu),
            (f"qvel[:{nu}]", nu, VELOCITY, "qvel", 0),
            ("(fingertip - target)[:2]", 2, POSITION),
        ]
    if name == "CartPole":
        return [("x", 1, POSITION), ("x_dot", 1, VELOCITY), ("theta", 1, POSITION), ("theta_dot", 1, VELOCITY)]
    if name == "Pendulum":
        return [("cos(theta)", 1, POSITION), ("sin(theta)", 1, POSITION), ("theta_dot", 1, VELOCITY)]
    structure = getattr(u, "observation_structure", None)
    if not isinstance(structure, dict):
        raise LayoutError(f"{name}: the base env has no observation_structure dict to derive a mask from")
    return _structure_layout(structure, clipped_qvel=name in _CLIPPED_QVEL)


def observation_layout(base_id: str, env) -> tuple[Segment, ...]:
    """The ordered segments of ``env``'s observation (``env`` made from ``base_id`` with its options).

    Raises :class:`LayoutError` if the segment sizes do not add up to the observation space's length.
    """
    name = base_name(base_id)
    segments = []
    start = 0
    for seg_name, size, kind, *source in _raw_layout(name, env):
        if size < 0:
            raise LayoutError(f"{base_id}: segment {seg_name!r} has negative size {size}")
        if size:
            segments.append(Segment(seg_name, size, kind, start, *source))
        start += size
    shape = env.observation_space.shape
    if shape is None or len(shape) != 1 or shape[0] != start:
        raise LayoutError(
            f"{base_id}: derived layout {[(s.name, s.size) for s in segments]} has {start} values but the "
            f"observation space has shape {shape}; expected ({start},)"
        )
    return tuple(segments)


def mask_indices(layout, keep: str) -> np.ndarray:
    """Indices (int64, ascending) into the base observation of the segments of kind ``KEEP_KINDS[keep]``."""
    if keep not in KEEP_KINDS:
        raise EnvConfigError(f"keep must be one of {sorted(KEEP_KINDS)!r}; got {keep!r}")
    kind = KEEP_KINDS[keep]
    parts = [np.arange(s.start, s.start + s.size, dtype=np.int64) for s in layout if s.kind == kind]
    if not parts:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate(parts)


def kept_segments(layout, keep: str) -> tuple[Segment, ...]:
    """The segments that :func:`mask_indices` keeps, in order."""
    kind = KEEP_KINDS[keep]
    return tuple(s for s in layout if s.kind == kind)

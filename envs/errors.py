"""Errors raised by the ``envs`` package and the small validators that raise them.

Every error derives from ``controller.errors.ConfigError``, a ``ValueError`` (so ``except ValueError``
keeps working), and the validators word their messages as the rest of the project does:
"<where>: expected <what>, found <value>".
"""
from __future__ import annotations

import math
import numbers

from controller.errors import ConfigError, message

__all__ = [
    "EnvConfigError",
    "UnknownEnvError",
    "MaskOptionError",
    "LayoutError",
    "check_int",
    "check_float",
    "check_choice",
    "check_int_range",
    "check_env_id",
]


class EnvConfigError(ConfigError):
    """A parameter of an environment or wrapper is out of range or of the wrong type."""


class UnknownEnvError(EnvConfigError):
    """A base environment id that the masking helpers do not know how to mask."""


class MaskOptionError(EnvConfigError):
    """A base-env option that would put data other than the kept kind (e.g. velocities) into a masked observation."""


class LayoutError(EnvConfigError):
    """The base env's observation does not match the layout derived from its simulator (e.g. a custom xml_file)."""


def _key(name, where):
    """'<where>.<name>', or the name alone without a where."""
    return f"{where}.{name}" if where else name


def check_int(name: str, value, low: int, high: int | None = None, where: str = "") -> int:
    """Return ``value`` as an int if it is an integer in ``[low, high]`` (``high=None``: no upper bound)."""
    key = _key(name, where)
    allowed = f"an integer in [{low}, {high}]" if high is not None else f"an integer >= {low}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise EnvConfigError(message(key, allowed, f"{value!r} of type {type(value).__name__}"))
    value = int(value)
    if value < low or (high is not None and value > high):
        raise EnvConfigError(message(key, allowed, value))
    return value


def check_float(
    name: str,
    value,
    low: float,
    high: float,
    *,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
    where: str = "",
) -> float:
    """Return ``value`` as a finite float in the interval given (bounds inclusive unless told otherwise)."""
    key = _key(name, where)
    lo_br = "[" if low_inclusive else "("
    hi_br = "]" if high_inclusive else ")"
    allowed = f"a finite number in {lo_br}{low}, {high}{hi_br}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise EnvConfigError(message(key, allowed, f"{value!r} of type {type(value).__name__}"))
    value = float(value)
    ok = math.isfinite(value)
    ok = ok and (value >= low if low_inclusive else value > low)
    ok = ok and (value <= high if high_inclusive else value < high)
    if not ok:
        raise EnvConfigError(message(key, allowed, repr(value)))
    return value


def check_choice(name: str, value, allowed, where: str = ""):
    """Return ``value`` if it is one of ``allowed``."""
    if value not in tuple(allowed):
        raise EnvConfigError(message(_key(name, where), f"one of {list(allowed)!r}", repr(value)))
    return value


def check_int_range(name: str, value, low: int, high: int, where: str = "") -> tuple[int, int]:
    """Return an inclusive ``(lo, hi)`` range from an integer (``lo = hi``) or a pair with
    ``low <= lo <= hi <= high``."""
    key = _key(name, where)
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise EnvConfigError(message(key, "an integer or a (low, high) pair", repr(value)))
        lo = check_int(f"{name}[0]", value[0], low, high, where)
        hi = check_int(f"{name}[1]", value[1], low, high, where)
        if lo > hi:
            raise EnvConfigError(message(key, "a (low, high) pair with low <= high", repr(value)))
        return lo, hi
    v = check_int(name, value, low, high, where)
    return v, v


def check_env_id(env_id, key: str) -> str:
    """Return ``env_id`` if it is a registered gymnasium id (this package's ids are registered by
    importing ``envs``); otherwise raise ``EnvConfigError`` naming ``key``. Only the registry is read:
    nothing is built."""
    import gymnasium

    import envs  # noqa: F401  (registers the -P / -V and diagnostic ids)
    try:
        gymnasium.spec(env_id)
    except gymnasium.error.Error as err:
        raise EnvConfigError(message(key, "a registered gymnasium id (e.g. HalfCheetah-P-v5, CartPole-P-v1)",
                                     f"{env_id!r} ({err})")) from None
    return env_id

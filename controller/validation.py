"""Checks at the Python boundary of the cells, in the project's one error vocabulary
(``controller.errors``): "<where>: expected <what>, found <value>". Constructor arguments raise
``ConfigError`` (a ``ValueError``); per-call inputs raise ``ValueError``, or ``TypeError`` for a wrong
type or dtype."""
import numpy as np

from controller.errors import ConfigError, message
from controller.kernels.checks import first_non_finite

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def as_float_dtype(dtype, where):
    """np.dtype of float32 or float64, or ConfigError naming `where` and the value given."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt not in FLOAT_DTYPES:
        raise ConfigError(message(f"{where}.dtype", "float32 or float64", repr(dtype)))
    return dt


def positive_int(value, where):
    """int(value) for a positive integer (not a bool), or ConfigError naming `where` and the value."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(message(where, "a positive integer", repr(value)))
    return int(value)


def choice(value, allowed, where):
    """The code for `value` in the mapping `allowed`, or ConfigError listing the allowed names."""
    if value not in allowed:
        raise ConfigError(message(where, f"one of {sorted(allowed)}", repr(value)))
    return allowed[value]


def check_vector(x, length, dtype, name, owner):
    """Validate a 1-D input vector for a kernel; raise naming `owner` and `name` ("<owner>.<name>").

    x must be a C-contiguous np.ndarray of shape (length,) and exactly `dtype` (no silent casts on the
    real-time path: convert once, e.g. ``x.astype(np.float32)``), with only finite values.
    """
    where = f"{owner}.{name}"
    if not isinstance(x, np.ndarray):
        raise TypeError(message(where, f"a numpy array of shape ({length},) and dtype {dtype}",
                                type(x).__name__))
    if x.shape != (length,):
        raise ValueError(message(where, f"shape ({length},)", x.shape))
    if x.dtype != dtype:
        raise TypeError(message(where, f"dtype {dtype} (convert once with .astype(np.{dtype}))", x.dtype))
    if not x.flags.c_contiguous:
        raise ValueError(message(where, "a C-contiguous array (use np.ascontiguousarray)",
                                 "a strided view"))
    bad = first_non_finite(x)
    if bad >= 0:
        raise ValueError(message(where, "finite values", f"{name}[{bad}] = {x[bad]}"))

"""Checks at the Python boundary of the cells: one place that says what was expected and what was given."""
import numpy as np

from controller.kernels.checks import first_non_finite

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def as_float_dtype(dtype, where):
    """np.dtype of float32 or float64, or ValueError naming `where` and the value given."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt not in FLOAT_DTYPES:
        raise ValueError(f"{where}: dtype must be float32 or float64, got {dtype!r}")
    return dt


def positive_int(value, where):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{where} must be a positive integer, got {value!r}")
    return int(value)


def choice(value, allowed, where):
    """The code for `value` in the mapping `allowed`, or ValueError listing the allowed names."""
    if value not in allowed:
        raise ValueError(f"{where} must be one of {sorted(allowed)}, got {value!r}")
    return allowed[value]


def check_vector(x, length, dtype, name, owner):
    """Validate a 1-D input vector for a kernel; raise naming `owner` and `name`.

    x must be a C-contiguous np.ndarray of shape (length,) and exactly `dtype` (no silent casts on the
    real-time path: convert once, e.g. ``x.astype(np.float32)``), with only finite values.
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{owner}: {name} must be a numpy array of shape ({length},) and dtype "
                        f"{dtype}, got {type(x).__name__}")
    if x.shape != (length,):
        raise ValueError(f"{owner}: {name} must have shape ({length},), got {x.shape}")
    if x.dtype != dtype:
        raise TypeError(f"{owner}: {name} must have dtype {dtype}, got {x.dtype} "
                        f"(convert once with .astype(np.{dtype}))")
    if not x.flags.c_contiguous:
        raise ValueError(f"{owner}: {name} must be C-contiguous (use np.ascontiguousarray)")
    bad = first_non_finite(x)
    if bad >= 0:
        raise ValueError(f"{owner}: {name}[{bad}] is {x[bad]}; all values must be finite")

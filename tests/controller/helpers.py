"""Helpers for the cell tests: copy parameters between cells and the reference twins."""
import numpy as np


def params_of(cell, dtype=np.float64):
    """Copies of the cell's parameters in their public (n, d) orientation, as C-contiguous arrays."""
    return {k: np.array(v, dtype=dtype, order="C") for k, v in cell.params.items()}


def load_params(cell, params):
    """Write params (same keys) into the cell's live arrays."""
    for k, v in params.items():
        cell.params[k][...] = v


def rel_err(a, b):
    """max |a - b| / max(|b|, tiny): one number for 'agree to this relative precision'."""
    a = np.asarray(a)
    b = np.asarray(b)  # real or complex; float32 inputs are promoted by the subtraction below
    if b.dtype == np.float32:
        b = b.astype(np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))

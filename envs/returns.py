"""Discounted returns and the mean squared return error (MSRE) used to score predictions.

Convention (the same as the envs' ``step``): ``cumulants[t]`` is the cumulant (reward) returned by the
step taken *after* observation ``t``, i.e. c_{t+1} in the usual notation, so

    G[t] = Σ_{k ≥ 0} γ^k · cumulants[t + k]  =  cumulants[t] + γ · G[t + 1],

with ``G[T] = bootstrap`` past the end of the array (0 by default, i.e. the stream is cut off there).
"""
from __future__ import annotations

import numpy as np

from envs.errors import EnvConfigError, check_float

__all__ = ["discounted_returns", "msre"]


def discounted_returns(cumulants, gamma: float, bootstrap: float = 0.0) -> np.ndarray:
    """G[t] for every t of a 1-D cumulant array (float64, same length). ``gamma`` in [0, 1]."""
    gamma = check_float("gamma", gamma, 0.0, 1.0)
    c = np.asarray(cumulants, dtype=np.float64)
    if c.ndim != 1:
        raise EnvConfigError(f"cumulants must be 1-D; got shape {c.shape}")
    out = np.empty_like(c)
    g = float(bootstrap)
    for t in range(c.size - 1, -1, -1):
        g = c[t] + gamma * g
        out[t] = g
    return out


def msre(predictions, returns) -> float:
    """Mean squared return error: mean over t of (prediction[t] − G[t])²; arrays of equal length."""
    p = np.asarray(predictions, dtype=np.float64)
    g = np.asarray(returns, dtype=np.float64)
    if p.shape != g.shape:
        raise EnvConfigError(f"predictions and returns must have the same shape; got {p.shape} and {g.shape}")
    return float(np.mean((p - g) ** 2))

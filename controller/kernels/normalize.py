"""Online observation normalisation: per-feature Welford mean and variance (design.md §3.5).

``stats``: (1 + 2d,) float64 = [count, mean (d), M2 (d)], owned by ``controller.agent``. The statistics
are updated with x before x is normalised, as streaming deep RL does; the variance is the sample variance
M2 / (count - 1) (1 until two samples were seen). Compiled without fastmath: the finiteness test must be
reliable (design.md §6 item 5). No separate twin (the textbook Welford recurrence); exercised by every
agent test.
"""
import math

import numpy as np

from controller.kernels.jit import exact

NORM_EPS = 1e-8


@exact
def normalize_observation(x, stats, out, update):
    """out = (x - mean) / sqrt(var + 1e-8), updating the statistics first if ``update``.

    x: (d,) float32/float64 in; stats: (1 + 2d,) float64 in/out; out: (d,) float32/float64 out.
    Returns the index of the first non-finite value of x (then nothing is updated or written), else -1.
    """
    d = x.shape[0]
    for i in range(d):
        if not math.isfinite(x[i]):
            return i
    if update:
        count = stats[0] + 1.0
        stats[0] = count
        for i in range(d):
            v = np.float64(x[i])
            delta = v - stats[1 + i]
            stats[1 + i] += delta / count
            stats[1 + d + i] += delta * (v - stats[1 + i])
    count = stats[0]
    for i in range(d):
        var = stats[1 + d + i] / (count - 1.0) if count >= 2.0 else 1.0
        out[i] = (np.float64(x[i]) - stats[1 + i]) / math.sqrt(var + NORM_EPS)
    return -1

"""Input guards for the checked front doors. Deliberately compiled without fastmath, where `x != x`
and the finiteness test are reliable (design.md §6 item 5)."""
import math

from controller.kernels.jit import exact


@exact
def first_non_finite(x):
    """Index of the first NaN or +-inf in x: (m,) float array, or -1 if every value is finite."""
    for i in range(x.shape[0]):
        if not math.isfinite(x[i]):
            return i
    return -1

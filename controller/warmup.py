"""Compile every cell kernel before a run (DESIGN §6 item 6: numba's cache is per machine).

``warm_up_cells()`` builds tiny cells of every variant, activation and dtype and calls each of their
methods once, so that the first real tick finds the machine code ready (from numba's on-disk cache
after the first run on this machine). Returns the number of cell configurations compiled.
"""
import time

import numpy as np

from controller.cells import LRUCell, RTUCell
from controller.kernels.layout import ACTIVATIONS, VARIANTS


def _exercise(cell):
    x = np.zeros(cell.n_in, cell.dtype)
    dy = np.zeros(cell.n_out, cell.dtype)
    cell.step(x)
    cell.grad(dy, with_input_grad=True)
    cell.grad(dy, with_input_grad=False)
    cell.step_grad(x, dy)
    cell.forward(x)
    cell.traces_grad(x, dy)
    cell.refresh_coefficients()
    cell.reset()


def warm_up_cells(dtypes=(np.float32, np.float64)):
    """Compile all RTU and LRU kernels for the given dtypes. Returns (configurations, seconds)."""
    start = time.perf_counter()
    count = 0
    for dtype in dtypes:
        for variant in VARIANTS:
            for activation in ACTIVATIONS:
                _exercise(RTUCell(2, 2, variant=variant, activation=activation, dtype=dtype))
                count += 1
        _exercise(LRUCell(2, 2, dtype=dtype))
        count += 1
    return count, time.perf_counter() - start

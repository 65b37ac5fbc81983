"""The code numba compiles in a process and the code a later process loads from numba's on-disk cache
give the same bits (design.md §6 item 6: the cache is how every run after the first starts).

A kernel once rounded differently in the two cases (a loop-invariant branch inside a vectorised loop),
so that a run resumed from a checkpoint no longer matched the uninterrupted one. Each case runs twice in
fresh processes sharing one empty cache directory: the first compiles and writes the cache, the second
loads it; their final arrays must be equal bit for bit.
"""
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from tests import background

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import sys
import numpy as np
from controller.cells import LRUCell, RTUCell

out = {}
rng = np.random.default_rng(0)
for n in (8, 33):
    cells = {"linear": RTUCell(16, n, variant="linear", dtype=np.float32, seed=1),
             "nonlinear": RTUCell(16, n, variant="nonlinear", dtype=np.float32, seed=1),
             "linear64": RTUCell(16, n, variant="linear", dtype=np.float64, seed=1),
             "linear_relu": RTUCell(16, n, variant="linear", activation="relu", dtype=np.float32, seed=1),
             "nonlinear_identity": RTUCell(16, n, variant="nonlinear", activation="identity",
                                           dtype=np.float32, seed=1),
             "lru": LRUCell(16, n, dtype=np.float32, seed=1)}
    for name, cell in cells.items():
        for t in range(30):
            x = rng.normal(size=cell.n_in).astype(cell.dtype)
            dy = rng.normal(size=cell.n_out).astype(cell.dtype)
            if t % 2:
                cell.step_grad(x, dy, with_input_grad=True)
            else:
                cell.forward(x)
                cell.traces_grad(x, dy, with_input_grad=True)
        for key in ("vec", "mat", "dx"):
            out[f"{name}_{n}_{key}"] = getattr(cell, key)
np.savez(sys.argv[1], **out)
"""


def _run(cache_dir, result):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir),
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    subprocess.run([sys.executable, "-c", SCRIPT, str(result)], cwd=ROOT, env=env, check=True,
                   capture_output=True, text=True)
    with np.load(result) as z:
        return {k: z[k] for k in z.files}


def _compiled_then_loaded():
    """(arrays of the compiling process, whether it wrote cache entries, arrays of the loading one)."""
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "numba_cache"
        compiled = _run(cache, Path(tmp) / "compiled.npz")
        wrote = any(cache.rglob("*.nbc"))
        return compiled, wrote, _run(cache, Path(tmp) / "loaded.npz")


RUNS = background.Job("compiled and cache-loaded cells", _compiled_then_loaded)


def start_background(items):
    background.submit_if_selected(items, "test_compiled_and_cache_loaded_kernels_give_the_same_bits", RUNS)


def test_compiled_and_cache_loaded_kernels_give_the_same_bits():
    compiled, wrote, loaded = RUNS.wait()
    assert wrote, "the first process wrote no cache entries"
    assert sorted(compiled) == sorted(loaded)
    differing = [k for k in compiled if not np.array_equal(compiled[k], loaded[k], equal_nan=True)]
    assert differing == []

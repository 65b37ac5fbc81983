"""`rtu-control bench`: per-step latency of the recurrent cells, side by side with references.

For each size of design.md §4.7 (paper, small, large), dtype and cell (linear RTU, non-linear RTU, LRU) it
times, call by call from Python after a warm-up:

* ``step+grad``: one fused call of forward + RTRL trace update + gradient contraction
  (``cell.step_grad_unchecked``), the per-step cost of learning a recurrent layer online;
* ``forward``: the forward alone (``cell.forward_unchecked``), the action path;

and in the same process the NumPy reference step of the same cell (forward + traces + gradient with
whole-array NumPy operations: ``controller.reference.NumpyRTUStep``, the same algorithm as the kernel;
for the LRU the complex NumPy twins) and, when torch is installed, a torch GRU of the same input and hidden
width trained every step with truncated BPTT (T = 1 and 8; SGD step included; one torch thread).
The RTU/LRU input width d is the encoder width of the size (paper 64, small 32, large 128); the LRU reads
out m = n features.

Prints a table (median, p90, p99 in microseconds, and the speed-up of the median over the NumPy reference
of the same size and dtype) and writes everything, with the machine description, to JSON.
"""
import contextlib
import dataclasses
import gc
import json
import os
import platform
import sys
import time
from collections import deque
from pathlib import Path
from typing import Literal

import numpy as np

from controller import reference as ref
from controller.cells import LRUCell, RTUCell
from controller.config import ConfigError, check, check_output_path

SIZES = {  # design.md §4.7: (RTU input width d = encoder width, units n)
    "paper": (64, 192),
    "small": (32, 32),
    "large": (128, 512),
}
CELLS = ("rtu-linear", "rtu-nonlinear", "lru")


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    """What `rtu-control bench` measures. Every field can be set in YAML or with --set key=value."""
    calls: int = 10_000                 # timed calls per cell case (after warm-up)
    warmup_calls: int = 1_000           # untimed calls before timing
    sizes: tuple[Literal["paper", "small", "large"], ...] = ("paper", "small", "large")
    dtypes: tuple[Literal["float32", "float64"], ...] = ("float32", "float64")
    cells: tuple[Literal["rtu-linear", "rtu-nonlinear", "lru"], ...] = CELLS
    activation: Literal["tanh", "relu", "identity"] = "tanh"
    numpy_reference: bool = True
    numpy_calls: int = 2_000            # timed calls of the NumPy reference step
    torch_gru: bool = True              # skipped with a note when torch is not installed
    torch_truncations: tuple[int, ...] = (1, 8)
    torch_calls: int = 1_000
    seed: int = 0
    output: str = "results/bench.json"

    def __post_init__(self):
        for name in ("calls", "numpy_calls", "torch_calls"):
            check(getattr(self, name) >= 100, name, "an integer >= 100", getattr(self, name))
        check(self.warmup_calls >= 1, "warmup_calls", "an integer >= 1", self.warmup_calls)
        check(len(self.sizes) > 0, "sizes", "at least one of paper, small, large", self.sizes)
        check(len(self.dtypes) > 0, "dtypes", "at least one of float32, float64", self.dtypes)
        check(len(self.cells) > 0, "cells", f"at least one of {', '.join(CELLS)}", self.cells)
        check(all(t >= 1 for t in self.torch_truncations), "torch_truncations",
              "integers >= 1", self.torch_truncations)
        check(self.seed >= 0, "seed", "an integer >= 0", self.seed)
        check(self.output != "", "output", "a file path for the results (JSON)", self.output)
        check_output_path(self.output, "output", "file")


# ----------------------------------------------------------------------------- timing
@contextlib.contextmanager
def gc_paused():
    """Python's garbage collector off inside the block (a collection is not the code being timed),
    restored on exit to what it was."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def time_calls(fn, calls, warmup, between=None):
    """Per-call wall times in microseconds (np.ndarray (calls,)) of fn(), after warmup calls. between
    (optional, untimed) is called after every call of fn, warm-up included."""
    for _ in range(warmup):
        fn()
        if between is not None:
            between()
    times = np.empty(calls)
    clock = time.perf_counter_ns
    with gc_paused():
        for i in range(calls):
            t0 = clock()
            fn()
            times[i] = clock() - t0
            if between is not None:
                between()
    return times / 1e3


def summarize(times):
    return {"median_us": float(np.median(times)), "p90_us": float(np.percentile(times, 90)),
            "p99_us": float(np.percentile(times, 99)), "calls": int(times.size)}


# ----------------------------------------------------------------------------- cases
def make_cell(kind, d, n, dtype, activation, seed):
    if kind == "lru":
        return LRUCell(d, n, n_out=n, dtype=dtype, seed=seed)
    variant = kind.split("-", 1)[1]
    return RTUCell(d, n, variant=variant, activation=activation, dtype=dtype, seed=seed)


def _inputs(cell, rng):
    x = rng.normal(size=cell.n_in).astype(cell.dtype)
    dy = (0.01 * rng.normal(size=cell.n_out)).astype(cell.dtype)
    return x, dy


def bench_cell(kind, d, n, dtype, cfg, rng):
    cell = make_cell(kind, d, n, dtype, cfg.activation, cfg.seed)
    x, dy = _inputs(cell, rng)
    out = {}
    step_grad = cell.step_grad_unchecked
    out["step+grad"] = summarize(time_calls(lambda: step_grad(x, dy), cfg.calls, cfg.warmup_calls))
    forward = cell.forward_unchecked
    out["forward"] = summarize(time_calls(lambda: forward(x), cfg.calls, cfg.warmup_calls))
    if not np.isfinite(cell.y).all():
        raise RuntimeError(f"bench {kind} {d}x{n} {dtype.__name__}: non-finite output")
    return out


def bench_numpy_reference(kind, d, n, dtype, cfg, rng):
    """The same step (forward + traces + gradient) with the NumPy twins of controller.reference."""
    cell = make_cell(kind, d, n, dtype, cfg.activation, cfg.seed)
    params = {k: np.array(v, dtype=dtype, order="C") for k, v in cell.params.items()}
    x, dy = _inputs(cell, rng)
    if kind == "lru":
        st = ref.lru_reference_state(n, d)

        def step():
            ref.lru_step_reference(params, st, x)
            ref.lru_grad_reference(params, st, dy)
    else:
        variant = kind.split("-", 1)[1]
        numpy_step = ref.NumpyRTUStep(params, variant, cfg.activation, dtype)

        def step():
            numpy_step.step_grad(x, dy)
    return summarize(time_calls(step, cfg.numpy_calls, min(cfg.warmup_calls, 100)))


def bench_torch_gru(d, n, truncation, cfg, rng):
    """torch.nn.GRU(d -> n), float32, trained every step by truncated BPTT over the last T inputs."""
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(cfg.seed)
    gru = torch.nn.GRU(d, n)
    opt = torch.optim.SGD(gru.parameters(), lr=1e-4)
    inputs = deque(maxlen=truncation)
    starts = deque(maxlen=truncation)       # hidden state before each input in the window
    h = torch.zeros(1, 1, n)
    x = torch.tensor(rng.normal(size=(1, d)), dtype=torch.float32)
    dy = torch.tensor(0.01 * rng.normal(size=n), dtype=torch.float32)

    def step():
        nonlocal h
        inputs.append(x)
        starts.append(h)
        out, _ = gru(torch.stack(tuple(inputs)), starts[0])
        loss = (out[-1, 0] * dy).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        h = out[-1:].detach()

    return summarize(time_calls(step, cfg.torch_calls, min(cfg.warmup_calls, 50)))


# ----------------------------------------------------------------------------- report
def machine_info():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import numba

    return {"cpu": cpu, "machine": platform.machine(), "cores": os.cpu_count(),
            "python": platform.python_version(), "numpy": np.__version__,
            "numba": numba.__version__, "platform": platform.platform()}


def format_table(rows):
    """rows: list of dicts with case, size, dtype, median_us, p90_us, p99_us, calls, speedup."""
    width = max([40] + [len(r["case"]) + 2 for r in rows])
    head = (f"{'case':<{width}}{'size':<7}{'dtype':<9}{'median µs':>10}{'p90 µs':>10}{'p99 µs':>10}"
            f"{'calls':>8}{'× numpy':>9}")
    lines = [head, "-" * len(head)]
    for r in rows:
        speed = f"{r['speedup']:.1f}" if r.get("speedup") else ""
        lines.append(f"{r['case']:<{width}}{r['size']:<7}{r['dtype']:<9}{r['median_us']:>10.2f}"
                     f"{r['p90_us']:>10.2f}{r['p99_us']:>10.2f}{r['calls']:>8}{speed:>9}")
    return "\n".join(lines)


def write_json(path, obj):
    """Write obj as indented JSON to path (parents created) through a temporary file and a rename, so
    a reader never sees half a file. Returns the Path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2))
    tmp.replace(path)
    return path


def run(cfg, echo=print):
    """Run the benchmark described by cfg; returns the result dict (also written to cfg.output)."""
    rng = np.random.default_rng(cfg.seed)
    torch_note = None
    if cfg.torch_gru:
        try:
            import torch  # noqa: F401
        except ImportError:
            torch_note = "torch not installed: GRU reference skipped (pip install 'rtu-control[test]')"
    rows = []
    for size in cfg.sizes:
        d, n = SIZES[size]
        for dtype_name in cfg.dtypes:
            dtype = np.dtype(dtype_name).type
            for kind in cfg.cells:
                echo(f"  timing {kind:<14} {size:<6} {dtype_name} (d={d}, n={n}) ...")
                numpy_median = None
                if cfg.numpy_reference:
                    s = bench_numpy_reference(kind, d, n, dtype, cfg, rng)
                    numpy_median = s["median_us"]
                    rows.append({"case": f"{kind} numpy reference step+grad", "size": size,
                                 "dtype": dtype_name, "d": d, "n": n, **s, "speedup": None})
                for mode, s in bench_cell(kind, d, n, dtype, cfg, rng).items():
                    speed = numpy_median / s["median_us"] if numpy_median and mode == "step+grad" else None
                    rows.append({"case": f"{kind} {mode}", "size": size, "dtype": dtype_name,
                                 "d": d, "n": n, **s, "speedup": speed})
        if cfg.torch_gru and torch_note is None:
            for trunc in cfg.torch_truncations:
                echo(f"  timing torch GRU T={trunc} {size} float32 ...")
                s = bench_torch_gru(d, n, trunc, cfg, rng)
                rows.append({"case": f"torch GRU TBPTT T={trunc} (train step)", "size": size,
                             "dtype": "float32", "d": d, "n": n, **s, "speedup": None})
    result = {"config": dataclasses.asdict(cfg), "machine": machine_info(), "rows": rows,
              "notes": [torch_note] if torch_note else [],
              "command": " ".join(["rtu-control"] + sys.argv[1:]) if sys.argv else "rtu-control bench"}
    table = format_table(rows)
    echo("")
    echo(table)
    if torch_note:
        echo(torch_note)
    path = write_json(cfg.output, result)
    echo(f"\nwrote {path}")
    return result


__all__ = ["BenchConfig", "ConfigError", "SIZES", "format_table", "run", "time_calls"]

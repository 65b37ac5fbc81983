#!/usr/bin/env python3
"""Compare the x86-64 and the emulated aarch64 runs of .ci/aarch64/run (docs/aarch64.md).

    python .ci/aarch64/compare.py X86_DIR ARM_DIR [--rtol R] [--atol A]

Each DIR holds the results folders of one side:
  train/         'rtu-control train', 2,000 steps (a)
  train_short/   the same train stopped at 20 steps, a checkpoint every 5 steps (a')
  deploy_sim/    <task>-<mask>-<stamp>/: a frozen deploy of that side's own train/ agent, adapter sim,
                 600 ticks, 200-step episodes (b)
  deploy_short/  <task>-<mask>-<stamp>/: a frozen deploy of ONE agent (the aarch64 train/ agent on both
                 sides), adapter sim, 100 ticks, 10-step episodes (b')

Checks (exit status 1 when any fails, 2 on missing files):
* exact, every run: episode count and lengths, the agent's step/update/episode counters and RNG state,
  the exploration-noise array;
* within tolerance, the short horizons: the learner arrays (actor.*, critic.*, obs_stats, x, x_next,
  action) of every train_short checkpoint; the deploy_short episode returns and final learner arrays.
* information only: the returns and final learner arrays of the 2,000-step train and of the 600-tick
  deploy. Both sides start bit-identical, differ by ~1e-6 relative after the first updates (numba/LLVM
  contract a*b+c into fused multiply-adds on aarch64, not on x86-64's baseline target), and the closed
  loop of policy, learning and HalfCheetah's contact dynamics amplifies that about tenfold every 10
  steps, to O(1) after ~60 steps: the long runs are different trajectories, not a tolerance question.

Relative difference of two arrays a, b: max|a - b| / max(max|a|, max|b|) (0 when both are zero).
Returns pass when |a - b| <= atol + rtol * max(|a|, |b|); atol covers monitor.csv's 6 decimals.
Needs numpy and the installed package (controller.checkpoint.load_arrays).
"""
import argparse
import csv
import glob
import os
import sys

import numpy as np

from controller.checkpoint import load_arrays

LEARNER_PREFIXES = ("actor.", "critic.")
LEARNER_NAMES = ("obs_stats", "x", "x_next", "action")
EXACT_NAMES = ("noise",)


def is_learner(name):
    return name.startswith(LEARNER_PREFIXES) or name in LEARNER_NAMES


def rel_diff(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return float("inf")
    if a.size == 0:
        return 0.0
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return 0.0 if np.array_equal(a, b, equal_nan=True) else float("inf")
    scale = max(float(np.max(np.abs(a))), float(np.max(np.abs(b))))
    return 0.0 if scale == 0.0 else float(np.max(np.abs(a - b))) / scale


def read_monitor(path):
    with open(path, newline="") as f:
        records = list(csv.DictReader(line for line in f if not line.startswith("#")))
    return [float(r["r"]) for r in records], [int(r["l"]) for r in records]


def checkpoints(folder):
    files = sorted(glob.glob(os.path.join(folder, "checkpoints", "ckpt-*.npz")))
    if not files:
        raise FileNotFoundError(f"no checkpoints/ckpt-*.npz in {folder}")
    return files


def run_folder(side, name):
    """The one <task>-<mask>-<stamp> run folder a deploy writes under side/name."""
    runs = sorted(d for d in glob.glob(os.path.join(side, name, "*-*-*")) if os.path.isdir(d))
    if len(runs) != 1:
        raise FileNotFoundError(f"expected one run folder in {os.path.join(side, name)}, found {len(runs)}")
    return runs[0]


class Table:
    def __init__(self):
        self.rows = []
        self.failed = 0

    def add(self, what, x86, arm, diff, ok):
        """ok: True / False (counted), None (information only)."""
        self.failed += ok is False
        self.rows.append((what, str(x86), str(arm), diff, {True: "ok", False: "MISMATCH", None: "info"}[ok]))

    def exact(self, what, x86, arm):
        self.add(what, x86, arm, "-", x86 == arm)

    def print(self):
        head = ("check", "x86-64", "aarch64", "diff", "")
        widths = [max(len(r[i]) for r in self.rows + [head]) for i in range(5)]
        fmt = "  ".join("{:<%d}" % w for w in widths)
        print(fmt.format(*head))
        print(fmt.format(*("-" * w for w in widths)))
        for r in self.rows:
            print(fmt.format(*r).rstrip())


def returns(table, label, x86_run, arm_run, tol):
    """tol: (rtol, atol) to check the returns, None to print their largest difference as information."""
    rx, lx = read_monitor(os.path.join(x86_run, "monitor.csv"))
    ra, la = read_monitor(os.path.join(arm_run, "monitor.csv"))
    table.exact(f"{label}: episodes", len(rx), len(ra))
    table.exact(f"{label}: episode lengths", " ".join(map(str, sorted(set(lx)))) + f" (x{len(lx)})",
                " ".join(map(str, sorted(set(la)))) + f" (x{len(la)})")
    if lx != la:
        table.add(f"{label}: episode lengths in order", "", "", "-", False)
    if not rx or len(rx) != len(ra):
        return
    a, b = np.asarray(rx), np.asarray(ra)
    rel = np.abs(a - b) / np.maximum(np.maximum(np.abs(a), np.abs(b)), 1e-300)
    i = int(np.argmax(rel))
    what = f"{label}: returns, worst of {len(a)} (episode {i + 1})"
    if tol is None:
        table.add(what, f"{a[i]:.6f}", f"{b[i]:.6f}", f"rel {rel[i]:.2e}", None)
    else:
        rtol, atol = tol
        ok = bool(np.all(np.abs(a - b) <= atol + rtol * np.maximum(np.abs(a), np.abs(b))))
        table.add(what, f"{a[i]:.6f}", f"{b[i]:.6f}", f"rel {rel[i]:.2e}", ok)


def arrays(table, label, x86_ckpt, arm_ckpt, rtol):
    """Counters, RNG and noise exactly; learner arrays within rtol (None: information only)."""
    ax, mx = load_arrays(x86_ckpt)
    aa, ma = load_arrays(arm_ckpt)
    step = os.path.basename(x86_ckpt)[len("ckpt-"):-len(".npz")].lstrip("0") or "0"
    label = f"{label} @{step}"
    table.exact(f"{label}: checkpoint, arrays", f"{os.path.basename(x86_ckpt)}, {len(ax)}",
                f"{os.path.basename(arm_ckpt)}, {len(aa) if sorted(aa) == sorted(ax) else 'other names'}")
    sx, sa = mx.get("stats", {}), ma.get("stats", {})
    keys = [k for k in ("steps", "updates", "episodes") if k in sx]
    table.exact(f"{label}: {'/'.join(keys)}", "/".join(str(sx[k]) for k in keys),
                "/".join(str(sa.get(k)) for k in keys))
    same_rng = mx.get("rng") == ma.get("rng")
    same_noise = all(n in ax and n in aa and np.array_equal(ax[n], aa[n]) for n in EXACT_NAMES)
    table.add(f"{label}: RNG state, noise", "", "identical" if same_rng and same_noise else "differ", "-",
              same_rng and same_noise)
    diffs = {n: rel_diff(ax[n], aa[n]) for n in ax if is_learner(n) and n in aa}
    worst = max(diffs, key=diffs.get)
    table.add(f"{label}: learner arrays ({len(diffs)}), worst", worst, "", f"rel {diffs[worst]:.2e}",
              None if rtol is None else diffs[worst] <= rtol)
    if "env.mj_state" in ax and "env.mj_state" in aa:
        table.add(f"{label}: MuJoCo state", "", "", f"rel {rel_diff(ax['env.mj_state'], aa['env.mj_state']):.2e}",
                  None)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("x86_dir")
    ap.add_argument("arm_dir")
    ap.add_argument("--rtol", type=float, default=1e-4,
                    help="relative tolerance of the short-horizon checks (default 1e-4)")
    ap.add_argument("--atol", type=float, default=1e-5,
                    help="absolute tolerance added for returns (default 1e-5: monitor.csv's 6 decimals)")
    args = ap.parse_args(argv)
    X, A = args.x86_dir, args.arm_dir
    table = Table()
    try:
        # (a') short train: every checkpoint within tolerance
        cx, ca = checkpoints(os.path.join(X, "train_short")), checkpoints(os.path.join(A, "train_short"))
        table.exact("train 20 steps: checkpoints", len(cx), len(ca))
        for fx, fa in zip(cx, ca):
            arrays(table, "train 20 steps", fx, fa, args.rtol)
        # (b') one agent, frozen, short episodes
        dx, da = run_folder(X, "deploy_short"), run_folder(A, "deploy_short")
        returns(table, "deploy same agent 100 ticks", dx, da, (args.rtol, args.atol))
        arrays(table, "deploy same agent 100 ticks", checkpoints(dx)[-1], checkpoints(da)[-1], args.rtol)
        # (a) 2,000-step train and (b) frozen deploy of each side's own agent: counts exact, values info
        tx, ta = os.path.join(X, "train"), os.path.join(A, "train")
        returns(table, "train 2000 steps", tx, ta, None)
        arrays(table, "train 2000 steps", checkpoints(tx)[-1], checkpoints(ta)[-1], None)
        dx, da = run_folder(X, "deploy_sim"), run_folder(A, "deploy_sim")
        returns(table, "deploy own agent 600 ticks", dx, da, None)
        arrays(table, "deploy own agent 600 ticks", checkpoints(dx)[-1], checkpoints(da)[-1], None)
    except (OSError, KeyError, ValueError) as err:
        table.print()
        print(f"error: {err}", file=sys.stderr)
        return 2
    table.print()
    print(f"\nshort horizons: rtol {args.rtol:g} (returns: + atol {args.atol:g}); "
          f"long runs: counts exact, values for information; {table.failed} mismatch(es)")
    return 1 if table.failed else 0


if __name__ == "__main__":
    sys.exit(main())

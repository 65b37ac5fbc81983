"""How a learner copes with changing dynamics: per-segment figures of training runs on an env of
``envs.nonstationary`` (episode records labelled with their ``segment``), against fresh agents.

    python -m launch.adaptation RUN_DIR [RUN_DIR ...] [--fresh FRESH_DIR ...] [--out FOLDER]

For every run and segment k (the episodes that ran under segment k's dynamics):

* ``mean``: the segment's mean episode return; ``first``: the mean of its first ``window`` episodes
  (the return right after the change); ``last``: the mean of its last ``window`` episodes; ``gain``:
  last - first, what the segment's learning added;
* ``before``: the mean of the last ``window`` episodes of segment k-1 (the return before the change);
* ``recovery_steps``: env steps from the change until the moving average of ``window`` episodes first
  reaches 90 % of ``before`` (where returns are positive); None when it never does in the segment;
* ``fresh_steps`` (with ``--fresh``): steps a fresh agent trained on segment k's dynamics alone
  (``env_kwargs.first_segment=k``, ``every=0``, the run's ``schedule_seed``) needs to reach the same
  level, and ``fresh_first`` / ``fresh_mean``: its mean return over the same number of steps.

Writes ``adaptation.json`` (every figure, per run and segment) and ``adaptation.md`` (tables: mean ±
standard error over runs per segment), and with matplotlib ``adaptation.png`` (returns with the segment
boundaries, and the learner's health: dormant units, weight norms, effective step sizes).
"""
import argparse
import json
import math
from pathlib import Path

import numpy as np

from launch import results as R

WINDOW = 10


def episodes(run_dir):
    """[(step, return, segment)] of a run's episode records that carry a segment."""
    return [(int(r["step"]), float(r["return"]), int(r["segment"])) for r in R.read_metrics(run_dir, "episode")
            if "segment" in r]


def _recovery(steps, returns, start_step, level, window):
    """Env steps from start_step until the trailing mean of ``window`` returns reaches level (None)."""
    ma = R.moving_average(returns, window)
    for s, m in zip(steps, ma):
        if m >= level:
            return int(s - start_step)
    return None


def segment_figures(run_dir, window=WINDOW):
    """{segment: figures} of one run (see the module docstring)."""
    eps = episodes(run_dir)
    by_segment = {}
    for step, ret, seg in eps:
        by_segment.setdefault(seg, []).append((step, ret))
    out = {}
    prev = None
    for seg in sorted(by_segment):
        rows = by_segment[seg]
        steps = [s for s, _ in rows]
        rets = [r for _, r in rows]
        start = steps[0] - (steps[1] - steps[0] if len(steps) > 1 else 0)   # the step of the change
        fig = {"episodes": len(rows), "start_step": start, "mean": float(np.mean(rets)),
               "first": float(np.mean(rets[:window])), "last": float(np.mean(rets[-window:]))}
        fig["gain"] = fig["last"] - fig["first"]
        fig["end_step"] = steps[-1]
        if prev is not None:
            before = float(np.mean(prev[-window:]))
            fig["before"] = before
            fig["recovery_steps"] = (_recovery(steps, rets, start, 0.9 * before, window) if before > 0 else None)
        out[seg] = fig
        prev = rets
    return out


def fresh_figures(fresh_dir, level, steps_limit, window=WINDOW):
    """(steps to reach level, mean return over its first steps_limit steps) of a fresh agent's run."""
    eps = R.read_metrics(fresh_dir, "episode")
    steps = [int(r["step"]) for r in eps]
    rets = [float(r["return"]) for r in eps]
    within = [r for s, r in zip(steps, rets) if s <= steps_limit]
    reach = _recovery(steps, rets, 0, level, window) if level is not None and level > 0 else None
    return reach, (float(np.mean(within)) if within else None), (float(np.mean(within[:window])) if within else None)


def _config(run_dir):
    import yaml
    return yaml.safe_load((Path(run_dir) / R.CONFIG).read_text())


def analyse(run_dirs, fresh_dirs=(), window=WINDOW):
    """{"runs": {run: {segment: figures}}} with each fresh run matched to its run by schedule seed
    (the run's seed unless env_kwargs.schedule_seed is set) and segment (env_kwargs.first_segment)."""
    runs = {}
    seeds = {}
    for d in run_dirs:
        cfg = _config(d)
        seeds[str(d)] = int(cfg.get("env_kwargs", {}).get("schedule_seed", cfg["seed"]))
        runs[str(d)] = segment_figures(d, window)
    for f in fresh_dirs:
        cfg = _config(f)
        kw = cfg.get("env_kwargs", {})
        seg, sseed = int(kw.get("first_segment", 0)), int(kw.get("schedule_seed", cfg["seed"]))
        for d, figs in runs.items():
            if seeds[d] != sseed or seg not in figs:
                continue
            fig = figs[seg]
            level = 0.9 * fig["before"] if "before" in fig else None
            reach, mean, first = fresh_figures(f, level, _segment_span(figs, seg), window)
            fig.update(fresh_steps=reach, fresh_mean=mean, fresh_first=first, fresh_dir=str(f))
    return {"window": window, "runs": runs, "summary": summary(runs, run_dirs)}


def summary(runs, run_dirs):
    """Trends over segment index: recoveries in the first and second half of the segments (mean steps,
    how many recovered), mean gain per half, and the largest dormant fraction of any health record."""
    segs = sorted({s for figs in runs.values() for s in figs if s > 0})
    half = segs[:len(segs) // 2], segs[len(segs) // 2:]
    out = {}
    for name, part in zip(("first_half", "second_half"), half):
        figs = [r[s] for r in runs.values() for s in part if s in r]
        rec = [f["recovery_steps"] for f in figs if f.get("recovery_steps") is not None]
        out[name] = {"segments": [min(part), max(part)] if part else [],
                     "recovered": f"{len(rec)}/{len(figs)}",
                     "mean_recovery_steps": float(np.mean(rec)) if rec else None,
                     "mean_gain": float(np.mean([f["gain"] for f in figs])) if figs else None}
    dormant = [v for d in run_dirs for r in R.read_metrics(d, "periodic") if "health" in r
               for v in r["health"]["dormant"].values()]
    out["max_dormant"] = max(dormant) if dormant else None
    return out


def _segment_span(figs, seg):
    """Env steps of segment seg (from its change to the next one, or to its last episode)."""
    nxt = figs.get(seg + 1)
    end = nxt["start_step"] if nxt is not None else figs[seg]["end_step"]
    return end - figs[seg]["start_step"]


def _mean_se(values):
    v = [x for x in values if x is not None and math.isfinite(x)]
    if not v:
        return "—"
    m = float(np.mean(v))
    if len(v) == 1:
        return f"{m:,.0f} (1)"
    se = float(np.std(v, ddof=1)) / math.sqrt(len(v))
    return f"{m:,.0f} ± {se:,.0f} ({len(v)})"


def markdown(report):
    """One table, a row per segment: mean ± standard error over runs (n in brackets)."""
    runs = list(report["runs"].values())
    segments = sorted({s for figs in runs for s in figs})
    lines = ["| segment | return before the change | first 10 episodes after | segment mean | last 10 episodes "
             "| gain in the segment (last − first) | steps to 90 % of before | fresh agent: steps to 90 % "
             "| fresh agent: mean over the segment |",
             "|---:|---|---|---|---|---|---|---|---|"]
    for s in segments:
        figs = [r[s] for r in runs if s in r]

        def col(key, scale=1.0):
            return _mean_se([f.get(key) * scale if f.get(key) is not None else None for f in figs])
        recovered = sum(f.get("recovery_steps") is not None for f in figs if "before" in f)
        rec = col("recovery_steps") + (f", {recovered}/{len(figs)} recover" if s else "")
        lines.append(f"| {s} | {col('before') if s else '—'} | {col('first')} | {col('mean')} | {col('last')} | "
                     f"{col('gain')} | {rec if s else '—'} | {col('fresh_steps')} | {col('fresh_mean')} |")
    return "\n".join(lines)


def plot(run_dirs, report, path):
    """Returns per run with segment boundaries, and the health records over steps."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, axes = plt.subplots(4, 1, figsize=(10, 11), sharex=True)
    for d in run_dirs:
        eps = episodes(d)
        steps = np.array([e[0] for e in eps])
        axes[0].plot(steps, R.moving_average([e[1] for e in eps], WINDOW), lw=0.8, label=Path(d).name)
        health = [r for r in R.read_metrics(d, "periodic") if "health" in r]
        hs = [r["step"] for r in health]
        line, = axes[1].plot(hs, [r["health"]["dormant"].get("actor", np.nan) for r in health], lw=0.8)
        axes[1].plot(hs, [r["health"]["dormant"].get("critic", np.nan) for r in health], lw=0.8, ls="--",
                     color=line.get_color())
        axes[2].plot(hs, [r["health"]["weight_norm"]["actor"][0] for r in health], lw=0.8)
        axes[3].plot(hs, [r["health"]["step"]["actor"][0] for r in health], lw=0.8)
    first = next(iter(report["runs"].values()), {})
    for seg, f in first.items():
        for ax in axes:
            ax.axvline(f["start_step"], color="0.8", lw=0.5, zorder=0)
    axes[0].set_ylabel(f"return ({WINDOW}-episode mean)")
    axes[1].set_ylabel("dormant fraction\n(actor; critic dashed)")
    axes[2].set_ylabel("actor: ||dense params||")
    axes[3].set_ylabel("actor: effective step")
    axes[3].set_xlabel("env steps (grey: a change of dynamics)")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m launch.adaptation", description=__doc__.split("\n\n")[0])
    p.add_argument("run_dirs", nargs="+")
    p.add_argument("--fresh", nargs="*", default=[])
    p.add_argument("--out", default=".")
    args = p.parse_args(argv)
    report = analyse(args.run_dirs, args.fresh)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "adaptation.json").write_text(json.dumps(report, indent=1))
    (out / "adaptation.md").write_text(markdown(report) + "\n")
    png = plot(args.run_dirs, report, out / "adaptation.png")
    print(markdown(report))
    print(json.dumps(report["summary"], indent=1))
    print(f"written: {out / 'adaptation.json'}, {out / 'adaptation.md'}" + (f", {png}" if png else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""`rtu-control plot RUN_DIR [RUN_DIR ...]`: the PNG plots of training runs.

For each run folder (written by `rtu-control train`): ``learning_curve.png`` (episode returns against
env steps, with a trailing moving average) and ``latency.png`` (log-bin histogram of act, learn and
act + learn times in µs, the budget marked). Reads ``metrics.jsonl`` (falls back to ``monitor.csv``)
and ``latency.json``. Several runs also give ``--compare FILE``: their moving averages on one figure.

``rtu-control plot SWEEP_DIR`` with a folder of ``rtu-control sweep`` writes its report (the same as
``rtu-control sweep --report SWEEP_DIR``: table, CSV/JSON and curves, ``launch.sweep_report``).

``rtu-control plot BENCH_DIR [BENCH_DIR ...] --compare FILE`` with output folders of
``rtu-control bench learning`` (``summary.json`` + ``curves/``) draws one panel per task, the masked
and the full observation of a task together (``HalfCheetah-P-v5`` and ``HalfCheetah-v5`` in one panel):
one line per (env id, cell), the mean over seeds of each seed's moving average, shaded ± one standard
error across seeds.

matplotlib is optional (``pip install 'rtu-control[plot]'``): without it one message is printed and no
file written.
"""
import json
from pathlib import Path

import numpy as np

from launch import results as R


def _pyplot(echo):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        echo("plots skipped: matplotlib is not installed (pip install matplotlib)")
        return None
    return plt


def _config(run_dir):
    import yaml
    path = Path(run_dir) / R.CONFIG
    try:
        return yaml.safe_load(path.read_text()) or {}
    except (OSError, Exception):  # a missing or damaged config only loses the titles
        return {}


def _moving_average(run_dir):
    """The run's moving-average window (config.yaml's moving_average, else 20); ValueError naming the
    file and key for a value that is not an integer >= 1."""
    value = _config(run_dir).get("moving_average", 20)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{Path(run_dir) / R.CONFIG}: moving_average: expected an integer >= 1, "
                         f"found {value!r}")
    return value


def _check_compare_path(compare):
    """ValueError unless --compare names a file in an existing folder (checked before drawing)."""
    path = Path(compare)
    if path.is_dir():
        raise ValueError(f"--compare {compare}: expected a file path for the figure, found a folder")
    if not path.parent.is_dir():
        raise ValueError(f"--compare {compare}: expected a file in an existing folder, found no folder "
                         f"{path.parent}")


def _check_has_something(run_dir):
    """FileNotFoundError unless the run folder holds episodes or latency statistics to plot."""
    d = Path(run_dir)
    if not (d / R.METRICS).exists() and not (d / R.MONITOR).exists():
        raise FileNotFoundError(f"{d}: not a training run folder (no {R.METRICS} or {R.MONITOR})")
    if episodes_of(d)[0].size == 0 and not (d / R.LATENCY).is_file():
        raise ValueError(f"{d}: no episodes in {R.METRICS} or {R.MONITOR} and no {R.LATENCY}: nothing to "
                         f"plot yet")


def episodes_of(run_dir):
    """(steps, returns) arrays of a run's episodes (metrics.jsonl, else monitor.csv cumulative lengths)."""
    rows = R.read_metrics(run_dir, "episode")
    if rows:
        return (np.array([r["step"] for r in rows], np.int64),
                np.array([r["return"] for r in rows], np.float64))
    _, mon = R.read_monitor(run_dir)
    lengths = np.array([n for _, n, _ in mon], np.int64)
    return np.cumsum(lengths), np.array([r for r, _, _ in mon], np.float64)


def plot_learning_curve(run_dir, plt, window=None, path=None):
    """learning_curve.png of one run; returns the path, or None when the run has no episodes."""
    run_dir = Path(run_dir)
    cfg = _config(run_dir)
    window = window or _moving_average(run_dir)
    steps, returns = episodes_of(run_dir)
    if steps.size == 0:
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    if steps.size <= 3000:  # beyond that the points only paint the range of returns
        ax.plot(steps, returns, ".", ms=2, alpha=0.35, color="tab:blue", label="episode return")
    ax.plot(steps, R.moving_average(returns, window), color="tab:blue", lw=2,
            label=f"moving average ({window} episodes)")
    for rb in R.read_metrics(run_dir, "rollback"):
        ax.axvline(rb["step"], color="tab:red", lw=0.8, alpha=0.6)
    agent = cfg.get("agent", {}) if isinstance(cfg.get("agent"), dict) else {}
    ax.set_title(f"{cfg.get('env_id', run_dir.name)}  {agent.get('cell', '')}  seed {cfg.get('seed', '?')}")
    ax.set_xlabel("env steps")
    ax.set_ylabel("episode return")
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    fig.tight_layout()
    path = Path(path) if path else run_dir / "learning_curve.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_latency(run_dir, plt, path=None):
    """latency.png of one run (from latency.json); returns the path, or None without latency.json."""
    run_dir = Path(run_dir)
    try:
        lat = json.loads((run_dir / R.LATENCY).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    # train: act, learn, act + learn, env.step; deploy: sense->act, learn, wake-up jitter, tick work
    for name, color, label in (("act", "tab:green", "act"), ("learn", "tab:orange", "learn"),
                               ("act_learn", "tab:blue", "act+learn"), ("env_step", "tab:gray", "env.step"),
                               ("sense_act", "tab:blue", "sense->act"), ("jitter", "tab:purple", "wake-up jitter"),
                               ("work", "tab:gray", "tick work")):
        h = lat.get(name + "_histogram")
        if not h or not h["counts"]:
            continue
        lo, counts = np.asarray(h["lo_us"], np.float64), np.asarray(h["counts"], np.float64)
        idx = np.rint(np.log2(lo * 1e3) * 16).astype(np.int64)   # LogHistogram bins, 16 per octave
        full = np.zeros(idx[-1] - idx[0] + 1)
        full[idx - idx[0]] = counts
        edges = 2.0 ** (np.arange(idx[0], idx[-1] + 2) / 16) / 1e3
        s = lat[name]
        ax.stairs(full, edges, color=color, lw=1.5,
                  label=f"{label}: p50 {s['p50']:.0f}, p99 {s['p99']:.0f}, max {s['max']:.0f} µs")
    budget = lat.get("budget_us")
    if budget:
        ax.axvline(budget, color="tab:red", ls="--", label=f"budget {budget:g} µs")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("time per tick (µs, log scale)")
    ax.set_ylabel("ticks")
    ax.set_title(f"latency ({lat.get('pace', '')})")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    path = Path(path) if path else run_dir / "latency.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_run(run_dir, echo=print):
    """Both plots of one run folder; returns the written paths ([] without matplotlib)."""
    plt = _pyplot(echo)
    if plt is None:
        return []
    out = [p for p in (plot_learning_curve(run_dir, plt), plot_latency(run_dir, plt)) if p is not None]
    return out


def plot_compare(run_dirs, path, window=20, echo=print):
    """Moving averages of several runs on one figure; returns the path (None without matplotlib)."""
    plt = _pyplot(echo)
    if plt is None:
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    for d in run_dirs:
        steps, returns = episodes_of(d)
        if steps.size:
            ax.plot(steps, R.moving_average(returns, window), label=Path(d).name)
    return _save_return_figure(plt, fig, [ax], path, window)


def _save_return_figure(plt, fig, axes, path, window):
    """Label each axes as episode return (moving average of window) against env steps, write fig to
    path as PNG and close it; returns the Path."""
    for ax in axes:
        ax.set_xlabel("env steps")
        ax.set_ylabel(f"episode return (moving average of {window})")
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=7)
    fig.tight_layout()
    path = Path(path)
    if not path.suffix:   # matplotlib would add .png itself; say the name it gets
        path = path.with_suffix(".png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


BENCH_SUMMARY = "summary.json"


def task_of(env_id):
    """The task an env id observes, masked or not: 'HalfCheetah-P-v5' and 'HalfCheetah-v5' ->
    'HalfCheetah-v5'."""
    return env_id.replace("-P-v", "-v")


def _bench_runs(bench_dir):
    """The runs of one `bench learning` output folder, each with the path of its episode curve (the
    recorded path, else the same file under this folder, so that moved folders still plot)."""
    bench_dir = Path(bench_dir)
    try:
        runs = json.loads((bench_dir / BENCH_SUMMARY).read_text())["runs"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise FileNotFoundError(f"{bench_dir / BENCH_SUMMARY}: not a bench learning summary ({err})") from None
    for r in runs:
        local = bench_dir / "curves" / r["env_id"] / r["cell"] / f"seed{r['seed']}.jsonl"
        if not local.is_file():   # a sweep folder: the trial's own metrics
            local = bench_dir / "trials" / r["cell"] / f"env_id={r['env_id']}" / f"seed={r['seed']}" / R.METRICS
        recorded = Path(r.get("curve", ""))
        r["curve"] = str(recorded if recorded.is_file() else local)
        if not Path(r["curve"]).is_file():
            raise FileNotFoundError(f"{bench_dir}: no curve for {r['env_id']} {r['cell']} seed {r['seed']} "
                                    f"(looked for {recorded} and {local})")
    return runs


def seed_band(curves):
    """Mean and standard error over seeds of curves (float64 (seeds, points), NaN where a seed has no
    value yet), point by point over the seeds that have one: ((points,), (points,)); the error is 0 where
    fewer than two seeds have a value and the mean NaN where none has."""
    count = np.isfinite(curves).sum(axis=0)
    total = np.where(np.isfinite(curves), curves, 0.0).sum(axis=0)
    mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    squares = np.where(np.isfinite(curves), (curves - mean) ** 2, 0.0).sum(axis=0)
    stderr = np.where(count > 1, np.sqrt(squares / np.maximum(count - 1, 1) / np.maximum(count, 1)), 0.0)
    return mean, stderr


def plot_learning_benches(bench_dirs, path, window=20, echo=print):
    """One panel per task (``task_of``) over the runs of several `bench learning` folders (see
    ``plot_seed_curves``). Returns the path (None without matplotlib)."""
    runs = [r for d in bench_dirs for r in _bench_runs(d)]
    return plot_seed_curves(runs, path, window, panel_of=task_of, echo=echo)


def plot_seed_curves(runs, path, window=20, panel_of=task_of, echo=print):
    """Learning curves of `bench learning` runs (dicts with env_id, cell, steps and curve, the path of a
    JSONL file of episodes with step and return, or of a train run's metrics.jsonl), one panel per ``panel_of(env_id)``, one line per
    (env id, cell): mean over seeds of each seed's trailing moving average of episode returns against env
    steps, shaded ± one standard error across seeds (``seed_band``). Returns the path (None without
    matplotlib)."""
    plt = _pyplot(echo)
    if plt is None:
        return None
    panels = list(dict.fromkeys(panel_of(r["env_id"]) for r in runs))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        lines = list(dict.fromkeys((r["env_id"], r["cell"]) for r in runs if panel_of(r["env_id"]) == panel))
        for env_id, cell in lines:
            mine = [r for r in runs if (r["env_id"], r["cell"]) == (env_id, cell)]
            grid = np.linspace(0, max(r["steps"] for r in mine), 200)
            curves = []
            for r in mine:
                rows = [x for x in map(json.loads, open(r["curve"])) if x.get("kind", "episode") == "episode"]
                if rows:
                    steps = np.array([x["step"] for x in rows], np.float64)
                    smooth = R.moving_average(np.array([x["return"] for x in rows], np.float64), window)
                    curves.append(np.interp(grid, steps, smooth, left=np.nan))
            if not curves:
                continue
            mean, stderr = seed_band(np.array(curves))
            line, = ax.plot(grid, mean, label=f"{cell}, {env_id} ({len(curves)} seeds)")
            ax.fill_between(grid, mean - stderr, mean + stderr, color=line.get_color(), alpha=0.2)
        ax.set_title(panel)
    return _save_return_figure(plt, fig, axes[0], path, window)


def main_plot(run_dirs, compare=None, echo=print):
    """The `rtu-control plot` command; returns the list of written paths. Raises FileNotFoundError
    naming a folder that is neither a training run nor a `bench learning` output (with ``--compare``),
    and ValueError for a mix of both or bench folders without ``--compare``."""
    if compare:
        _check_compare_path(compare)
    sweeps = [Path(d) for d in run_dirs if (Path(d) / "trials.json").is_file()]
    if sweeps:   # `rtu-control sweep` folders: their reports (table and curves)
        if len(sweeps) != len(run_dirs) or compare:
            raise ValueError("give sweep folders alone, without --compare (each gets its report/)")
        from launch.sweep_report import report
        written = []
        for d in sweeps:
            report(d, echo=echo)
            written.append(d / "report" / "curves.png")
            echo(f"wrote {d / 'report'}")
        return written
    benches = [Path(d) for d in run_dirs if (Path(d) / BENCH_SUMMARY).is_file()
               and not (Path(d) / R.METRICS).exists()]
    if benches:
        if len(benches) != len(run_dirs):
            raise ValueError("give either training run folders or bench learning folders, not both")
        if not compare:
            raise ValueError(f"{benches[0]}: a bench learning folder; give --compare FILE for its figure")
        p = plot_learning_benches(benches, compare, echo=echo)
        if p is not None:
            echo(f"wrote {p}")
        return [p] if p is not None else []
    for d in run_dirs:   # every folder checked before any figure is drawn
        _check_has_something(d)
        _moving_average(d)
    written = []
    for d in run_dirs:
        d = Path(d)
        paths = plot_run(d, echo=echo)
        if not paths and _pyplot(lambda *_: None) is None:
            return written
        for p in paths:
            echo(f"wrote {p}")
        written += paths
    if compare:
        p = plot_compare(run_dirs, compare, echo=echo)
        if p is not None:
            echo(f"wrote {p}")
            written.append(p)
    return written

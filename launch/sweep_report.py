"""The report of a sweep folder written by `rtu-control sweep`: per task, group and budget, the scores
of the seeds, their mean, standard error and interquartile mean with a bootstrap interval.

Reads ``<sweep>/trials.json`` (the trials and the ``report`` section: ``budgets``, ``last_episodes``)
and, for each trial, its run folder's ``summary.json`` and ``metrics.jsonl`` episode records. A trial is
finished when its ``summary.json`` says ``"stop_reason": "steps reached"``; the others are listed as
unfinished and never averaged.

Writes to ``<sweep>/report/`` (or ``out``):

* ``summary.csv``: one row per (task, group, budget), columns ``task, group, budget, n, mean, stderr,
  iqm, iqm_lo, iqm_hi, per_seed`` (per_seed: the seeds' scores separated by spaces, in trials.json order;
  an undefined value is an empty field);
* ``summary.json``: ``rows`` (the same rows, undefined values null, per_seed a list), ``unfinished``
  (trial ids), ``budgets`` and ``last_episodes`` used;
* ``table.md``: one markdown table per budget, rows task x group, cells "mean ± s.e." and
  "IQM [lo, hi]" and the number of seeds, then the unfinished trials if any;
* ``curves.png``: one panel per task, one line per group: the mean over seeds of each seed's trailing
  moving average (window ``last_episodes``) of episode returns against env steps, shaded ± one standard
  error across seeds (skipped with one message without matplotlib).

Definitions (returns are undiscounted episode returns, budgets and steps are env steps):

* score of a trial at budget B: the mean return of the last ``last_episodes`` episodes that ended at
  or before env step B, so at B = the run's steps and ``last_episodes`` = 10 it is summary.json's
  ``recent_return``. A finished trial with no episode ended by B, or that ran fewer than B steps, has
  no score at B and is left out of that cell (its ``n`` is smaller);
* IQM: the interquartile mean over seeds, ``scipy.stats.trim_mean(scores, 0.25)`` as rliable computes
  it (the mean of the middle half; the plain mean for fewer than 4 seeds);
* IQM interval: the 95 % percentile bootstrap interval of the IQM, resampling seeds (2000 resamples,
  a fixed seed so that a report is reproducible); [IQM, IQM] for one seed or equal scores.

scipy is required (``pip install 'rtu-control[sweep]'``).
"""
import csv
import inspect
import json
import math
from pathlib import Path

import numpy as np

from launch import results as R
from launch.plot import _pyplot, _save_return_figure, seed_band

TRIALS = "trials.json"
REPORT = "report"
FINISHED = "steps reached"
COLUMNS = ("task", "group", "budget", "n", "mean", "stderr", "iqm", "iqm_lo", "iqm_hi", "per_seed")
N_RESAMPLES = 2000
CONFIDENCE = 0.95
DEFAULT_LAST_EPISODES = 10   # the window of summary.json's recent_return


def _stats():
    try:
        from scipy import stats
    except ImportError:
        raise ImportError("the sweep report needs scipy: pip install 'rtu-control[sweep]'") from None
    return stats


def score_at(episodes, budget, last_episodes):
    """Mean return (float) of the last ``last_episodes`` of ``episodes`` (metrics.jsonl episode records
    in file order, with ``step`` and ``return``) that ended at or before env step ``budget``; NaN when
    none did."""
    returns = [float(e["return"]) for e in episodes if e["step"] <= budget]
    if not returns:
        return math.nan
    # the same float64 mean over the same values in the same order as the trainer's recent_return
    return float(np.mean(np.asarray(returns[-int(last_episodes):], np.float64)))


def aggregate(scores, seed=0):
    """Statistics of one cell's per-seed scores (1-D, no NaN): dict with n, mean, stderr (ddof 1 over
    sqrt(n); NaN below 2 seeds), iqm, iqm_lo / iqm_hi (95 % percentile bootstrap interval of the IQM,
    rng seeded with ``seed``) and per_seed (list). Empty scores give n 0 and NaN everywhere."""
    stats = _stats()
    x = np.asarray(scores, np.float64).ravel()
    n = int(x.size)
    out = {"n": n, "mean": math.nan, "stderr": math.nan, "iqm": math.nan, "iqm_lo": math.nan,
           "iqm_hi": math.nan, "per_seed": x.tolist()}
    if n == 0:
        return out
    out["mean"] = float(np.mean(x))
    if n > 1:
        out["stderr"] = float(np.std(x, ddof=1) / math.sqrt(n))
    iqm = float(stats.trim_mean(x, 0.25))
    out["iqm"] = out["iqm_lo"] = out["iqm_hi"] = iqm
    if n > 1 and np.ptp(x) > 0:   # a bootstrap of equal values has no spread (scipy warns)
        ci = stats.bootstrap((x,), lambda s, axis=-1: stats.trim_mean(s, 0.25, axis=axis),
                             n_resamples=N_RESAMPLES, confidence_level=CONFIDENCE, method="percentile",
                             vectorized=True, **_rng_kwarg(stats.bootstrap, seed)).confidence_interval
        out["iqm_lo"], out["iqm_hi"] = float(ci.low), float(ci.high)
    return out


def _rng_kwarg(bootstrap, seed):
    # scipy >= 1.15 takes rng; older releases only random_state
    name = "rng" if "rng" in inspect.signature(bootstrap).parameters else "random_state"
    return {name: np.random.default_rng(seed)}


def load_trials(sweep_dir):
    """trials.json of a sweep folder (dict); FileNotFoundError when the folder is not a sweep folder."""
    sweep_dir = Path(sweep_dir)
    path = sweep_dir / TRIALS
    if not path.is_file():
        raise FileNotFoundError(f"{sweep_dir}: not a sweep folder (no {TRIALS})")
    try:
        spec = json.loads(path.read_text())
        for t in spec["trials"]:
            for key in ("id", "group", "task", "seed", "steps", "run_dir"):
                if key not in t:
                    raise ValueError(f"trial {t.get('id', '?')} has no {key!r}")
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: not a sweep trials file ({err})") from None
    return spec


def _finished(run_dir):
    """(summary dict, None) of a finished run, else (None, why it is not finished)."""
    try:
        summary = json.loads((run_dir / R.SUMMARY).read_text())
    except FileNotFoundError:
        return None, f"no {R.SUMMARY}"
    except (OSError, ValueError) as err:
        return None, f"unreadable {R.SUMMARY}: {err}"
    reason = summary.get("stop_reason") if isinstance(summary, dict) else None
    if reason != FINISHED:
        return None, f"stop_reason {reason!r}"
    return summary, None


def _check_budgets(budgets, last_episodes):
    bad = [b for b in budgets if isinstance(b, bool) or not isinstance(b, int) or b < 1]
    if bad or not budgets:
        raise ValueError(f"budgets: expected env-step counts (integers >= 1), found {list(budgets)!r}")
    if isinstance(last_episodes, bool) or not isinstance(last_episodes, int) or last_episodes < 1:
        raise ValueError(f"last_episodes: expected an integer >= 1, found {last_episodes!r}")


def report(sweep_dir, budgets=None, last_episodes=None, out=None, echo=print):
    """Score every finished trial of the sweep folder at each budget, aggregate per (task, group, budget),
    write summary.csv, summary.json, table.md and curves.png to ``out`` (default ``<sweep>/report/``),
    echo the markdown table and return the summary dict (rows, unfinished, budgets, last_episodes).

    budgets and last_episodes default to trials.json's ``report`` section (budgets: the largest trial
    steps when it lists none). A finished trial with no episode ended by a budget, or that ran fewer
    steps than the budget, contributes nothing to that budget's cell (its ``n`` shows it). Raises
    FileNotFoundError for a folder without trials.json, ValueError for budgets or last_episodes below 1.
    """
    sweep_dir = Path(sweep_dir)
    spec = load_trials(sweep_dir)
    trials = spec["trials"]
    section = spec.get("report") or {}
    budgets = list(budgets if budgets is not None else section.get("budgets") or [])
    if not budgets and trials:
        budgets = [max(int(t["steps"]) for t in trials)]
    if last_episodes is None:
        last_episodes = section.get("last_episodes", DEFAULT_LAST_EPISODES)
    _check_budgets(budgets, last_episodes)
    budgets = list(dict.fromkeys(budgets))   # a repeated budget would repeat rows

    runs, unfinished = [], []
    for t in trials:
        summary, why = _finished(sweep_dir / t["run_dir"])
        if summary is None:
            unfinished.append((t["id"], why))
            continue
        runs.append({**t, "episodes": R.read_metrics(sweep_dir / t["run_dir"], "episode"),
                     "ran": int(summary.get("steps", t["steps"]))})

    rows = []
    for task, group in dict.fromkeys((t["task"], t["group"]) for t in trials):
        cell = [r for r in runs if (r["task"], r["group"]) == (task, group)]
        for budget in budgets:
            scores = [score_at(r["episodes"], budget, last_episodes) for r in cell if r["ran"] >= budget]
            agg = aggregate([s for s in scores if math.isfinite(s)])
            rows.append({"task": task, "group": group, "budget": budget, **agg})

    out = Path(out) if out is not None else sweep_dir / REPORT
    out.mkdir(parents=True, exist_ok=True)
    result = {"name": spec.get("name"), "budgets": budgets, "last_episodes": last_episodes,
              "rows": [{k: _json_value(v) for k, v in row.items()} for row in rows],
              "unfinished": [i for i, _ in unfinished]}
    _write_csv(out / "summary.csv", rows)
    (out / "summary.json").write_text(json.dumps(result, indent=2) + "\n")
    table = markdown(rows, budgets, last_episodes, unfinished)
    (out / "table.md").write_text(table + "\n")
    echo(table)
    plot_curves(runs, budgets, last_episodes, out / "curves.png", echo=echo)
    return result


def _json_value(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None   # JSON has no NaN
    if isinstance(v, list):
        return [_json_value(x) for x in v]
    return v


def _csv_value(v):
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ""   # repr round-trips, so the CSV equals the JSON
    if isinstance(v, list):
        return " ".join(_csv_value(x) for x in v)
    return str(v)


def _write_csv(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for row in rows:
            w.writerow([_csv_value(row[c]) for c in COLUMNS])


def _fmt(x):
    return f"{x:.2f}" if math.isfinite(x) else "–"


def markdown(rows, budgets, last_episodes, unfinished=()):
    """The markdown tables of the report rows, one per budget, then the unfinished trials (pairs of id
    and reason) if any."""
    parts = []
    for budget in budgets:
        parts += [(f"### budget {budget} env steps (score: mean return of the last {last_episodes} "
                   "episodes ended by then)"), "",
                  "| task | group | n | mean ± s.e. | IQM [95 % CI] |", "|---|---|---:|---:|---:|"]
        for r in (r for r in rows if r["budget"] == budget):
            if r["n"] == 0:
                parts.append(f"| {r['task']} | {r['group']} | 0 | – | – |")
                continue
            parts.append(f"| {r['task']} | {r['group']} | {r['n']} | {_fmt(r['mean'])} ± "
                         f"{_fmt(r['stderr'])} | {_fmt(r['iqm'])} [{_fmt(r['iqm_lo'])}, {_fmt(r['iqm_hi'])}] |")
        parts.append("")
    if unfinished:
        parts.append("Unfinished trials (not averaged): "
                     + ", ".join(f"{i} ({why})" for i, why in unfinished))
    return "\n".join(parts).rstrip("\n")


def plot_curves(runs, budgets, window, path, echo=print):
    """curves.png of finished runs (trials.json entries with their ``episodes`` and ``ran`` steps):
    one panel per task, one line per group, mean ± s.e. over seeds of each seed's trailing moving average
    on a grid common to the panel; budgets marked. Returns the path, or None without matplotlib or runs."""
    runs = [r for r in runs if r["episodes"]]
    if not runs:
        echo("curves skipped: no finished trial has an episode")
        return None
    plt = _pyplot(echo)
    if plt is None:
        return None
    tasks = list(dict.fromkeys(r["task"] for r in runs))
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 4), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        mine = [r for r in runs if r["task"] == task]
        grid = np.linspace(0, max(r["ran"] for r in mine), 200)
        for group in dict.fromkeys(r["group"] for r in mine):
            curves = []
            for r in (r for r in mine if r["group"] == group):
                steps = np.array([e["step"] for e in r["episodes"]], np.float64)
                smooth = R.moving_average([e["return"] for e in r["episodes"]], window)
                c = np.interp(grid, steps, smooth, left=np.nan)
                c[grid > r["ran"]] = np.nan   # a shorter run does not extend past its own steps
                curves.append(c)
            mean, stderr = seed_band(np.array(curves))
            line, = ax.plot(grid, mean, label=f"{group} ({len(curves)} seeds)")
            ax.fill_between(grid, mean - stderr, mean + stderr, color=line.get_color(), alpha=0.2)
        for b in budgets:
            ax.axvline(b, color="gray", ls=":", lw=0.8)
        ax.set_title(task)
    return _save_return_figure(plt, fig, axes[0], path, window)

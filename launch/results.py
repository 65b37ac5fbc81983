"""The files of one training run's results folder, written and read by `rtu-control train` and `plot`.

Layout of ``<run dir>/``:

* ``config.yaml``: the resolved ``TrainConfig`` (every key, defaults included);
* ``metrics.jsonl``: one JSON object per line, ``kind`` one of ``episode`` (step, episode, wall_s,
  return, length), ``periodic`` (step, wall_s, steps_per_s, recent_return, act_us / learn_us latency
  summaries, learner counters), ``rollback`` (divergence guard), ``checkpoint``, ``start`` / ``resume``
  and ``end``;
* ``monitor.csv``: episodes in Stable-Baselines3's Monitor format: a first line
  ``#{"t_start": <unix s>, "env_id": "<id>"}``, the header ``r,l,t``, then one row per episode
  (return, length, seconds since t_start);
* ``latency.json``: act / learn / act+learn latency summaries in µs and their log-bin histograms, and
  the same for the simulator's ``env.step`` (train runs), measured in the same loop;
* ``summary.json``: final counters; ``checkpoints/ckpt-<step>.npz`` (``.npz.bad``: set aside on resume
  as corrupt or mismatched); ``learning_curve.png`` and
  ``latency.png``; with ``logger: tensorboard`` also ``tensorboard/`` (event files, ``launch.tb_logger``).

Files are appended line by line and flushed, so a crash leaves at most one partial last line, which the
readers here skip; ``truncate_after`` cuts both logs back to a checkpoint when a run resumes.
"""
import json
import math
from pathlib import Path

import numpy as np

METRICS = "metrics.jsonl"
MONITOR = "monitor.csv"
LATENCY = "latency.json"
SUMMARY = "summary.json"
CONFIG = "config.yaml"
CHECKPOINTS = "checkpoints"


def read_metrics(run_dir, kind=None):
    """The metrics.jsonl records of run_dir (list of dicts), optionally only those of one ``kind``.
    A partial or unparsable line (a crash mid-write) is skipped."""
    path = Path(run_dir) / METRICS
    out = []
    if not path.exists():
        return out
    with open(path) as f:
        for line in f:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(rec, dict) and (kind is None or rec.get("kind") == kind):
                out.append(rec)
    return out


def read_monitor(run_dir):
    """(header dict, rows) of monitor.csv: rows is a list of (r: float, l: int, t: float)."""
    path = Path(run_dir) / MONITOR
    header, rows = {}, []
    if not path.exists():
        return header, rows
    with open(path) as f:
        lines = f.read().split("\n")
    if lines and lines[0].startswith("#"):
        try:
            header = json.loads(lines[0][1:])
        except json.JSONDecodeError:
            header = {}
        lines = lines[1:]
    for line in lines[1:]:  # lines[0] is the "r,l,t" header
        parts = line.split(",")
        if len(parts) != 3:
            continue
        try:
            rows.append((float(parts[0]), int(parts[1]), float(parts[2])))
        except ValueError:
            continue
    return header, rows


def truncate_after(run_dir, step, episodes):
    """Rewrite metrics.jsonl without records after ``step`` (and without partial lines), and
    monitor.csv with only its first ``episodes`` rows: the state of both logs at a checkpoint."""
    run_dir = Path(run_dir)
    path = run_dir / METRICS
    if path.exists():
        keep = [r for r in read_metrics(run_dir) if r.get("step", 0) <= step]
        _rewrite(path, "".join(json.dumps(r) + "\n" for r in keep))
    path = run_dir / MONITOR
    if path.exists():
        with open(path) as f:
            first = f.readline()
        _, rows = read_monitor(run_dir)
        text = first + "r,l,t\n" + "".join(f"{r},{n},{t}\n" for r, n, t in rows[:episodes])
        _rewrite(path, text)


def _rewrite(path, text):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def monitor_row(episode_return, length, seconds):
    """One episode's line of an SB3 Monitor CSV (return, length, seconds since t_start)."""
    return f"{round(episode_return, 6)},{length},{round(seconds, 6)}\n"


def monitor_header(t_start, env_id):
    """The first two lines of an SB3 Monitor CSV."""
    return "#" + json.dumps({"t_start": t_start, "env_id": env_id}) + "\nr,l,t\n"


def histogram_record(hist):
    """JSON-able non-empty bins of a controller.loop.LogHistogram: lower/upper edges in µs and counts."""
    idx = np.nonzero(hist.counts)[0]
    per = hist.PER_OCTAVE
    return {"lo_us": [2.0 ** (i / per) / 1e3 for i in idx.tolist()],
            "hi_us": [2.0 ** ((i + 1) / per) / 1e3 for i in idx.tolist()],
            "counts": hist.counts[idx].tolist()}


def moving_average(values, window):
    """Trailing moving average of a 1-D sequence (shorter window at the start), float64 array."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return v
    w = max(1, min(int(window), v.size))
    c = np.cumsum(np.insert(v, 0, 0.0))
    n = np.arange(1, v.size + 1)
    lo = np.maximum(n - w, 0)
    return (c[n] - c[lo]) / (n - lo)


def finite_or_none(x):
    return x if isinstance(x, (int, float)) and math.isfinite(x) else None

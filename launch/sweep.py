"""`rtu-control sweep`: many `rtu-control train` runs from one file, resumable, then one report.

``rtu-control sweep --config SWEEP.yaml`` expands the file (``launch.sweep_config``) into trials,
validates every trial's train config, and runs the trials that are not done yet on the chosen backend
(``launch.sweep_backends``: a local pool by default, Ray with ``--backend ray``). The sweep folder::

    <sweep>/sweep.yaml        the resolved sweep config
    <sweep>/trials.json       the trials: id, variant, group, task, seed, steps, run_dir, command
    <sweep>/configs/<id>.yaml each trial's complete train config (``rtu-control train --config`` it)
    <sweep>/trials/<id>/      each trial's train results folder (config, metrics, checkpoints, summary)
    <sweep>/logs/<id>.log     each trial's output, every session appended
    <sweep>/status.jsonl      one line per trial outcome: id, state (done / failed / interrupted),
                              exit status, reason, wall_s
    <sweep>/report/           the report (``launch.sweep_report``): table.md, summary.csv/json, curves.png

Re-running the same command skips done trials, resumes interrupted ones from their newest checkpoint
(``train --resume``) and retries failed ones; a folder that holds a different sweep (a trial whose
config changed) is refused, and so is a second sweep while one runs in the folder (``.lock``). One
failing trial is recorded and does not stop the others. SIGINT/SIGTERM stop the sweep: running trials
checkpoint and stop, and the next run continues them. Exit status: 0 when
every trial is done, 1 when a trial failed or the sweep was stopped, 2 for bad input.
"""
import json
import signal
from pathlib import Path

import yaml

from controller.config import ConfigError, to_dict
from launch.sweep_config import expand, load_sweep_config, sweep_dir
from launch.sweep_trials import printable_command, trial_spec

TRIALS, STATUS, CONFIGS = "trials.json", "status.jsonl", "configs"


def _check_same_sweep(out, trials):
    """ConfigError when ``out`` already holds a trial of the same id with another config."""
    for trial in trials:
        path = out / CONFIGS / f"{trial.id}.yaml"
        if path.is_file():
            old = yaml.safe_load(path.read_text())
            if old != trial.data:
                keys = sorted(k for k in set(old) | set(trial.data) if old.get(k) != trial.data.get(k))
                raise ConfigError(f"output {out}: holds another sweep: trial {trial.id} was run with other "
                                  f"values of {', '.join(keys)} (choose another output, or remove that folder)")


def _write_plan(out, cfg, trials):
    """sweep.yaml, trials.json and configs/<id>.yaml; returns {id: config file}."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.yaml").write_text("# rtu-control sweep: resolved config (launch/sweep_config.py)\n"
                                    + yaml.safe_dump(to_dict(cfg), sort_keys=False))
    files = {}
    for trial in trials:
        path = out / CONFIGS / f"{trial.id}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(trial.data, sort_keys=False))
        files[trial.id] = path
    manifest = {"name": out.name, "trials": [
        {"id": t.id, "variant": t.variant, "group": t.group, "task": t.task, "seed": t.seed, "steps": t.steps,
         "run_dir": str(Path(t.data["output"]).relative_to(out)),
         "command": f"rtu-control train --config {files[t.id]}"} for t in trials],
        "report": {"budgets": list(cfg.report.budgets), "last_episodes": cfg.report.last_episodes}}
    (out / TRIALS).write_text(json.dumps(manifest, indent=1))
    return files


class Progress:
    """Counts of done / running / failed trials and an ETA, one line per event. ``slots``: trials that
    run at once (local: the workers; Ray: unknown, so queued trials count as running)."""

    def __init__(self, total, todo, slots, echo):
        self.total, self.done, self.failed, self.outstanding = total, total - todo, 0, todo
        self.slots, self.echo = slots, echo
        self.walls = []       # wall seconds of the trials finished in this session

    def eta(self):
        left = self.total - self.done - self.failed
        if not self.walls or left <= 0:
            return ""
        seconds = sum(self.walls) / len(self.walls) * left / min(self.slots, left)
        return f", ETA {int(seconds // 60)}m{int(seconds % 60):02d}s"

    def line(self, text):
        running = min(self.slots, self.outstanding)
        self.echo(f"[{self.done}/{self.total} done, {running} running, {self.failed} failed{self.eta()}] {text}")


def main_sweep(config_path, overrides=(), echo=print):
    """The `rtu-control sweep --config` command: returns the exit status (ConfigError propagates)."""
    return run_sweep(load_sweep_config(config_path, overrides), config_path, echo)


def run_sweep(cfg, config_path, echo=print):
    """Run the sweep ``cfg`` (a SweepConfig; ``config_path``: its file, for base_config and messages):
    write the plan, run what is not done, write the report; returns the exit status."""
    out = sweep_dir(cfg, config_path)
    trials = expand(cfg, config_path, out)
    ids = [t.id for t in trials]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"{config_path}: two trials share an id (repeated grid values?)")
    _check_same_sweep(out, trials)
    from launch.envcheck import check_env
    for env_id, kwargs in {(t.task, json.dumps(t.data.get("env_kwargs", {}), sort_keys=True)): 0 for t in trials}:
        check_env(env_id, json.loads(kwargs), key=f"{config_path}: env_id")
    out.mkdir(parents=True, exist_ok=True)
    with _lock(out, config_path):
        return _run_trials(cfg, out, trials, echo)


def _run_trials(cfg, out, trials, echo):
    """Write the plan, run the trials not done on cfg's backend, report; the exit status."""
    from launch.sweep_backends import LocalPool, RayPool

    files = _write_plan(out, cfg, trials)
    specs = [trial_spec(t, out, files[t.id]) for t in trials]
    todo = [s for s in specs if s["state_before"] != "done"]
    resumed = sum(s["state_before"] == "partial" for s in todo)
    workers = cfg.usable_workers() if cfg.backend == "local" else 0
    echo(f"rtu-control sweep: {len(trials)} trials -> {out}: {len(trials) - len(todo)} done, {resumed} to resume, "
         f"{len(todo) - resumed} new; backend {cfg.backend}" + (f", {workers} worker(s)" if workers else ""))
    pool = LocalPool(workers) if cfg.backend == "local" else RayPool(cfg.ray_address)
    progress = Progress(len(trials), len(todo), workers or len(todo) or 1, echo)
    by_id = {s["id"]: s for s in todo}
    stopped = []

    def on_signal(signum, frame):
        stopped.append(signal.Signals(signum).name)
        pool.stop()

    def on_outcome(outcome):
        progress.outstanding -= 1
        if outcome["state"] == "failed" and stopped:
            outcome["state"] = "interrupted"
        with open(out / STATUS, "a") as f:
            f.write(json.dumps(outcome) + "\n")
        if outcome["state"] == "done":
            progress.done += 1
            progress.walls.append(outcome["wall_s"])
            progress.line(f"done {outcome['id']} in {outcome['wall_s']:.0f} s")
        elif outcome["state"] == "failed":
            progress.failed += 1
            progress.line(f"FAILED {outcome['id']}: {outcome['reason']} "
                          f"(alone: {printable_command(by_id[outcome['id']])})")
        else:
            progress.line(f"interrupted {outcome['id']} (the next sweep resumes it)")

    old = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if todo:
            progress.line("started")
            pool.run(todo, on_outcome)
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    if stopped:
        echo(f"rtu-control sweep: stopped by {stopped[0]}; run the same command again to continue")
        return 1
    _report(out, echo)
    if progress.failed:
        echo(f"rtu-control sweep: {progress.failed} trial(s) failed (status in {out / STATUS}, output in "
             f"{out / 'logs'}); run the same command again to retry them")
        return 1
    return 0


def _lock(out, config_path):
    """An exclusive lock on ``<out>/.lock`` (the open file); ConfigError when another sweep holds it:
    two sweeps in one folder would run, and clean up, the same trials."""
    import fcntl
    f = open(out / ".lock", "w")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.close()
        raise ConfigError(f"{config_path}: output {out}: another sweep is running in that folder") from None
    return f


def _report(out, echo):
    """The sweep's report, or one line saying why there is none."""
    try:
        from launch.sweep_report import report
        report(out, echo=echo)
    except ImportError as err:
        echo(f"no report: {err}")


def main_report(sweep, overrides=(), echo=print):
    """`rtu-control sweep --report SWEEP_DIR [--set report.budgets=[...]]`: the report only."""
    from launch.sweep_report import report
    from controller.config import apply_overrides, build_config
    from launch.sweep_config import ReportConfig

    data = apply_overrides({}, overrides)
    unknown = sorted(set(data) - {"report"})
    if unknown:
        raise ConfigError(f"--report: only report.* keys can be set, found {unknown[0]}")
    given = data.get("report", {})
    rep = build_config(ReportConfig, given, "report")
    report(sweep, budgets=list(rep.budgets) if "budgets" in given else None,
           last_episodes=rep.last_episodes if "last_episodes" in given else None, echo=echo)
    return 0

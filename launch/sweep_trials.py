"""One sweep trial on disk and as a process: its state, its command, and running it.

A trial is an ordinary `rtu-control train` run in its own process (so a crash, a divergence or a
SIGKILL takes down only that trial), with numba and BLAS threads pinned to 1 (one trial per core). Its
state is read from its run folder, never from the sweep's own records, so that a re-run decides from
what is really on disk:

* ``done``: summary.json says the run reached its steps;
* ``partial``: the run has a checkpoint (it was interrupted, or failed after it started): re-running the
  sweep continues it with ``rtu-control train --resume`` from its newest valid checkpoint;
* ``new``: nothing usable (no folder, or one without a checkpoint, which is removed before the start).

``run_trial`` takes and returns plain dicts so that it runs unchanged in a Ray worker.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from launch import results as R

PINNED_THREADS = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                  "MKL_NUM_THREADS": "1"}
_PR_SET_PDEATHSIG = 1


def trial_state(run_dir):
    """``done``, ``partial`` or ``new`` (module docstring) for the run folder ``run_dir``."""
    run_dir = Path(run_dir)
    try:
        summary = json.loads((run_dir / R.SUMMARY).read_text())
        if summary.get("stop_reason") == "steps reached" and summary.get("steps") == summary.get("target_steps"):
            return "done"
    except (OSError, ValueError):
        pass
    ckpts = run_dir / R.CHECKPOINTS
    if (run_dir / R.CONFIG).is_file() and ckpts.is_dir() and any(ckpts.glob("ckpt-*.npz")):
        return "partial"
    return "new"


def trial_spec(trial, sweep, config_file):
    """The plain-dict description of how to run ``trial`` now (what ``run_trial`` takes): its id, the
    train arguments (a new run from ``config_file``, or --resume of its folder), its log file."""
    run_dir = Path(trial.data["output"])
    state = trial_state(run_dir)
    if state == "new" and run_dir.exists():
        shutil.rmtree(run_dir)    # started but never checkpointed: nothing to keep
    args = ["train", "--resume", str(run_dir)] if state == "partial" else ["train", "--config", str(config_file)]
    log = Path(sweep) / "logs" / f"{trial.id}.log"
    return {"id": trial.id, "state_before": state, "args": args, "run_dir": str(run_dir), "log": str(log),
            "cwd": os.getcwd()}


def printable_command(spec):
    """The trial's own command line, as a user would type it."""
    return " ".join(["rtu-control"] + spec["args"])


def _die_with_parent():
    """In the child: SIGTERM when the sweep process dies, so that a killed sweep leaves no orphan trial
    writing to its folder (train checkpoints on SIGTERM; the next sweep resumes it)."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def _last_error(log_path):
    """The last non-empty line of a trial's log that reads like an error, else its last line."""
    try:
        lines = [ln.strip() for ln in Path(log_path).read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    errors = [ln for ln in lines if "error" in ln.lower()]
    return (errors or lines or [""])[-1][:300]


def run_trial(spec, on_start=None):
    """Run one trial to its end in a child process (``python -m launch <args>``, output appended to its
    log). Returns the outcome dict: id, state (``done`` or ``failed``), exit (the process's status;
    negative: killed by that signal), reason (empty when done), wall_s, started (unix s).
    ``on_start(popen)`` is called with the child once it runs (the local pool keeps it to stop it)."""
    log = Path(spec["log"])
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **PINNED_THREADS}
    started, t0 = time.time(), time.monotonic()
    with open(log, "a") as out:
        out.write(f"# {time.strftime('%Y-%m-%d %H:%M:%S')}: {printable_command(spec)}\n")
        out.flush()
        proc = subprocess.Popen([sys.executable, "-m", "launch", *spec["args"]], stdout=out,
                                stderr=subprocess.STDOUT, cwd=spec["cwd"], env=env,
                                preexec_fn=_die_with_parent)
        if on_start is not None:
            on_start(proc)
        code = proc.wait()
    state = trial_state(spec["run_dir"])
    outcome = {"id": spec["id"], "state": "done" if code == 0 and state == "done" else "failed", "exit": code,
               "reason": "", "wall_s": round(time.monotonic() - t0, 2), "started": round(started, 3)}
    if outcome["state"] == "failed":
        if code < 0:
            outcome["reason"] = f"killed by {signal.Signals(-code).name}"
        elif code == 0:
            outcome["reason"] = f"stopped before its steps ({state}; see {log.name})"
        else:
            outcome["reason"] = _last_error(log) or f"exit status {code}"
    return outcome

"""`rtu-control sweep`: expansion and validation, the local pool and Ray, failures, kill and re-run."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from controller.config import ConfigError
from launch.sweep_config import expand, load_sweep_config
from launch.sweep_trials import trial_state

TRAIN = {"steps": 1500, "plots": False, "progress": "none", "checkpoint_every": 500,
         "agent": {"n_units": 16}}


def _write(tmp_path, name="s", **fields):
    data = {"output": str(tmp_path / name), "base_config": "cartpole_p", "train": TRAIN, **fields}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _run(path, *args, timeout=300):
    return subprocess.run([sys.executable, "-m", "launch", "sweep", "--config", str(path), *args],
                          capture_output=True, text=True, timeout=timeout)


def _status(sweep):
    return [json.loads(line) for line in open(Path(sweep) / "status.jsonl")]


# ------------------------------------------------------------------ expansion
def test_expand_crosses_variants_with_the_grid_in_order(tmp_path):
    path = _write(tmp_path, grid={"env_id": ["CartPole-P-v1", "CartPole-v1"], "seed": [0, 1],
                                  "agent.lam": [0.8, 0.99]},
                  variants={"rtu": {"agent.cell": "rtu-linear"}, "ff": {"agent": {"cell": "none"}}})
    cfg = load_sweep_config(path)
    trials = expand(cfg, path, tmp_path / "s")
    assert len(trials) == 2 * 2 * 2 * 2
    assert trials[0].id == "rtu/env_id=CartPole-P-v1/seed=0/agent.lam=0.8"
    assert trials[-1].id == "ff/env_id=CartPole-v1/seed=1/agent.lam=0.99"
    assert trials[-1].group == "ff, agent.lam=0.99"       # env_id and seed are not part of the group
    assert (trials[-1].task, trials[-1].seed, trials[-1].steps) == ("CartPole-v1", 1, 1500)
    data = trials[-1].data
    assert data["agent"] == {"cell": "none", "n_units": 16, "lam": 0.99}   # base, train, variant, grid
    assert data["env_id"] == "CartPole-v1" and data["output"] == str(tmp_path / "s" / "trials" / trials[-1].id)
    assert len({t.id for t in trials}) == len(trials)


def test_no_variants_is_one_base_variant(tmp_path):
    path = _write(tmp_path, grid={"seed": [3]})
    trials = expand(load_sweep_config(path), path, tmp_path / "s")
    assert [(t.id, t.variant, t.group, t.seed) for t in trials] == [("base/seed=3", "base", "base", 3)]


@pytest.mark.parametrize("fields, words", [
    ({"grid": {"agent.lamb": [0.9]}}, ["trial base/agent.lamb=0.9", "agent.lamb: unknown key"]),
    ({"variants": {"x": {"steps": -1}}}, ["trial x", "steps"]),
    ({"grid": {"seed": []}}, ["grid.seed", "non-empty"]),
    ({"grid": {"seed": [1, 1]}}, ["grid.seed", "distinct"]),
    ({"variants": {"a/b": {}}}, ["variants.a/b"]),
    ({"workers": -1}, ["workers"]),
    ({"backend": "slurm"}, ["backend"]),
])
def test_bad_sweeps_name_the_key(tmp_path, fields, words):
    path = _write(tmp_path, **fields)
    with pytest.raises(ConfigError) as err:
        expand(load_sweep_config(path), path, tmp_path / "s")
    for word in words:
        assert word in str(err.value)


def test_bad_input_exits_2_and_writes_nothing(tmp_path):
    path = _write(tmp_path, grid={"env_id": ["NoSuchEnv-v0"]})
    proc = _run(path)
    assert proc.returncode == 2 and "NoSuchEnv-v0" in proc.stderr
    assert not (tmp_path / "s").exists()
    proc = subprocess.run([sys.executable, "-m", "launch", "sweep", "--report", str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "trials.json" in proc.stderr


# ------------------------------------------------------------------ running
def _check_report_matches_runs(sweep):
    """Each report cell at the trials' last step is, per seed, exactly the runs' own summary figure."""
    manifest = json.loads((sweep / "trials.json").read_text())
    report = json.loads((sweep / "report" / "summary.json").read_text())
    steps = manifest["trials"][0]["steps"]
    for row in (r for r in report["rows"] if r["budget"] == steps):
        mine = [t for t in manifest["trials"] if (t["task"], t["group"]) == (row["task"], row["group"])
                and trial_state(sweep / t["run_dir"]) == "done"]
        if not mine:
            assert row["n"] == 0
            continue
        recent = [json.loads((sweep / t["run_dir"] / "summary.json").read_text())["recent_return"] for t in mine]
        assert row["per_seed"] == recent
        assert row["mean"] == pytest.approx(float(np.mean(recent)), rel=1e-12)
        assert row["n"] == len(mine)


def test_a_2x3x2_sweep_on_the_local_pool_matches_its_runs(tmp_path):
    path = _write(tmp_path, grid={"env_id": ["CartPole-P-v1", "CartPole-v1"], "seed": [0, 1, 2]},
                  variants={"rtu": {}, "ff": {"agent.cell": "none"}}, report={"budgets": [750, 1500]})
    proc = _run(path, "--workers", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    sweep = tmp_path / "s"
    outcomes = _status(sweep)
    assert len(outcomes) == 12 and all(o["state"] == "done" for o in outcomes)
    starts = sorted(o["started"] for o in outcomes)
    assert starts[1] - starts[0] < min(o["wall_s"] for o in outcomes)   # two ran at once
    _check_report_matches_runs(sweep)
    assert "12/12 done" in proc.stdout
    for name in ("table.md", "summary.csv", "summary.json"):
        assert (sweep / "report" / name).is_file()
    # the printed command of a trial is an ordinary train run of its own config
    trial = json.loads((sweep / "trials.json").read_text())["trials"][0]
    cfg = yaml.safe_load((sweep / "trials" / trial["id"] / "config.yaml").read_text())
    assert cfg["seed"] == trial["seed"] and cfg["env_id"] == trial["task"]
    # re-running does nothing more
    proc = _run(path)
    assert proc.returncode == 0 and "12 done, 0 to resume, 0 new" in proc.stdout
    assert len(_status(sweep)) == 12


def test_a_failing_trial_is_recorded_and_the_others_finish(tmp_path):
    path = _write(tmp_path, grid={"seed": [0, 1]},
                  variants={"ok": {}, "diverges": {"divergence_delta": 1.0e-9, "max_rollbacks": 0}})
    proc = _run(path, "--workers", "2")
    assert proc.returncode == 1
    by_id = {o["id"]: o for o in _status(tmp_path / "s")}
    assert [by_id[f"ok/seed={k}"]["state"] for k in (0, 1)] == ["done", "done"]
    for k in (0, 1):
        failed = by_id[f"diverges/seed={k}"]
        assert failed["state"] == "failed" and failed["exit"] == 2 and "max_rollbacks" in failed["reason"]
    assert "FAILED diverges/seed=0" in proc.stdout and "rtu-control train --config" in proc.stdout
    report = json.loads((tmp_path / "s" / "report" / "summary.json").read_text())
    assert sorted(report["unfinished"]) == ["diverges/seed=0", "diverges/seed=1"]


def test_another_sweep_in_the_same_folder_is_refused(tmp_path):
    path = _write(tmp_path, grid={"seed": [0]})
    assert _run(path).returncode == 0
    path = _write(tmp_path, grid={"seed": [0]}, train={**TRAIN, "steps": 2000})
    proc = _run(path)
    assert proc.returncode == 2 and "holds another sweep" in proc.stderr and "steps" in proc.stderr


def _wait(predicate, timeout=120):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _checkpoints(run_dir):
    return sorted(int(p.stem.split("-")[1]) for p in (Path(run_dir) / "checkpoints").glob("ckpt-*.npz"))


def test_killed_sweep_and_killed_trial_rerun_finish_only_the_missing_work(tmp_path):
    train = {**TRAIN, "steps": 40000, "checkpoint_every": 2000}
    path = _write(tmp_path, grid={"seed": [0, 1, 2]}, train=train)
    sweep = tmp_path / "s"
    run = [sys.executable, "-m", "launch", "sweep", "--config", str(path), "--workers", "1"]
    proc = subprocess.Popen(run, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    first, second = (sweep / "trials" / f"base/seed={k}" for k in (0, 1))
    try:
        assert _wait(lambda: trial_state(first) == "done" and len(_checkpoints(second)) >= 2)
    finally:
        proc.kill()                                   # SIGKILL of the sweep itself
        proc.communicate()
    # the running trial is told (parent death) and checkpoints; nothing keeps running on its own
    assert _wait(lambda: (second / "summary.json").exists(), 60)
    assert trial_state(first) == "done" and trial_state(second) == "partial"
    assert trial_state(sweep / "trials" / "base/seed=2") == "new"
    done_mtime = (first / "summary.json").stat().st_mtime_ns

    # a second session: SIGKILL one trial's own process while it runs
    proc = subprocess.Popen(run, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    third = sweep / "trials" / "base/seed=2"
    try:
        assert _wait(lambda: (third / "metrics.jsonl").exists() and len(_checkpoints(third)) >= 2)
        start = json.loads((third / "metrics.jsonl").read_text().splitlines()[0])
        os.kill(start["pid"], signal.SIGKILL)
        out, _ = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 1
    assert "1 done, 1 to resume, 1 new" in out
    assert "FAILED base/seed=2: killed by SIGKILL" in out
    assert (first / "summary.json").stat().st_mtime_ns == done_mtime     # the done trial was not touched
    resumes = [r for r in map(json.loads, open(second / "metrics.jsonl")) if r["kind"] == "resume"]
    assert len(resumes) == 1 and trial_state(second) == "done"

    # a third session only resumes the killed trial
    proc = subprocess.run(run, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout
    assert "2 done, 1 to resume, 0 new" in proc.stdout
    assert all(trial_state(sweep / "trials" / f"base/seed={k}") == "done" for k in range(3))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_the_same_sweep_on_a_local_ray_instance(tmp_path):
    ray = pytest.importorskip("ray")
    path = _write(tmp_path, grid={"env_id": ["CartPole-P-v1", "CartPole-v1"], "seed": [0, 1, 2]},
                  variants={"rtu": {}, "ff": {"agent.cell": "none"},
                            "diverges": {"divergence_delta": 1.0e-9, "max_rollbacks": 0}},
                  backend="ray")
    from launch.sweep import main_sweep
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        lines = []
        code = main_sweep(path, echo=lines.append)
    finally:
        ray.shutdown()
    sweep = tmp_path / "s"
    by_state = {}
    for o in _status(sweep):
        by_state.setdefault(o["state"], []).append(o["id"])
    outcomes = "\n".join(lines + [json.dumps(o) for o in _status(sweep)])   # what to read when it fails
    assert code == 1, outcomes
    assert len(by_state.get("done", [])) == 12 and len(by_state.get("failed", [])) == 6, outcomes
    assert all(i.startswith("diverges/") for i in by_state["failed"]), outcomes
    _check_report_matches_runs(sweep)


def test_the_commands_import_neither_ray_nor_tensorboardx():
    """Ray and tensorboardX stay optional: importing the commands (sweep and its backends included)
    loads neither, nor torch."""
    code = ("import sys, json, launch.cli, launch.train, launch.trainer, launch.deploy, launch.sweep, "
            "launch.sweep_backends, launch.sweep_report, launch.tb_logger; print(json.dumps(sorted(m for m in "
            "sys.modules if m.split('.')[0] in ('ray', 'tensorboardX', 'torch'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_a_second_sweep_in_a_running_sweeps_folder_is_refused(tmp_path):
    import fcntl
    path = _write(tmp_path, grid={"seed": [0]})
    (tmp_path / "s").mkdir()
    with open(tmp_path / "s" / ".lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        proc = _run(path)
    assert proc.returncode == 2 and "another sweep is running" in proc.stderr
    assert not (tmp_path / "s" / "trials").exists()

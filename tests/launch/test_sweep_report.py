"""The sweep report: scores at a budget (equal to the train summary's recent_return at the end),
mean / standard error / IQM with its bootstrap interval, the four report files, unfinished trials kept
out of the averages, and the errors for a folder that is not a sweep and for bad budgets. Sweep folders
are written by hand the way `rtu-control sweep` and `train` lay them out."""
import csv
import importlib.util
import json
import math

import numpy as np
import pytest

from launch.sweep_report import aggregate, report, score_at

needs_scipy = pytest.mark.skipif(importlib.util.find_spec("scipy") is None, reason="scipy is not installed")

STEPS = 1000


def _episodes(rng, count, steps=STEPS):
    """Episode records ending at increasing steps up to ``steps``, with random float returns."""
    ends = np.sort(rng.choice(np.arange(1, steps + 1), size=count, replace=False))
    return [{"kind": "episode", "step": int(s), "episode": i + 1, "return": float(r), "length": 1}
            for i, (s, r) in enumerate(zip(ends, rng.normal(50.0, 20.0, count)))]


def _write_run(run_dir, episodes, stop_reason="steps reached", summary=True, steps=STEPS):
    run_dir.mkdir(parents=True)
    lines = [json.dumps({"kind": "start", "step": 0})] + [json.dumps(e) for e in episodes]
    (run_dir / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    if summary:
        returns = [e["return"] for e in episodes]
        recent = float(np.mean(returns[-10:])) if returns else None   # as the trainer computes it
        (run_dir / "summary.json").write_text(json.dumps(
            {"steps": steps, "target_steps": steps, "episodes": len(episodes), "recent_return": recent,
             "stop_reason": stop_reason}))


def _sweep(root, rng, seeds=3, unfinished=(), report_section=None):
    """A sweep folder: groups rtu and lstm on two tasks, ``seeds`` seeds each; the trial ids in
    ``unfinished`` map to "missing" (no summary.json) or a stop reason."""
    trials = []
    for task in ("CartPole-P-v1", "Pendulum-P-v1"):
        for group in ("rtu", "lstm"):
            for seed in range(seeds):
                tid = f"{group}/env_id={task}/seed={seed}"
                run_dir = f"trials/{tid}"
                trials.append({"id": tid, "variant": group, "group": group, "task": task, "seed": seed,
                               "steps": STEPS, "run_dir": run_dir, "command": "rtu-control train"})
                state = dict(unfinished).get(tid)
                _write_run(root / run_dir, _episodes(rng, 40), summary=state != "missing",
                           stop_reason=state if state not in (None, "missing") else "steps reached")
    spec = {"name": "test", "trials": trials,
            "report": report_section or {"budgets": [500, STEPS], "last_episodes": 10}}
    (root / "trials.json").write_text(json.dumps(spec))
    return trials


def test_score_at_the_final_budget_is_the_summary_recent_return_exactly(tmp_path, rng):
    from launch.results import read_metrics

    for i in range(5):
        d = tmp_path / f"run{i}"
        _write_run(d, _episodes(rng, int(rng.integers(1, 60))))
        recent = json.loads((d / "summary.json").read_text())["recent_return"]
        assert score_at(read_metrics(d, "episode"), STEPS, 10) == recent


def test_score_at_leaves_out_episodes_after_the_budget():
    eps = [{"step": s, "return": r} for s, r in ((100, 1.0), (200, 2.0), (300, 3.0), (400, 100.0))]
    assert score_at(eps, 300, 2) == 2.5
    assert score_at(eps, 399, 10) == 2.0
    assert score_at(eps, 400, 1) == 100.0
    assert math.isnan(score_at(eps, 99, 10))


@needs_scipy
def test_aggregate_mean_stderr_and_iqm_by_hand():
    x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    a = aggregate(np.array(x))
    assert a["n"] == 8 and a["mean"] == 4.5 and a["per_seed"] == x
    sd = math.sqrt(sum((v - 4.5) ** 2 for v in x) / 7)
    assert a["stderr"] == pytest.approx(sd / math.sqrt(8), rel=1e-12)
    assert a["iqm"] == 4.5   # trimmed 25 % each side: mean of 3, 4, 5, 6
    assert aggregate(np.array([1.0, 1.0, 1.0, 10.0]))["iqm"] == 1.0


@needs_scipy
def test_aggregate_bootstrap_interval_contains_the_iqm_and_is_reproducible():
    x = np.random.default_rng(3).normal(0.0, 1.0, 10)
    a, b = aggregate(x), aggregate(x)
    assert a["iqm_lo"] < a["iqm"] < a["iqm_hi"]
    assert (a["iqm_lo"], a["iqm_hi"]) == (b["iqm_lo"], b["iqm_hi"])
    one = aggregate(np.array([2.0]))
    assert one["n"] == 1 and math.isnan(one["stderr"]) and one["iqm_lo"] == one["iqm_hi"] == 2.0
    same = aggregate(np.array([3.0, 3.0, 3.0]))
    assert same["iqm_lo"] == same["iqm_hi"] == 3.0


@needs_scipy
def test_report_writes_the_four_files_and_keeps_unfinished_trials_out(tmp_path, rng):
    missing, stopped = "rtu/env_id=CartPole-P-v1/seed=1", "lstm/env_id=Pendulum-P-v1/seed=2"
    trials = _sweep(tmp_path, rng, unfinished={missing: "missing", stopped: "SIGTERM"})
    echoed = []
    result = report(tmp_path, echo=echoed.append)
    out = tmp_path / "report"
    assert sorted(result["unfinished"]) == sorted([missing, stopped])
    assert result["budgets"] == [500, STEPS] and result["last_episodes"] == 10
    assert json.loads((out / "summary.json").read_text()) == result

    rows = result["rows"]
    assert [(r["task"], r["group"], r["budget"]) for r in rows] == [
        (t, g, b) for t in ("CartPole-P-v1", "Pendulum-P-v1") for g in ("rtu", "lstm") for b in (500, STEPS)]
    with open(out / "summary.csv") as f:
        table = list(csv.DictReader(f))
    assert len(table) == len(rows)
    for c, r in zip(table, rows):
        assert (c["task"], c["group"], int(c["budget"]), int(c["n"])) == (r["task"], r["group"], r["budget"],
                                                                           r["n"])
        for key in ("mean", "stderr", "iqm", "iqm_lo", "iqm_hi"):
            assert float(c[key]) == r[key]
        assert [float(v) for v in c["per_seed"].split()] == r["per_seed"]

    # the final-budget cells average exactly the finished trials' recent_return
    for r in (r for r in rows if r["budget"] == STEPS):
        finished = [t for t in trials if (t["task"], t["group"]) == (r["task"], r["group"])
                    and t["id"] not in (missing, stopped)]
        expected = [json.loads((tmp_path / t["run_dir"] / "summary.json").read_text())["recent_return"]
                    for t in finished]
        assert r["n"] == len(finished) and r["per_seed"] == expected
    assert {(r["task"], r["group"]): r["n"] for r in rows if r["budget"] == STEPS} == {
        ("CartPole-P-v1", "rtu"): 2, ("CartPole-P-v1", "lstm"): 3, ("Pendulum-P-v1", "rtu"): 3,
        ("Pendulum-P-v1", "lstm"): 2}

    md = (out / "table.md").read_text()
    assert md.strip() == echoed[0].strip()
    assert md.count("| task | group |") == 2 and missing in md and stopped in md and "SIGTERM" in md
    first = rows[0]
    assert f"{first['mean']:.2f} ± {first['stderr']:.2f}" in md
    assert f"{first['iqm']:.2f} [{first['iqm_lo']:.2f}, {first['iqm_hi']:.2f}]" in md


@needs_scipy
def test_report_draws_the_curves(tmp_path, rng):
    pytest.importorskip("matplotlib")
    _sweep(tmp_path, rng, seeds=2)
    report(tmp_path, out=tmp_path / "elsewhere", echo=lambda *a: None)
    png = tmp_path / "elsewhere" / "curves.png"
    assert png.stat().st_size > 1000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (tmp_path / "report").exists()


@needs_scipy
def test_a_trial_without_an_episode_by_a_budget_is_left_out_of_that_cell(tmp_path, rng):
    _sweep(tmp_path, rng, seeds=2)
    run = tmp_path / "trials/rtu/env_id=CartPole-P-v1/seed=0"
    late = [{"kind": "episode", "step": 900, "episode": 1, "return": 7.0, "length": 900}]
    (run / "metrics.jsonl").write_text(json.dumps(late[0]) + "\n")
    rows = report(tmp_path, budgets=[500, 900], echo=lambda *a: None)["rows"]
    cell = {r["budget"]: r for r in rows if (r["task"], r["group"]) == ("CartPole-P-v1", "rtu")}
    assert cell[500]["n"] == 1 and cell[900]["n"] == 2 and 7.0 in cell[900]["per_seed"]


@needs_scipy
def test_a_run_shorter_than_a_budget_is_left_out_of_that_cell(tmp_path, rng):
    trials = _sweep(tmp_path, rng, seeds=2)
    short = next(t for t in trials if (t["task"], t["group"], t["seed"]) == ("Pendulum-P-v1", "lstm", 1))
    short["steps"] = 500
    (tmp_path / "trials.json").write_text(json.dumps({"name": "test", "trials": trials}))
    run = tmp_path / short["run_dir"]
    (run / "summary.json").write_text(json.dumps({"steps": 500, "target_steps": 500,
                                                  "stop_reason": "steps reached"}))
    rows = report(tmp_path, budgets=[500, STEPS], echo=lambda *a: None)["rows"]
    cell = {r["budget"]: r["n"] for r in rows if (r["task"], r["group"]) == ("Pendulum-P-v1", "lstm")}
    assert cell == {500: 2, STEPS: 1}


@needs_scipy
def test_budgets_default_to_the_largest_trial_steps(tmp_path, rng):
    _sweep(tmp_path, rng, seeds=2, report_section={"budgets": [], "last_episodes": 5})
    result = report(tmp_path, echo=lambda *a: None)
    assert result["budgets"] == [STEPS] and result["last_episodes"] == 5


def test_a_folder_without_trials_json_is_not_a_sweep_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a sweep folder") as err:
        report(tmp_path, echo=lambda *a: None)
    assert str(tmp_path) in str(err.value)


@needs_scipy
def test_budgets_below_one_are_refused(tmp_path, rng):
    _sweep(tmp_path, rng, seeds=1)
    with pytest.raises(ValueError, match="budgets"):
        report(tmp_path, budgets=[0], echo=lambda *a: None)
    assert not (tmp_path / "report").exists()


def test_without_scipy_the_report_says_what_to_install(tmp_path, rng, monkeypatch):
    import sys

    _sweep(tmp_path, rng, seeds=1)
    monkeypatch.setitem(sys.modules, "scipy", None)
    with pytest.raises(ImportError, match=r"rtu-control\[sweep\]"):
        report(tmp_path, echo=lambda *a: None)
    assert not (tmp_path / "report").exists()

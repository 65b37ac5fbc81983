"""`rtu-control plot`: PNGs from a run folder, the comparison figure, the message without matplotlib,
and the error for a folder that is not a run. Tests that draw are skipped when matplotlib is not
installed (the run-time-only install)."""
import sys

import pytest

from launch.cli import main
from launch.train import main_train


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("plot") / "run"
    main_train(None, ["env_id=CartPole-P-v1", "steps=800", f"output={d}", "agent.n_units=8", "plots=false",
                      "progress=none"], echo=lambda *a, **k: None)
    return d


def test_plot_writes_the_learning_curve_and_latency_histogram(run_dir, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert not (run_dir / "learning_curve.png").exists()
    compare = tmp_path / "compare.png"
    assert main(["plot", str(run_dir), "--compare", str(compare)]) == 0
    out = capsys.readouterr().out
    for name in ("learning_curve.png", "latency.png"):
        path = run_dir / name
        assert path.stat().st_size > 1000 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"wrote {path}" in out
    assert compare.stat().st_size > 1000


def test_plot_works_from_the_monitor_csv_alone(run_dir, tmp_path):
    pytest.importorskip("matplotlib")
    import shutil

    d = tmp_path / "copy"
    d.mkdir()
    shutil.copy(run_dir / "monitor.csv", d / "monitor.csv")
    assert main(["plot", str(d)]) == 0
    assert (d / "learning_curve.png").exists() and not (d / "latency.png").exists()


def test_plot_without_matplotlib_prints_one_message(run_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    for name in ("learning_curve.png", "latency.png"):
        (run_dir / name).unlink(missing_ok=True)
    assert main(["plot", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert out.count("matplotlib is not installed") == 1
    assert not (run_dir / "learning_curve.png").exists()


def test_plot_of_a_folder_that_is_not_a_run_exits_2(tmp_path, capsys):
    assert main(["plot", str(tmp_path)]) == 2
    assert "not a training run folder" in capsys.readouterr().err


def _bench_folder(root, env_ids, cells, seeds, episodes=30):
    """A `bench learning` output folder written by hand: summary.json whose recorded curve paths no
    longer exist (a moved folder) and curves/<env>/<cell>/seed<k>.jsonl."""
    import json

    import numpy as np

    root.mkdir(parents=True)
    runs = []
    for env_id in env_ids:
        for cell in cells:
            for seed in seeds:
                curve = root / "curves" / env_id / cell / f"seed{seed}.jsonl"
                curve.parent.mkdir(parents=True, exist_ok=True)
                rng = np.random.default_rng(seed)
                curve.write_text("".join(json.dumps({"step": 100 * (k + 1), "return": float(k + rng.normal()),
                                                     "length": 100}) + "\n" for k in range(episodes)))
                runs.append({"env_id": env_id, "cell": cell, "seed": seed, "steps": 100 * episodes,
                             "curve": f"/gone/{env_id}/{cell}/seed{seed}.jsonl"})
    (root / "summary.json").write_text(json.dumps({"runs": runs, "summary": []}))
    return root


def test_plot_of_bench_learning_folders_puts_masked_and_full_in_one_panel(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from launch.plot import task_of

    masked = _bench_folder(tmp_path / "masked", ["HalfCheetah-P-v5", "Hopper-P-v5"], ["rtu-linear", "none"],
                           [0, 1, 2])
    full = _bench_folder(tmp_path / "full", ["HalfCheetah-v5", "Hopper-v5"], ["none"], [0, 1])
    out = tmp_path / "gap.png"
    assert main(["plot", str(masked), str(full), "--compare", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"wrote {out}" in capsys.readouterr().out
    assert task_of("HalfCheetah-P-v5") == task_of("HalfCheetah-v5") == "HalfCheetah-v5"
    assert task_of("CartPole-P-v1") == "CartPole-v1"


def test_seed_band_is_the_mean_and_standard_error_over_the_seeds_present():
    import numpy as np

    from launch.plot import seed_band

    curves = np.array([[np.nan, 1.0, 2.0, 3.0],
                       [np.nan, np.nan, 4.0, 5.0],
                       [np.nan, np.nan, 6.0, 10.0]])
    mean, stderr = seed_band(curves)
    assert np.isnan(mean[0]) and mean[1] == 1.0 and stderr[1] == 0.0
    np.testing.assert_allclose(mean[2:], [4.0, 6.0])
    np.testing.assert_allclose(stderr[2:], [np.std([2, 4, 6], ddof=1) / np.sqrt(3),
                                            np.std([3, 5, 10], ddof=1) / np.sqrt(3)])


@pytest.mark.parametrize("extra, message", [([], "give --compare FILE"), (["run"], "not both")])
def test_plot_of_bench_folders_without_compare_or_mixed_with_runs_exits_2(run_dir, tmp_path, capsys,
                                                                           extra, message):
    bench = _bench_folder(tmp_path / "bench", ["Hopper-P-v5"], ["none"], [0])
    args = ["plot", str(bench)] + ([str(run_dir), "--compare", str(tmp_path / "x.png")] if extra else [])
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_plot_of_a_bench_folder_with_a_missing_curve_names_it(tmp_path, capsys):
    bench = _bench_folder(tmp_path / "bench", ["Hopper-P-v5"], ["none"], [0, 1])
    (bench / "curves" / "Hopper-P-v5" / "none" / "seed1.jsonl").unlink()
    assert main(["plot", str(bench), "--compare", str(tmp_path / "x.png")]) == 2
    assert "no curve for Hopper-P-v5 none seed 1" in capsys.readouterr().err


def test_plot_of_a_sweep_folder_writes_its_report(tmp_path, capsys):
    """`rtu-control plot SWEEP_DIR` is `sweep --report SWEEP_DIR`."""
    pytest.importorskip("scipy")
    import json

    sweep = tmp_path / "sw"
    run = sweep / "trials" / "base" / "seed=0"
    run.mkdir(parents=True)
    returns = [float(k) for k in range(12)]
    run.joinpath("metrics.jsonl").write_text("".join(
        json.dumps({"kind": "episode", "step": 10 * (k + 1), "return": r}) + "\n" for k, r in enumerate(returns)))
    run.joinpath("summary.json").write_text(json.dumps({"stop_reason": "steps reached", "steps": 120,
                                                        "target_steps": 120, "recent_return": 6.5}))
    sweep.joinpath("trials.json").write_text(json.dumps({"name": "sw", "trials": [
        {"id": "base/seed=0", "variant": "base", "group": "base", "task": "X-v0", "seed": 0, "steps": 120,
         "run_dir": "trials/base/seed=0", "command": ""}], "report": {"budgets": [], "last_episodes": 10}}))
    assert main(["plot", str(sweep)]) == 0
    rows = json.loads((sweep / "report" / "summary.json").read_text())["rows"]
    assert rows[0]["per_seed"] == [6.5] and "X-v0" in capsys.readouterr().out
    assert main(["plot", str(sweep), str(tmp_path)]) == 2

"""`rtu-control plot`: PNGs from a run folder, the comparison figure, the message without matplotlib,
and the error for a folder that is not a run."""
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

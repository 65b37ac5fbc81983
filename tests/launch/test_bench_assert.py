"""`rtu-control bench --assert BUDGETS.yaml` (launch.bench_assert, latency_budgets, latency_measure) and the
``latency_budget`` pytest fixture (launch.pytest_latency): bad files exit 2 naming the key, budgets that
hold exit 0 and one that cannot hold exits 1 with the table, a recorded baseline is compared against.

Only ``test_the_packaged_budgets_hold`` depends on the machine's speed: it is the project's own CI check,
with budgets about 3x the reference machine's figures. The others use budgets that always hold (1e6) or
never can (0.001 µs). Runs are kept short (few ticks); every agent here is the paper-size float32 agent
whose kernels the rest of the suite compiles anyway."""
import json

import pytest

from controller.config import ConfigError, load_config
from launch.cli import main, packaged_config
from launch.latency_budgets import FIGURES, BudgetsConfig, load_budgets

SHORT = ["ticks=100", "repeats=2", "warmup_ticks=10", "calibration_every=10"]


def _sets(items):
    return [a for item in items for a in ("--set", item)]


def _write(tmp_path, text, name="budgets.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.latency
def test_the_packaged_budgets_hold(tmp_path, capsys):
    """The CI check: the packaged example, unchanged but for where its JSON goes."""
    out = tmp_path / "assert.json"
    status = main(["bench", "--assert", "budgets", "--set", f"output={out}"])
    text = capsys.readouterr().out
    assert status == 0, text
    assert "pass: every budget holds" in text and "act_learn_p50" in text
    result = json.loads(out.read_text())
    assert result["status"] == 0 and {r["result"] for r in result["rows"]} == {"pass"}
    assert set(result["measured"]["figures"]) == set(FIGURES)
    assert len(result["measured"]["calibration_blocks_us"]) == 5
    for f in result["measured"]["figures"].values():
        assert 0 < f["us"] and 0 < f["ratio"] and len(f["blocks_us"]) == 5


def test_the_packaged_budgets_file_validates_and_names_the_paper_agent():
    cfg, spec = load_budgets(packaged_config("budgets.yaml"))
    assert (spec.agent.n_units, spec.agent.encoder_width, spec.agent.head_width) == (192, 64, 64)
    assert (spec.obs_dim, spec.action_dim, spec.agent.dtype) == (17, 6, "float32")
    assert load_config(BudgetsConfig, packaged_config("budgets.yaml")) == cfg


GOOD = "budgets:\n  act_p50: {max_us: 1.0e6}\n"


@pytest.mark.parametrize("text, message", [
    ("", "no settings"),
    ("budgets: {}\n", "budgets: expected a mapping of figures"),
    ("budgets:\n  act_p51: {max_us: 3}\n", "budgets.act_p51: expected a figure among act_p50"),
    ("budgets:\n  act_p50: {}\n", "budgets.act_p50: expected at least one of max_us, max_ratio"),
    ("budgets:\n  act_p50: 3\n", "budgets.act_p50: expected a mapping"),
    ("budgets:\n  act_p50: {max_us: -3}\n", "budgets.act_p50.max_us: expected null or a finite number > 0"),
    ("budgets:\n  act_p50: {max_ratio: fast}\n", "budgets.act_p50.max_ratio: expected"),
    ("budgets:\n  act_p50: {max_us: 3, max: 3}\n", "budgets.act_p50.max: unknown key"),
    ("budgets:\n  act_p50: {max_us: 3}\n  act_p50: {max_us: 4}\n", "duplicate key 'budgets.act_p50'"),
    ("budget:\n  act_p50: {max_us: 3}\n", "budget: unknown key"),
    (GOOD + "ticks: 5\n", "ticks: expected an integer >= 100, found 5"),
    (GOOD + "agent: {n_units: 0}\n", "agent.n_units: expected an integer >= 1, found 0"),
    (GOOD + "agent: {cell: gru}\n", "agent.cell: expected one of"),
    ("budgets:\n  act_p50: {max_vs_baseline: 1.5}\n", "baseline: expected a baseline file"),
    ("budgets:\n  act_p50: {max_vs_baseline: 1.5}\nbaseline: missing.json\n",
     "baseline: expected a baseline file, found"),
    (GOOD + "train_config: train.yaml\nagent: {n_units: 8}\n", "train_config: expected either train_config"),
    (GOOD + "train_config: nowhere.yaml\n", "train_config: expected a train YAML or a results folder"),
])
def test_bad_budget_files_exit_2_naming_the_file_and_the_key(tmp_path, capsys, text, message):
    path = _write(tmp_path, text)
    assert main(["bench", "--assert", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and str(path) in err, err


@pytest.mark.parametrize("argv, message", [
    (["bench", "--record", "b.json"], "--record: expected --assert"),
    (["bench", "agent", "--assert", "budgets"], "--assert: expected no target"),
    (["bench", "--assert", "budgets", "--config", "bench.yaml"], "--assert: the budgets file is the config"),
    (["bench", "--assert", "no_such_budgets"], "--assert no_such_budgets: no such file"),
    (["bench", "--assert", "budgets", "--set", "repeats=0"], "repeats: expected an integer >= 1, found 0"),
])
def test_bad_command_lines_exit_2(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_a_train_config_or_results_folder_names_the_agent(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("env_id: CartPole-P-v1\nagent: {n_units: 24, lam: 0.5}\n")
    for where in ("run", "run/config.yaml"):
        _write(tmp_path, GOOD + f"train_config: {where}\n")
        _, spec = load_budgets(tmp_path / "budgets.yaml")
        assert spec.env_id == "CartPole-P-v1" and spec.agent.n_units == 24 and spec.agent.lam == 0.5
        assert spec.source == str(run / "config.yaml")


def test_an_impossible_budget_exits_1_with_the_table(tmp_path, capsys):
    out = tmp_path / "assert.json"
    path = _write(tmp_path, "budgets:\n  act_learn_p50: {max_us: 0.001, max_ratio: 1.0e6}\n"
                            f"output: {out}\n")
    assert main(["bench", "--assert", str(path), *_sets(SHORT)]) == 1
    text = capsys.readouterr().out
    assert "figure" in text and "budget" in text and "measured" in text and "ratio" in text
    lines = {line.split()[1]: line for line in text.splitlines() if line.startswith("act_learn_p50")}
    assert lines["max_us"].endswith("FAIL") and lines["max_ratio"].endswith("pass")
    assert "FAIL: budget exceeded: act_learn_p50 max_us" in text
    rows = json.loads(out.read_text())["rows"]
    assert [r["result"] for r in rows] == ["FAIL", "pass"] and rows[0]["ratio"] > 1 > rows[1]["ratio"]


def test_record_then_compare_against_the_baseline(tmp_path, capsys):
    budgets = ("budgets:\n  act_p50: {max_vs_baseline: 1.0e3}\n  act_learn_p99: {max_vs_baseline: 1.0e3}\n"
               f"baseline: base.json\noutput: {tmp_path / 'assert.json'}\n")
    path = _write(tmp_path, budgets)
    base = tmp_path / "base.json"
    assert main(["bench", "--assert", str(path), "--record", str(base), *_sets(SHORT)]) == 0
    assert "skipped" in capsys.readouterr().out
    recorded = json.loads(base.read_text())
    assert set(recorded["figures"]) == set(FIGURES) and recorded["calibration_us"] > 0
    assert recorded["identity"]["agent"]["n_units"] == 192 and "cpu" in recorded["machine"]

    assert main(["bench", "--assert", str(path), *_sets(SHORT)]) == 0
    rows = json.loads((tmp_path / "assert.json").read_text())["rows"]
    assert [r["result"] for r in rows] == ["pass", "pass"] and all(0 < r["measured"] < 1e3 for r in rows)

    for figure in recorded["figures"].values():   # a baseline a million times faster (per calibration)
        figure["ratio"] *= 1e-6
    base.write_text(json.dumps(recorded))
    assert main(["bench", "--assert", str(path), *_sets(SHORT)]) == 1
    assert "FAIL: budget exceeded: act_p50 max_vs_baseline, act_learn_p99 max_vs_baseline" in capsys.readouterr().out

    # a baseline of another agent, or of another calibration kernel, is refused before measuring
    assert main(["bench", "--assert", str(path), "--set", "agent.n_units=32"]) == 2
    assert "identity: expected a baseline of this budgets file's agent, found one that differs in agent.n_units" \
        in capsys.readouterr().err
    recorded["calibration_kernel"] = "another-kernel"
    base.write_text(json.dumps(recorded))
    assert main(["bench", "--assert", str(path)]) == 2
    assert "calibration_kernel: expected" in capsys.readouterr().err
    base.write_text("{not json")
    assert main(["bench", "--assert", str(path)]) == 2
    assert "invalid JSON" in capsys.readouterr().err


def test_the_latency_budget_fixture(latency_budget, tmp_path):
    """The pytest plugin (entry point pytest11) gives the fixture; check passes, fails the test with
    the table, and lets bad files raise ConfigError."""
    holds = _write(tmp_path, "budgets:\n  act_learn_p50: {max_ratio: 1.0e6}\n", "holds.yaml")
    verdict = latency_budget.check(holds, *SHORT)
    assert verdict.status == 0 and verdict.rows[0]["result"] == "pass"
    assert (tmp_path / "bench_assert_0.json").is_file()

    cannot = _write(tmp_path, "budgets:\n  act_p50: {max_us: 0.001}\n", "cannot.yaml")
    with pytest.raises(pytest.fail.Exception, match=r"(?s)latency budget exceeded \(act_p50 max_us\).*FAIL"):
        latency_budget.check(str(cannot), *SHORT)

    with pytest.raises(ConfigError, match="budgets.act_p9: expected a figure"):
        latency_budget.check(_write(tmp_path, "budgets:\n  act_p9: {max_us: 1}\n", "bad.yaml"))

"""The bench command: packaged config equals the defaults, a short run prints a table and writes JSON,
and bad config values exit with status 2 and a message naming the key."""
import json

import pytest

from controller.config import load_config, read_yaml
from launch.bench import BenchConfig
from launch.cli import main, packaged_config


def test_packaged_bench_config_equals_the_defaults():
    assert load_config(BenchConfig, packaged_config("bench.yaml")) == BenchConfig()
    assert set(read_yaml(packaged_config("bench.yaml"))) == {
        f.name for f in BenchConfig.__dataclass_fields__.values()}


def test_bench_smoke_run(tmp_path, capsys):
    out = tmp_path / "bench.json"
    status = main(["bench", "--set", "calls=200", "--set", "warmup_calls=20", "--set", "numpy_calls=100",
                   "--set", "torch_calls=100", "--set", "sizes=[small]", "--set", "dtypes=[float32]",
                   "--set", "torch_truncations=[1]", "--set", f"output={out}"])
    assert status == 0
    text = capsys.readouterr().out
    assert "rtu-linear step+grad" in text and "median µs" in text
    result = json.loads(out.read_text())
    cases = {r["case"] for r in result["rows"]}
    assert {"rtu-linear step+grad", "rtu-nonlinear forward", "lru step+grad",
            "rtu-linear numpy reference step+grad"} <= cases
    for row in result["rows"]:
        assert 0 < row["median_us"] <= row["p90_us"] <= row["p99_us"]
        assert row["calls"] >= 100
    linear = next(r for r in result["rows"] if r["case"] == "rtu-linear step+grad")
    assert linear["speedup"] > 1.0
    assert result["machine"]["cores"] >= 1


@pytest.mark.parametrize("override, message", [
    ("calls=10", "calls: expected an integer >= 100, found 10"),
    ("sizes=[huge]", "sizes[0]: expected one of 'paper', 'small', 'large', found 'huge'"),
    ("colls=5", "colls: unknown key"),
])
def test_bench_bad_config_exits_2(override, message, capsys):
    assert main(["bench", "--set", override]) == 2
    assert message in capsys.readouterr().err

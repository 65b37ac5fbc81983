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
    """The table has one row per (cell, mode) and reference, with positive, finite, ordered figures; the
    speed-up column is the NumPy reference's median over the kernel's, both from this run. No timing
    threshold: a busy machine may make any case slow."""
    import math

    from launch.bench import CELLS, SIZES

    out = tmp_path / "bench.json"
    status = main(["bench", "--set", "calls=200", "--set", "warmup_calls=20", "--set", "numpy_calls=100",
                   "--set", "torch_calls=100", "--set", "sizes=[small]", "--set", "dtypes=[float32]",
                   "--set", "torch_truncations=[1]", "--set", f"output={out}"])
    assert status == 0
    text = capsys.readouterr().out
    assert "median µs" in text and "× numpy" in text
    result = json.loads(out.read_text())
    rows = {r["case"]: r for r in result["rows"]}
    torch_rows = {"torch GRU TBPTT T=1 (train step)"} if not result["notes"] else set()
    assert set(rows) == {f"{cell} {mode}" for cell in CELLS
                         for mode in ("numpy reference step+grad", "step+grad", "forward")} | torch_rows
    assert len(result["rows"]) == len(rows)
    d, n = SIZES["small"]
    for case, row in rows.items():
        assert set(row) == {"case", "size", "dtype", "d", "n", "median_us", "p90_us", "p99_us", "calls", "speedup"}
        assert (row["size"], row["dtype"], row["d"], row["n"]) == ("small", "float32", d, n)
        figures = [row["median_us"], row["p90_us"], row["p99_us"]]
        assert all(math.isfinite(v) for v in figures) and 0 < figures[0] <= figures[1] <= figures[2]
        assert row["calls"] == (100 if "numpy" in case or "torch" in case else 200)
    for cell in CELLS:
        kernel, numpy = rows[f"{cell} step+grad"], rows[f"{cell} numpy reference step+grad"]
        assert kernel["speedup"] == numpy["median_us"] / kernel["median_us"]
        assert rows[f"{cell} forward"]["speedup"] is None and numpy["speedup"] is None
        line = next(x for x in text.splitlines() if x.startswith(f"{cell} step+grad "))
        assert line.rstrip().endswith(f"{kernel['speedup']:.1f}")
    assert result["machine"]["cores"] >= 1


@pytest.mark.parametrize("override, message", [
    ("calls=10", "calls: expected an integer >= 100, found 10"),
    ("sizes=[huge]", "sizes[0]: expected one of 'paper', 'small', 'large', found 'huge'"),
    ("colls=5", "colls: unknown key"),
])
def test_bench_bad_config_exits_2(override, message, capsys):
    assert main(["bench", "--set", override]) == 2
    assert message in capsys.readouterr().err

"""launch.bench_loop: the latency benchmark runs end to end against the emulator (short runs; the
exit status says whether the targets held, as the JSON record does) and hands back what it changed."""
import json

from launch.bench_loop import main as bench_main

def test_bench_loop_smoke(tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = bench_main(["--seconds", "1", "--warmup", "0.2", "--rate", "200", "--size", "small",
                       "--output", str(out)])
    record = json.loads(out.read_text())
    assert code == (0 if record["pass"] else 1)
    assert record["loop"]["ticks"] == 200 and record["size"] == "small"
    assert "sense->act" in capsys.readouterr().out


def test_bench_loop_mlockall_is_undone_when_main_returns(tmp_path):
    # main() is also called in-process; with --mlockall (applied when the process may lock memory, else
    # refused with a warning) it must not leave every page of the caller locked afterwards. The autouse
    # guard in tests/conftest.py checks VmLck around every test; this one also checks it directly.
    from tests.conftest import locked_memory_kb
    code = bench_main(["--seconds", "0.3", "--warmup", "0", "--rate", "200", "--size", "small", "--mlockall",
                       "--output", str(tmp_path / "bench.json")])
    record = json.loads((tmp_path / "bench.json").read_text())
    assert code == (0 if record["pass"] else 1)
    assert record["loop"]["realtime"]["mlockall"] == "applied" or \
        record["loop"]["realtime"]["mlockall"].startswith("refused")
    assert locked_memory_kb() == 0

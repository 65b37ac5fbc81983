"""Process-level behaviour: SIGTERM stops a deploy run cleanly (safe command + BYE reach the robot),
and the latency benchmark script runs end to end (a short smoke run; targets are not asserted here)."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from hardware.bench_loop import main as bench_main
from hardware.emulator import EmulatorConfig, EmulatorThread

ROOT = Path(__file__).resolve().parents[2]

DEPLOY = r"""
import json, sys
from hardware.deploy import load_deploy_config, run_deploy
cfg = load_deploy_config(sys.argv[1], sys.argv[2:])
print("ready", flush=True)
out = run_deploy(cfg)
print(json.dumps({"stop_reason": out["stop_reason"], "ticks": out["ticks"]}), flush=True)
"""


def test_sigterm_sends_safe_command_and_bye(tmp_path):
    with EmulatorThread(EmulatorConfig(rate_hz=100.0, port=0, spin=0.0)) as emu:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        proc = subprocess.Popen(
            [sys.executable, "-c", DEPLOY, str(ROOT / "launch/configs/deploy_emulator.yaml"),
             f"udp.port={emu.port}", "loop.rate_hz=100", "loop.duration=0", "policy.kind=fixed", "policy.gain=0.5",
             "task.max_episode_steps=0", "safety.stale_timeout=0.1", "output="],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 20
        while emu.emulator.commands_applied < 50 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert emu.emulator.commands_applied >= 50
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
        time.sleep(0.05)
        assert proc.returncode == 0, err
        summary = json.loads(out.strip().splitlines()[-1])
        assert summary["stop_reason"] == "signal SIGTERM" and summary["ticks"] > 0
        assert np.all(emu.emulator.command == 0.0)        # the last command received: the safe one
        assert emu.emulator._bye                           # and the robot was told to stop


def test_bench_loop_smoke(tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = bench_main(["--seconds", "1", "--warmup", "0.2", "--rate", "200", "--size", "small",
                       "--output", str(out)])
    assert code in (0, 1)
    record = json.loads(out.read_text())
    assert record["loop"]["ticks"] == 200 and record["size"] == "small"
    assert "sense->act" in capsys.readouterr().out


def test_bench_loop_mlockall_is_undone_when_main_returns(tmp_path):
    # main() is also called in-process; with --mlockall (applied when the process may lock memory, else
    # refused with a warning) it must not leave every page of the caller locked afterwards. The autouse
    # guard in tests/conftest.py checks VmLck around every test; this one also checks it directly.
    from tests.conftest import locked_memory_kb
    code = bench_main(["--seconds", "0.3", "--warmup", "0", "--rate", "200", "--size", "small", "--mlockall",
                       "--output", str(tmp_path / "bench.json")])
    assert code in (0, 1)
    record = json.loads((tmp_path / "bench.json").read_text())
    assert record["loop"]["realtime"]["mlockall"] == "applied" or \
        record["loop"]["realtime"]["mlockall"].startswith("refused")
    assert locked_memory_kb() == 0

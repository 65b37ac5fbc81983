"""launch.deploy: the YAML configs load; a short deploy run against the emulator (over loopback UDP,
with episode resets through the protocol) writes its results; exit statuses; SIGTERM stops a run
cleanly (safe command and BYE reach the robot); every kernel is compiled before the first tick."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from controller.config import load_config
from hardware.emulator import EmulatorConfig, EmulatorThread
from launch.deploy import load_deploy_config, run_deploy
from launch.results import read_monitor
from launch.run_checkpoints import list_checkpoints
from tests import background

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "launch" / "configs"


def test_packaged_configs_load():
    cfg = load_deploy_config(CONFIGS / "deploy_emulator.yaml")
    assert cfg.adapter == "udp" and cfg.loop.rate_hz == 500.0 and cfg.task.name == "HalfCheetah"
    assert cfg.policy.kind == "agent" and cfg.agent.n_units == 192
    emu = load_config(EmulatorConfig, CONFIGS / "emulator.yaml")
    assert emu.host == "127.0.0.1" and emu.port == cfg.udp.port


def test_deploy_against_emulator_with_resets(tmp_path):
    with EmulatorThread(EmulatorConfig(rate_hz=100.0, port=0, spin=0.0)) as emu:
        cfg = load_deploy_config(CONFIGS / "deploy_emulator.yaml", [
            f"udp.port={emu.port}", "loop.rate_hz=100", "loop.duration=1.5", "loop.handle_signals=false",
            "task.max_episode_steps=40", "policy.gain=0.1", "safety.stale_timeout=0.05",
            f"output={tmp_path}"])
        out = run_deploy(cfg)
        stats = emu.emulator.stats()
    assert out["ticks"] == 150 and out["stop_reason"] == "done"
    assert out["resets"] >= 3 and out["resets"] == out["truncations"] + 1   # the first episode starts from one too
    assert stats["resets"] == out["resets"]
    assert out["releases"] == out["ticks"] + out["missed_releases"]   # late ticks are counted, not caught up
    run = Path(out["output"])
    assert run.parent == tmp_path and run.name.startswith("HalfCheetah-P-")
    saved = json.loads((run / "loop_stats.json").read_text())
    assert saved["ticks"] == 150 and (run / "config.yaml").exists()
    # every episode logged in the run's monitor.csv, with a checkpoint of the agent before the first tick
    assert len(read_monitor(run)[1]) == out["episodes"] and list_checkpoints(run)


def test_streaming_agent_drives_the_loop():
    """Integration: controller.agent's Agent through the Policy protocol, lock-step sim, learn="always"."""
    from controller.clock import MonotonicClock
    from controller.loop import ControlLoop, LoopConfig
    from launch.bench_loop import make_agent
    from hardware.sim import SimAdapter, SimConfig
    from hardware.tasks import TaskConfig, make_task

    adapter = SimAdapter(SimConfig(env_id="Hopper-v5", seed=1))
    task = make_task(TaskConfig(name="Hopper", mask="P", max_episode_steps=100))
    task.bind(adapter)
    agent = make_agent(task.obs_dim, task.action_dim, task.action_low, task.action_high, "small")
    before = dict(agent.stats)
    cfg = LoopConfig(rate_hz=1000, duration=0, max_ticks=400, free_run=True, learn="always",
                     gc_freeze=False, handle_signals=False)
    out = ControlLoop(adapter, task, agent, cfg, clock=MonotonicClock(0)).run()
    adapter.shutdown()
    assert out["ticks"] == 400 and out["episodes"] >= 3
    assert agent.stats["updates"] - before["updates"] == out["updates"]
    # every act but the first of each episode closes a transition, and so does each terminal tick:
    # updates = acts, minus one when the run stops in the middle of an episode
    assert out["updates"] in (out["acts"] - 1, out["acts"]) and out["skipped_updates"] == 0


def test_deploy_main_with_sim_and_stand_in(tmp_path, capsys):
    from launch.deploy import main
    code = main(["--config", str(CONFIGS / "deploy_emulator.yaml"), "--set", "adapter=sim",
                 "--set", "loop.free_run=true", "--set", "loop.duration=0", "--set", "loop.max_ticks=300",
                 "--set", "policy.kind=fixed", "--set", "loop.handle_signals=false",
                 "--set", "task.max_episode_steps=100", "--set", f"output={tmp_path}"])
    assert code == 0
    assert "deploy: 300 ticks" in capsys.readouterr().out
    assert main(["--set", "adapter=serial"]) == 2


def test_deploy_main_with_a_fixed_safe_command_and_no_values_exits_2_naming_the_key(tmp_path, capsys):
    from launch.deploy import main
    code = main(["--config", str(CONFIGS / "deploy_emulator.yaml"), "--set", "adapter=sim",
                 "--set", "policy.kind=fixed", "--set", "safety.safe_command=fixed",
                 "--set", f"output={tmp_path / 'out'}"])
    assert code == 2
    assert "safety.safe_values: expected 6 values" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def _mock_deploy_argv(tmp_path, *extra):
    return ["--config", str(CONFIGS / "deploy_emulator.yaml"), "--set", "adapter=mock", "--set", "task.name=track",
            "--set", "policy.kind=fixed", "--set", "loop.rate_hz=200", "--set", "loop.duration=2",
            "--set", "loop.handle_signals=false", "--set", f"output={tmp_path / 'out'}", *extra]


def test_deploy_main_exits_1_naming_the_fault_after_nan_samples(tmp_path, capsys, monkeypatch):
    """The latched fault of a robot sending NaN: the run stops early, exit status 1, the reason named."""
    from launch import deploy

    made = deploy.make_adapter

    def nan_robot(config):
        adapter = made(config)
        adapter.nan_reads = 10**6
        return adapter
    monkeypatch.setattr(deploy, "make_adapter", nan_robot)
    assert deploy.main(_mock_deploy_argv(tmp_path)) == 1
    captured = capsys.readouterr()
    assert "fault:" in captured.err and "consecutive errors" in captured.err
    assert "last: " in captured.err and not captured.err.rstrip().endswith("last:")
    (run,) = list((tmp_path / "out").iterdir())
    saved = json.loads((run / "loop_stats.json").read_text())
    assert saved["fault"] and saved["ticks"] < 400


def test_deploy_main_exits_0_when_the_run_completes(tmp_path, capsys):
    from launch.deploy import main
    assert main(_mock_deploy_argv(tmp_path, "--set", "loop.duration=0.2")) == 0
    assert "fault" not in capsys.readouterr().err


def test_make_policy_compiles_on_a_twin_and_leaves_the_deployed_agent_as_built():
    """The warm-up must not learn with the agent it hands over (weights, normaliser, counters)."""
    from gymnasium import spaces

    from controller.agent import Agent, agent_arrays
    from launch.deploy import make_policy
    from hardware.sim import SimAdapter
    from hardware.tasks import make_task

    cfg = load_deploy_config(CONFIGS / "deploy_emulator.yaml", [
        "adapter=sim", "agent.n_units=4", "agent.encoder_width=4", "agent.head_width=4", "policy.seed=3"])
    adapter = SimAdapter(cfg.sim, cfg.safety)
    task = make_task(cfg.task)
    task.bind(adapter)
    deployed, _ = make_policy(cfg, task)
    obs_space = spaces.Box(-np.inf, np.inf, (task.obs_dim,), np.float64)
    act_space = spaces.Box(np.asarray(task.action_low, np.float32), np.asarray(task.action_high, np.float32),
                           (task.action_dim,), np.float32)
    fresh = Agent(obs_space, act_space, cfg.agent, seed=3)
    assert deployed.stats == fresh.stats
    built, want = agent_arrays(deployed), agent_arrays(fresh)
    assert built.keys() == want.keys()
    assert [k for k in want if not np.array_equal(built[k], want[k], equal_nan=True)] == []
    adapter.shutdown()


COLD_SCRIPT = r"""
import json, sys, time
t0 = time.perf_counter()
from launch.deploy import load_deploy_config, run_deploy
from launch.results import read_monitor
from launch.run_checkpoints import list_checkpoints
runs = {}
for learn in ("always", "never", "budget"):
    cfg = load_deploy_config(None, ["adapter=sim", "policy.kind=agent", "agent.n_units=8",
                                    "agent.encoder_width=8", "agent.head_width=8", "task.name=HalfCheetah",
                                    "task.max_episode_steps=20",
                                    "loop.rate_hz=100", "loop.duration=1.5", "loop.handle_signals=false",
                                    f"loop.learn={learn}"])
    out = run_deploy(cfg)
    runs[learn] = {k: out[k] for k in ("ticks", "episodes", "resets", "updates", "skipped_updates", "fault")}
    runs[learn]["work_max_us"] = out["work_us"]["max"]
runs["seconds"] = time.perf_counter() - t0
print(json.dumps(runs))
"""


def _cold_deploy():
    """COLD_SCRIPT in a fresh process with an empty NUMBA_CACHE_DIR: (its runs, whether it wrote cache files)."""
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "numba_cache"
        env = dict(os.environ, NUMBA_CACHE_DIR=str(cache),
                   PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        done = subprocess.run([sys.executable, "-c", COLD_SCRIPT], cwd=tmp, env=env, capture_output=True,
                              text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout.strip().splitlines()[-1]), any(cache.rglob("*.nbc"))


COLD_DEPLOY = background.Job("cold-cache deploy", _cold_deploy)


def start_background(items):
    background.submit_if_selected(items, "test_deploy_on_a_cold_numba_cache_never_compiles_inside_the_loop",
                                  COLD_DEPLOY)


def test_deploy_on_a_cold_numba_cache_never_compiles_inside_the_loop():
    """Every path the loop takes (act, update, skip, credit, reset, episode ends with update or skip) is
    compiled before the first tick: with an empty NUMBA_CACHE_DIR, no tick's work exceeds 50 ms (a
    compilation inside the loop takes seconds). Runs in a subprocess so that nothing is compiled yet."""
    runs, wrote_cache = COLD_DEPLOY.wait()
    assert wrote_cache, "the subprocess did not use the empty cache"
    for learn in ("always", "never", "budget"):
        run = runs[learn]
        assert run["fault"] == "" and run["ticks"] == 150 and run["episodes"] >= 5, run
        assert run["work_max_us"] <= 50_000.0, (learn, run)
    assert runs["always"]["skipped_updates"] == 0 and runs["never"]["updates"] == 0


DEPLOY = r"""
import json, sys
from launch.deploy import load_deploy_config, run_deploy
from launch.results import read_monitor
from launch.run_checkpoints import list_checkpoints
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

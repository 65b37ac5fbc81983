"""`rtu-control train`: configs (base = defaults, task files, validation errors), results folder, exact
resume (in process and after SIGKILL), SIGTERM shutdown, corrupt / mismatched checkpoints, divergence
guard. Tiny agents (8 units) on CartPole-P-v1 and HalfCheetah-P-v5 keep the whole file fast."""
import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from controller.agent import AgentConfig
from controller.config import load_config, read_yaml
from launch import results as R
from launch.cli import main, packaged_config
from launch.train import Trainer, TrainConfig, TrainError, list_checkpoints, load_train_config, main_train

ROOT = Path(__file__).resolve().parents[2]
TINY = ["agent.n_units=8", "agent.encoder_width=16", "agent.head_width=16", "plots=false", "progress=none"]


def quiet(*_args, **_kwargs):
    pass


def run(output, steps, env="CartPole-P-v1", extra=()):
    return main_train(None, [f"env_id={env}", f"steps={steps}", f"output={output}", *TINY, *extra],
                      echo=quiet)


def episodes(run_dir):
    return [(r["step"], r["return"], r["length"]) for r in R.read_metrics(run_dir, "episode")]


def matplotlib_installed():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


# ----------------------------------------------------------------------------- configs
def test_base_config_equals_the_defaults():
    path = packaged_config("train.yaml")
    assert load_config(TrainConfig, path) == TrainConfig()
    data = read_yaml(path)
    assert set(data) == {f.name for f in dataclasses.fields(TrainConfig)}
    assert set(data["agent"]) == {f.name for f in dataclasses.fields(AgentConfig)}
    assert TrainConfig().agent == AgentConfig()


@pytest.mark.parametrize("name, env_id", [
    ("train_halfcheetah_p.yaml", "HalfCheetah-P-v5"), ("train_hopper_p.yaml", "Hopper-P-v5"),
    ("train_walker2d_p.yaml", "Walker2d-P-v5"), ("train_ant_p.yaml", "Ant-P-v5"),
    ("train_cartpole_p.yaml", "CartPole-P-v1"), ("train_cuerecall.yaml", "CueRecall-v0")])
def test_task_configs_load_and_name_registered_envs(name, env_id):
    import gymnasium as gym

    import envs  # noqa: F401
    cfg = load_train_config(packaged_config(name))
    assert cfg.env_id == env_id
    gym.spec(cfg.env_id)
    if env_id == "CueRecall-v0":
        assert cfg.env_kwargs == {"delay": 10}


@pytest.mark.parametrize("override, message", [
    ("stepz=10", "stepz: unknown key (allowed under the top level:"),
    ("steps=ten", "steps: expected an integer, found 'ten'"),
    ("steps=0", "steps: expected an integer >= 1, found 0"),
    ("pace=fast", "pace: expected one of 'lockstep', 'realtime', found 'fast'"),
    ("agent.gamma=1.5", "agent.gamma: expected a number in [0, 1], found 1.5"),
    ("agent.cell=gru", "agent.cell: expected one of"),
    ("agent.units=3", "agent.units: unknown key (allowed under agent:"),
    ("divergence_delta=-1", "divergence_delta: expected a number > 0, found -1.0"),
])
def test_bad_values_exit_2_naming_file_key_expected_and_found(override, message, capsys, tmp_path):
    status = main(["train", "--set", override, "--set", f"output={tmp_path / 'x'}"])
    assert status == 2
    err = capsys.readouterr().err
    assert "train.yaml" in err and message in err
    assert not (tmp_path / "x").exists()


def test_bad_yaml_file_is_named(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("env_id: CartPole-P-v1\nagent:\n  alpha: -2\n")
    assert main(["train", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "agent.alpha: expected a finite number > 0, found -2.0" in err


def test_config_names_resolve_to_packaged_files(tmp_path, capsys):
    assert main(["train", "--config", "nosuchtask"]) == 2
    assert "train_nosuchtask.yaml" in capsys.readouterr().err


def test_a_missing_config_path_is_named_as_a_file(tmp_path, capsys):
    missing = tmp_path / "some" / "missing.yaml"
    assert main(["train", "--config", str(missing)]) == 2
    err = capsys.readouterr().err
    assert f"--config {missing}: no such file" in err and "packaged" not in err


def test_duplicate_keys_in_a_config_file_exit_2_naming_file_key_and_line(tmp_path, capsys):
    bad = tmp_path / "dup.yaml"
    bad.write_text("env_id: CartPole-P-v1\nsteps: 100\nsteps: 200\n")
    assert main(["train", "--config", str(bad), "--set", f"output={tmp_path / 'x'}"]) == 2
    assert f"{bad}: line 3: duplicate key 'steps' (first on line 2)" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


# ----------------------------------------------------------------------------- smoke run
def test_train_smoke_writes_the_results_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status = main(["train", "--config", "cartpole_p", "--set", "steps=600", "--set", "checkpoint_every=250",
                   "--set", "metrics_every=200", "--set", "agent.n_units=8", "--set", "progress_every=300"])
    assert status == 0
    out = capsys.readouterr().out
    runs = list((tmp_path / "results" / "train").iterdir())
    assert len(runs) == 1 and runs[0].name.startswith("CartPole-P-v1-rtu-linear-seed0-")
    d = runs[0]
    # stdout is not a terminal here: a short line every progress_every steps
    assert "step 300/600" in out and "step 600/600" in out and "results in results/train/" in out
    cfg = load_train_config(d / "config.yaml")
    assert cfg.steps == 600 and Path(cfg.output).resolve() == d.resolve() and cfg.agent.n_units == 8
    lines = (d / "monitor.csv").read_text().splitlines()
    header = json.loads(lines[0][1:])
    assert lines[0].startswith("#") and header["env_id"] == "CartPole-P-v1" and "t_start" in header
    assert lines[1] == "r,l,t"
    _, rows = R.read_monitor(d)
    eps = episodes(d)
    assert len(rows) == len(eps) > 5
    assert [int(r[1]) for r in rows] == [e[2] for e in eps]
    assert sum(r[1] for r in rows) <= 600
    periodic = R.read_metrics(d, "periodic")
    assert [p["step"] for p in periodic] == [200, 400, 600]
    for p in periodic:
        assert p["act_us"]["p50"] > 0 and p["learn_us"]["p99"] >= p["learn_us"]["p50"]
        assert {"skipped", "refused", "rollbacks", "steps_per_s", "wall_s"} <= set(p)
    lat = json.loads((d / "latency.json").read_text())
    assert lat["act_learn"]["count"] == 600 and lat["budget_us"] == 2000.0
    assert sum(lat["act_histogram"]["counts"]) == 600
    assert [p.name for p in list_checkpoints(d)] == ["ckpt-0000000600.npz", "ckpt-0000000500.npz",
                                                    "ckpt-0000000250.npz"]
    summary = json.loads((d / "summary.json").read_text())
    assert summary["steps"] == 600 and summary["stop_reason"] == "steps reached"
    pngs = [d / "learning_curve.png", d / "latency.png"]
    if matplotlib_installed():
        assert all(png.stat().st_size > 1000 for png in pngs)
    else:
        assert not any(png.exists() for png in pngs) and "matplotlib is not installed" in out


def test_train_without_matplotlib_writes_everything_but_the_plots(tmp_path, monkeypatch):
    """The run-time-only install: no matplotlib, plots: true; the run ends normally, says so once."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)   # `import matplotlib` raises ImportError
    lines = []
    summary = main_train(None, ["env_id=CartPole-P-v1", "steps=300", f"output={tmp_path / 'run'}",
                                *[t for t in TINY if t != "plots=false"]], echo=lines.append)
    assert summary["steps"] == 300 and summary["plots"] == []
    assert sum("matplotlib is not installed" in line for line in lines) == 1
    assert (tmp_path / "run" / "summary.json").exists() and not list((tmp_path / "run").glob("*.png"))


def test_existing_output_is_refused(tmp_path):
    run(tmp_path / "a", 50)
    with pytest.raises(TrainError, match="not empty .*--resume"):
        run(tmp_path / "a", 50)


# ----------------------------------------------------------------------------- exact resume
@pytest.mark.parametrize("env, steps", [("CartPole-P-v1", 3000), ("HalfCheetah-P-v5", 2500)])
def test_resume_continues_exactly(tmp_path, env, steps):
    extra = ["checkpoint_every=700"]
    run(tmp_path / "full", steps, env, extra)
    run(tmp_path / "part", steps // 2 + 37, env, extra)  # stops mid-episode
    main_train(None, [f"steps={steps}"], resume=tmp_path / "part", echo=quiet)
    full, part = episodes(tmp_path / "full"), episodes(tmp_path / "part")
    assert len(full) >= 2 and part == full
    assert R.read_monitor(tmp_path / "full")[1][-1][:2] == R.read_monitor(tmp_path / "part")[1][-1][:2]
    resumed = R.read_metrics(tmp_path / "part", "resume")
    assert resumed and resumed[0]["episode_continues"] is True


def test_checkpoint_round_trip_gives_the_identical_next_action(tmp_path):
    d = tmp_path / "rt"
    cfg = load_train_config(None, [f"output={d}", "env_id=HalfCheetah-P-v5", "steps=1234", *TINY])
    a = Trainer(cfg, d, echo=quiet)
    a.run()
    b = Trainer(cfg, d, resume=True, echo=quiet)
    assert b.step == 1234 and np.array_equal(a.obs, b.obs)
    np.testing.assert_array_equal(a.env.unwrapped.data.qpos, b.env.unwrapped.data.qpos)
    act_a = a.agent.act(a.obs).copy()
    act_b = b.agent.act(b.obs).copy()
    np.testing.assert_array_equal(act_a, act_b)
    assert a.env.unwrapped.np_random.random() == b.env.unwrapped.np_random.random()


KILL_SCRIPT = """
import sys
from launch.train import main_train
main_train(None, sys.argv[1:], echo=lambda *a, **k: None)
"""


def _spawn(args):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_checkpoint(proc, d, min_step, timeout=60.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        steps = [int(p.stem.split("-")[1]) for p in (d / "checkpoints").glob("ckpt-*.npz")]
        if any(s >= min_step for s in steps):
            return
        if proc.poll() is not None:
            pytest.fail(f"training exited early: {proc.communicate()[1][-2000:]}")
        time.sleep(0.02)
    proc.kill()
    pytest.fail("no checkpoint in time")


def test_sigkill_then_resume_equals_the_uninterrupted_run(tmp_path):
    common = ["env_id=CartPole-P-v1", "checkpoint_every=2000", "metrics_every=1000", *TINY]
    killed = tmp_path / "killed"
    proc = _spawn([*common, "steps=10000000", f"output={killed}"])
    try:
        _wait_for_checkpoint(proc, killed, 4000)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    newest = list_checkpoints(killed)[0]
    ckpt_step = int(newest.stem.split("-")[1])
    total = ckpt_step + 3000
    main_train(None, [f"steps={total}"], resume=killed, echo=quiet)
    run(tmp_path / "full", total, extra=["checkpoint_every=2000", "metrics_every=1000"])
    full, resumed = episodes(tmp_path / "full"), episodes(killed)
    after = [e for e in full if e[0] > ckpt_step]
    assert len(after) > 10
    assert resumed == full
    assert R.read_monitor(killed)[1][-1][:2] == R.read_monitor(tmp_path / "full")[1][-1][:2]
    assert [p["step"] for p in R.read_metrics(killed, "periodic")] == list(range(1000, total + 1, 1000))


def test_sigterm_checkpoints_and_exits_cleanly(tmp_path):
    d = tmp_path / "term"
    proc = _spawn(["env_id=CartPole-P-v1", "checkpoint_every=1000", "steps=10000000", f"output={d}", *TINY])
    try:
        _wait_for_checkpoint(proc, d, 1000)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    end = R.read_metrics(d, "end")
    assert end and end[-1]["reason"] == "SIGTERM"
    last = list_checkpoints(d)[0]
    assert int(last.stem.split("-")[1]) == end[-1]["step"]


# ----------------------------------------------------------------------------- bad checkpoints
def test_corrupt_newest_checkpoint_falls_back_to_the_previous(tmp_path, capsys):
    d = tmp_path / "c"
    run(d, 1500, extra=["checkpoint_every=500"])
    newest = list_checkpoints(d)[0]
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # truncated
    messages = []
    main_train(None, ["steps=1500"], resume=d, echo=messages.append)
    assert any("skipping checkpoint ckpt-0000001500.npz" in m and "corrupt or truncated" in m
               for m in messages)
    assert R.read_metrics(d, "resume")[-1]["checkpoint"] == "ckpt-0000001000.npz"
    assert (d / "checkpoints" / "ckpt-0000001500.npz.bad").exists()  # set aside, then rewritten valid
    assert list_checkpoints(d)[0].name == "ckpt-0000001500.npz"
    full = tmp_path / "f"
    run(full, 1500, extra=["checkpoint_every=500"])
    assert episodes(d) == episodes(full)


def test_mismatched_checkpoint_is_a_clear_error(tmp_path, capsys):
    d = tmp_path / "m"
    run(d, 300)
    status = main(["train", "--resume", str(d), "--set", "agent.n_units=9"])
    assert status == 2
    err = capsys.readouterr().err
    assert "no valid checkpoint" in err and "does not match this agent" in err and "n_units" in err


def test_resume_of_a_folder_without_a_run_is_an_error(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path)]) == 2
    assert "not a training run folder" in capsys.readouterr().err


def test_env_without_saved_state_restarts_its_episode_on_resume(tmp_path):
    d = tmp_path / "cue"
    extra = ["env_kwargs={delay: 3}"]
    run(d, 205, "CueRecall-v0", extra)
    summary = main_train(None, ["steps=400"], resume=d, echo=quiet)
    assert summary["steps"] == 400
    assert R.read_metrics(d, "resume")[-1]["episode_continues"] is False


def test_stateful_wrappers_make_the_episode_restart_on_resume():
    # a frame stack (or a delay) holds past observations the checkpoint does not save: restart, not a
    # silently wrong stack; the bare masked MuJoCo env is restored exactly
    import gymnasium as gym

    import envs  # noqa: F401  (registers the -P ids)
    from launch.train import env_state_kind
    assert env_state_kind(gym.make("Hopper-P-v5")) == "mujoco"
    assert env_state_kind(gym.make("Hopper-P-v5", wrappers={"frame_stack": 2})) == "restart"
    assert env_state_kind(gym.make("Hopper-P-v5", wrappers={"delay": 1})) == "restart"


# ----------------------------------------------------------------------------- divergence guard
@pytest.mark.filterwarnings("ignore::controller.agent.NonFiniteInputWarning")
def test_non_finite_parameters_roll_back_to_the_last_checkpoint(tmp_path):
    d = tmp_path / "g"
    cfg = load_train_config(None, [f"output={d}", "env_id=CartPole-P-v1", "steps=400",
                                   "checkpoint_every=200", "check_every=10", *TINY])
    t = Trainer(cfg, d, echo=quiet)
    t.run()
    saved = t.agent.actor.P.copy()
    cfg2 = dataclasses.replace(cfg, steps=450)
    t2 = Trainer(cfg2, d, resume=True, echo=quiet)
    t2.agent.actor.P[3] = np.nan
    t2.run()
    assert t2.rollbacks == 1
    rb = R.read_metrics(d, "rollback")
    assert len(rb) == 1 and rb[0]["reason"] == "non-finite learner arrays"
    assert rb[0]["checkpoint"] == "ckpt-0000000400.npz" and rb[0]["step"] == 410
    assert np.isfinite(t2.agent.actor.P).all()
    assert json.loads((d / "summary.json").read_text())["rollbacks"] == 1
    assert not np.array_equal(saved, t2.agent.actor.P) or t2.agent.stats["updates"] > 0


def test_delta_bound_rollbacks_are_counted_and_capped(tmp_path):
    with pytest.raises(TrainError, match="more than max_rollbacks=3"):
        run(tmp_path / "d", 500, extra=["divergence_delta=1.0e-12", "max_rollbacks=3"])
    rb = R.read_metrics(tmp_path / "d", "rollback")
    assert len(rb) == 3 and all("divergence_delta" in r["reason"] for r in rb)


def test_realtime_pace_holds_the_period(tmp_path):
    t0 = time.monotonic()
    summary = run(tmp_path / "rt", 200, extra=["pace=realtime", "rate_hz=1000.0"])
    elapsed = time.monotonic() - t0
    assert summary["steps"] == 200 and elapsed >= 0.19
    assert 0 <= summary["late_ticks"] <= 200
    run(tmp_path / "ls", 200)
    assert episodes(tmp_path / "rt") == episodes(tmp_path / "ls")  # pacing does not change the run


@pytest.mark.parametrize("cached, says", [(True, "loading the agent's compiled kernels from numba's cache"),
                                          (False, "compiling the agent's kernels")])
def test_train_says_whether_it_compiles_or_loads_the_kernels(cached, says, tmp_path, monkeypatch):
    import controller.warmup

    monkeypatch.setattr(controller.warmup, "kernels_cached", lambda *args, **kwargs: cached)
    lines = []
    main_train(None, ["env_id=CartPole-P-v1", "steps=10", f"output={tmp_path / 'run'}", *TINY],
               echo=lines.append)
    text = "\n".join(lines)
    assert says in text and "about 30 s" not in text
    assert re.search(r"kernels ready in \d+\.\d s", text)

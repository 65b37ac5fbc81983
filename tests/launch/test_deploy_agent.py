"""Train -> deploy -> keep learning: `deploy --agent` restores a trained learner, runs it frozen or
learning, writes a timestamped run folder with checkpoints, survives SIGKILL through `deploy --resume`,
and hands its learner back to `train`; a checkpoint that does not fit the robot is refused before the
first command."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from controller.checkpoint import load_arrays
from launch.cli import main
from launch.results import read_metrics, read_monitor
from launch.run_checkpoints import list_checkpoints

TINY_AGENT = ["agent.n_units=8", "agent.encoder_width=8", "agent.head_width=8"]
PARAMS = ("actor.P", "critic.P")   # the packed parameters of both networks' dense layers


def _sets(*items):
    return [a for item in items for a in ("--set", item)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A results folder of a short HalfCheetah-P-v5 train run."""
    out = tmp_path_factory.mktemp("train") / "run"
    assert main(["train", *_sets("env_id=HalfCheetah-P-v5", "steps=1500", *TINY_AGENT, "plots=false",
                                 "progress=none", f"output={out}")]) == 0
    return out


def _deploy_sim(tmp_path, source, *extra):
    """`deploy --agent source` on the in-process simulator, lock-step: returns (exit status, run folder)."""
    out = tmp_path / "deploy"
    code = main(["deploy", "--agent", str(source), *_sets(
        "adapter=sim", "loop.free_run=true", "loop.duration=0", "loop.max_ticks=650",
        "task.max_episode_steps=200", "checkpoint_every=0", "progress_every=0", f"output={out}", *extra)])
    runs = sorted(out.iterdir()) if out.exists() else []
    return code, runs[-1] if runs else None


def _learned(path):
    arrays, meta = load_arrays(path)
    return {k: v for k, v in arrays.items() if any(k == p for p in PARAMS)}, meta


def test_a_frozen_deploy_acts_with_the_trained_learner_and_changes_nothing(trained, tmp_path):
    code, run = _deploy_sim(tmp_path, trained, "learn=false")
    assert code == 0 and run.name.startswith("HalfCheetah-P-")
    trained_params, _ = _learned(list_checkpoints(trained)[0])
    deployed_params, meta = _learned(list_checkpoints(run)[0])
    assert trained_params and all(np.array_equal(trained_params[k], deployed_params[k]) for k in trained_params)
    stats = json.loads((run / "loop_stats.json").read_text())
    assert stats["updates"] == 0 and stats["acts"] > 0
    _, rows = read_monitor(run)
    assert len(rows) == 3 and all(length == 200 for _, length, _ in rows)   # 650 ticks: 3 episodes of 200
    assert meta["extra"]["run"]["env_id"] == "HalfCheetah-P-v5"


def test_a_learning_deploy_updates_and_its_learner_goes_back_to_train(trained, tmp_path):
    code, run = _deploy_sim(tmp_path, trained)
    assert code == 0
    stats = json.loads((run / "loop_stats.json").read_text())
    assert stats["updates"] > 500
    trained_params, _ = _learned(list_checkpoints(trained)[0])
    deployed_params, _ = _learned(list_checkpoints(run)[0])
    assert any(not np.array_equal(trained_params[k], deployed_params[k]) for k in trained_params)
    # one checkpoint before the first tick, one per episode end (checkpoint_every=0), one at the stop
    records = read_metrics(run, "checkpoint")
    assert records[0]["step"] == 0 and len(records) == 1 + 3 + 1
    back = tmp_path / "back"
    assert main(["train", *_sets("env_id=HalfCheetah-P-v5", "steps=300", f"agent_from={run}", "plots=false",
                                 "progress=none", f"output={back}")]) == 0
    started, _ = _learned(list_checkpoints(back)[-1])    # ckpt-0: the loaded learner before any step
    assert all(np.array_equal(started[k], deployed_params[k]) for k in deployed_params)


def test_two_deploys_get_their_own_folders(trained, tmp_path):
    first = _deploy_sim(tmp_path, trained, "loop.max_ticks=5")[1]
    second = _deploy_sim(tmp_path, trained, "loop.max_ticks=5")[1]
    assert first != second and first.parent == second.parent
    assert (first / "config.yaml").exists() and (second / "latency.json").exists()


@pytest.mark.parametrize("sets, message", [
    (["task.mask=V"], "observation size 8, task HalfCheetah (mask V) gives 9"),
    (["task.mask=full"], "trained on 'HalfCheetah-P-v5', this deploy's task is 'HalfCheetah-v5'"),
    (["sim.env_id=Hopper-v5", "task.name=Hopper"], "action size 6, the robot takes 3"),
])
def test_a_checkpoint_that_does_not_fit_the_robot_is_refused_before_the_first_command(trained, tmp_path, capsys,
                                                                                        sets, message):
    code, run = _deploy_sim(tmp_path, trained, *sets)
    assert code == 2 and run is None
    err = capsys.readouterr().err
    assert message in err and "does not fit this robot" in err


def test_an_agent_source_without_checkpoints_is_a_clear_error(tmp_path, capsys):
    assert main(["deploy", "--agent", str(tmp_path / "nothing"), *_sets("adapter=sim")]) == 2
    err = capsys.readouterr().err
    assert f"--agent {tmp_path / 'nothing'}: no such file or folder" in err


def _free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(predicate, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_sigkilled_learning_deploy_resumes_from_its_last_checkpoint(trained, tmp_path):
    """Against the UDP emulator in its own process: kill -9 the learning deploy after a few episode-end
    checkpoints, resume it, and find the run continued from the newest checkpoint with its episodes."""
    port = _free_udp_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    robot = subprocess.Popen([sys.executable, "-m", "launch.cli", "emulator", *_sets(
        f"port={port}", "rate_hz=100", "duration=0")], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    out = tmp_path / "deploy"
    common = _sets(f"udp.port={port}", "loop.rate_hz=100", "loop.duration=0", "task.max_episode_steps=40",
                   "udp.max_age=0.05", "safety.stale_timeout=0.05", "checkpoint_every=0", "progress_every=0")
    try:
        deploy = subprocess.Popen([sys.executable, "-m", "launch.cli", "deploy", "--agent", str(trained),
                                   *common, "--set", f"output={out}"], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        try:
            _wait_for(lambda: out.exists() and any(len(list_checkpoints(r)) >= 3 for r in out.iterdir()),
                      120, "three checkpoints of the deploy")
            deploy.send_signal(signal.SIGKILL)
            deploy.wait(10)
        finally:
            if deploy.poll() is None:
                deploy.kill()
        (run,) = list(out.iterdir())
        newest = list_checkpoints(run)[0]
        _, meta = load_arrays(newest)      # the newest checkpoint is whole: written atomically
        at_kill = meta["extra"]["run"]
        assert at_kill["episodes"] >= 2
        code = subprocess.run([sys.executable, "-m", "launch.cli", "deploy", "--resume", str(run),
                               "--set", "loop.duration=1.5"], env=env, capture_output=True, text=True,
                              timeout=120)
        assert code.returncode == 0, code.stdout + code.stderr
        resume = read_metrics(run, "resume")
        assert resume[-1]["checkpoint"] == newest.name and resume[-1]["step"] == at_kill["step"]
        episodes = read_metrics(run, "episode")
        assert [e["episode"] for e in episodes] == list(range(1, len(episodes) + 1))
        assert len(episodes) > at_kill["episodes"]                     # the resumed session ran episodes
        assert len(read_monitor(run)[1]) == len(episodes)
        final = list_checkpoints(run)[0]
        assert int(final.stem.split("-")[1]) > at_kill["step"]
        assert load_arrays(final)[1]["extra"]["run"]["sessions"] == at_kill["sessions"] + 1
    finally:
        robot.send_signal(signal.SIGTERM)
        robot.wait(10)


def test_resume_needs_a_deploy_run_folder(tmp_path, capsys):
    assert main(["deploy", "--resume", str(tmp_path)]) == 2
    assert "not a deploy run folder" in capsys.readouterr().err


def test_a_diverged_learner_is_not_checkpointed(trained, tmp_path):
    from controller.agent import Agent
    from launch.agent_source import load_learner, resolve_checkpoint
    from launch.deploy_run import DeployRun
    from gymnasium import spaces

    path, meta = resolve_checkpoint(trained)
    agent = load_learner(path, meta, spaces.Box(-np.inf, np.inf, (8,), np.float64),
                         spaces.Box(-1.0, 1.0, (6,), np.float32))
    assert isinstance(agent, Agent)
    run = DeployRun(tmp_path / "run", "HalfCheetah-P-v5", agent, 0.0, 3)
    run.start("# config\n")
    agent.actor.P[0] = np.nan
    assert run.checkpoint(10) is None
    run.close()
    assert [p.name for p in list_checkpoints(tmp_path / "run")] == ["ckpt-0000000000.npz"]
    assert read_metrics(tmp_path / "run", "checkpoint_skipped")[0]["reason"] == "non-finite learner arrays"


def test_resume_of_a_stand_in_run_is_a_clear_error(tmp_path, capsys):
    out = tmp_path / "deploy"
    assert main(["deploy", *_sets("adapter=sim", "policy.kind=fixed", "loop.free_run=true", "loop.duration=0",
                                  "loop.max_ticks=5", f"output={out}")]) == 0
    (run,) = list(out.iterdir())
    assert main(["deploy", "--resume", str(run)]) == 2
    assert "only an agent's run has a learner to resume" in capsys.readouterr().err


def test_resume_does_not_need_the_checkpoint_the_run_started_from(trained, tmp_path):
    import shutil
    source = tmp_path / "source"
    shutil.copytree(trained, source)
    code, run = _deploy_sim(tmp_path, source, "loop.max_ticks=250")
    assert code == 0
    shutil.rmtree(source)
    assert main(["deploy", "--resume", str(run), "--set", "loop.max_ticks=250"]) == 0
    assert read_metrics(run, "resume")[-1]["checkpoint"] == "ckpt-0000000250.npz"


def test_the_run_folder_is_plotted_like_a_training_runs(trained, tmp_path):
    code, run = _deploy_sim(tmp_path, trained, "loop.max_ticks=450")
    assert code == 0
    latency = json.loads((run / "latency.json").read_text())
    assert latency["sense_act"]["count"] == 450 == sum(latency["sense_act_histogram"]["counts"])   # every tick
    pytest.importorskip("matplotlib")
    from launch.plot import plot_run
    paths = plot_run(run, echo=lambda line: None)
    assert {p.name for p in paths} == {"learning_curve.png", "latency.png"}

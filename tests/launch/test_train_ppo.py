"""`rtu-control train` with ``learner: ppo`` (controller.ppo.PPOAgent): the results folder, exact resume
mid-rollout (in process, after SIGTERM) and at a rollout boundary (after SIGKILL), checkpoints of the
other learner refused, the divergence guard's rollback, the config's errors. A tiny PPO (8 units,
rollouts of 64 steps) on Hopper-P-v5 (MuJoCo: the episode continues on resume; terminations give many
short episodes) keeps the file fast."""
import dataclasses
import json
import signal

import numpy as np
import pytest

from controller.checkpoint import load_arrays
from controller.config import read_yaml
from controller.ppo_config import PPOConfig
from launch import results as R
from launch.cli import main, packaged_config
from launch.train import Trainer, TrainError, list_checkpoints, load_train_config, main_train
from tests.launch.test_train import _spawn, _wait_for_checkpoint, episodes, quiet

ENV = "Hopper-P-v5"
TINY_PPO = ["learner=ppo", "ppo.rollout_steps=64", "ppo.minibatches=4", "ppo.n_units=8", "ppo.encoder_width=8",
            "ppo.head_width=8", "plots=false", "progress=none"]


def run(output, steps, extra=()):
    return main_train(None, [f"env_id={ENV}", f"steps={steps}", f"output={output}", *TINY_PPO, *extra], echo=quiet)


def final_arrays(run_dir):
    """The newest checkpoint's arrays without the latency histograms (timings, not state)."""
    arrays, meta = load_arrays(list_checkpoints(run_dir)[0])
    return {k: v for k, v in arrays.items() if not k.startswith("run.hist_")}, meta


def assert_same_learner(a, b):
    (arrays_a, meta_a), (arrays_b, meta_b) = final_arrays(a), final_arrays(b)
    assert meta_a["learner"] == "ppo" and sorted(arrays_a) == sorted(arrays_b)
    for name in arrays_a:
        np.testing.assert_array_equal(arrays_a[name], arrays_b[name], err_msg=name)
    for key in ("position", "scalars", "rng"):
        assert meta_a[key] == meta_b[key], key
    stats_a, stats_b = (dict(m["stats"], update_seconds=0.0) for m in (meta_a, meta_b))
    assert json.dumps(stats_a) == json.dumps(stats_b)   # NaN == NaN as text


# ----------------------------------------------------------------------------- configs
def test_base_config_has_every_ppo_key_and_the_ppo_task_config_loads():
    data = read_yaml(packaged_config("train.yaml"))
    assert data["learner"] == "streaming"
    assert set(data["ppo"]) == {f.name for f in dataclasses.fields(PPOConfig)}
    cfg = load_train_config(packaged_config("train_ppo_halfcheetah_p.yaml"))
    assert (cfg.env_id, cfg.learner, cfg.steps, cfg.plots, cfg.ppo) == ("HalfCheetah-P-v5", "ppo", 1_000_000, True,
                                                                         PPOConfig())


@pytest.mark.parametrize("override, message", [
    ("ppo.lr=-1", "ppo.lr: expected a finite number > 0, found -1.0"),
    ("ppo.cell=lru", "ppo.cell: expected one of"),
    ("ppo.minibatches=3", "ppo.minibatches: expected a divisor of rollout_steps = 2048, found 3"),
    ("critic_thread=true", "critic_thread: expected false with learner: ppo"),
    ("learner=a2c", "learner: expected one of 'streaming', 'ppo', found 'a2c'"),
])
def test_bad_ppo_values_exit_2_naming_the_key(override, message, tmp_path, capsys):
    assert main(["train", "--set", "learner=ppo", "--set", override, "--set", f"output={tmp_path / 'x'}"]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_ppo_on_a_discrete_env_is_a_config_error_naming_learner(tmp_path, capsys):
    status = main(["train", "--set", "env_id=CartPole-v1", "--set", "learner=ppo", "--set", "progress=none",
                   "--set", f"output={tmp_path / 'x'}"])
    assert status == 2
    err = capsys.readouterr().err
    assert "learner: ppo takes continuous (Box) actions, 'CartPole-v1' has Discrete(2)" in err
    assert not (tmp_path / "x").exists()


# ----------------------------------------------------------------------------- a run
@pytest.mark.parametrize("cell", ["rtu-linear", "none"])
def test_ppo_run_writes_the_results_folder(tmp_path, cell):
    d = tmp_path / "run"
    lines = []
    main_train(None, [f"env_id={ENV}", "steps=400", f"output={d}", *TINY_PPO, f"ppo.cell={cell}",
                      "checkpoint_every=100", "metrics_every=200"], echo=lines.append)
    summary = json.loads((d / "summary.json").read_text())
    assert summary["learner"] == "ppo" and summary["cell"] == cell and summary["steps"] == 400
    assert summary["updates"] == 6 * 4 * 4 and summary["refused"] == summary["skipped"] == 0   # 6 rollouts
    assert any(f"learner: ppo, cell {cell}" in line for line in lines)
    assert any(f"Hopper-P-v5 ppo {cell} seed 0: 400 steps" in line for line in lines)
    assert load_train_config(d / "config.yaml").learner == "ppo"
    periodic = R.read_metrics(d, "periodic")
    assert [p["step"] for p in periodic] == [200, 400]
    health = periodic[-1]["health"]
    parts = {"encoder", "actor", "critic"} | ({"cell"} if cell != "none" else set())
    assert set(health["weight_norm"]) == parts and health["rollouts"] == 6
    assert health["approx_kl"] is not None and health["explained_variance"] is not None
    assert {"updates", "skipped", "refused", "non_finite_inputs", "rollbacks"} <= set(periodic[-1])
    # periodic checkpoints wait for the next rollout boundary (multiples of 64); the last is at the end
    assert [c["step"] for c in R.read_metrics(d, "checkpoint")] == [0, 128, 256, 320, 400]
    _, meta = load_arrays(list_checkpoints(d)[0])
    assert meta["learner"] == "ppo" and meta["position"] == 400 % 64
    assert episodes(d) and len(R.read_monitor(d)[1]) == len(episodes(d))


# ----------------------------------------------------------------------------- exact resume
def test_resume_mid_rollout_continues_exactly(tmp_path):
    """The end-of-run checkpoint holds a partly filled rollout (437 = 6 x 64 + 53 steps, mid-episode)."""
    run(tmp_path / "full", 1000, ["checkpoint_every=200"])
    run(tmp_path / "part", 437, ["checkpoint_every=200"])
    _, meta = final_arrays(tmp_path / "part")
    # the periodic checkpoint due at 400 waits for step 448: the resumed run writes it there too
    assert meta["position"] == 53 and meta["extra"]["run"]["checkpoint_due"] is True
    main_train(None, ["steps=1000"], resume=tmp_path / "part", echo=quiet)
    full, part = episodes(tmp_path / "full"), episodes(tmp_path / "part")
    assert len(full) > 10 and part == full
    assert R.read_metrics(tmp_path / "part", "resume")[0]["episode_continues"] is True
    assert_same_learner(tmp_path / "full", tmp_path / "part")
    written = {name: [c["step"] for c in R.read_metrics(tmp_path / name, "checkpoint")] for name in ("full", "part")}
    assert written == {"full": [0, 256, 448, 640, 832, 1000], "part": [0, 256, 437, 448, 640, 832, 1000]}


def test_sigkill_then_resume_equals_the_uninterrupted_run(tmp_path):
    common = [f"env_id={ENV}", "checkpoint_every=500", "metrics_every=500", *TINY_PPO]
    killed = tmp_path / "killed"
    proc = _spawn([*common, "steps=10000000", f"output={killed}"])
    try:
        _wait_for_checkpoint(proc, killed, 1500)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    ckpt_step = int(list_checkpoints(killed)[0].stem.split("-")[1])
    assert ckpt_step % 64 == 0   # a rollout boundary
    total = ckpt_step + 1000
    main_train(None, [f"steps={total}"], resume=killed, echo=quiet)
    run(tmp_path / "full", total, ["checkpoint_every=500", "metrics_every=500"])
    full, resumed = episodes(tmp_path / "full"), episodes(killed)
    assert len([e for e in full if e[0] > ckpt_step]) > 10
    assert resumed == full
    assert R.read_monitor(killed)[1][-1][:2] == R.read_monitor(tmp_path / "full")[1][-1][:2]
    assert_same_learner(tmp_path / "full", killed)


def test_sigterm_mid_rollout_then_resume_equals_the_uninterrupted_run(tmp_path):
    """SIGTERM stops the run where it is: its checkpoint holds the filled part of the rollout."""
    common = [f"env_id={ENV}", "checkpoint_every=500", *TINY_PPO]
    stopped = tmp_path / "stopped"
    proc = _spawn([*common, "steps=10000000", f"output={stopped}"])
    try:
        _wait_for_checkpoint(proc, stopped, 1000)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    end = R.read_metrics(stopped, "end")[-1]
    assert end["reason"] == "SIGTERM"
    _, meta = final_arrays(stopped)
    assert meta["extra"]["run"]["step"] == end["step"] and meta["position"] == end["step"] % 64
    total = end["step"] + 700
    main_train(None, [f"steps={total}"], resume=stopped, echo=quiet)
    run(tmp_path / "full", total, ["checkpoint_every=500"])
    assert episodes(stopped) == episodes(tmp_path / "full")
    assert_same_learner(tmp_path / "full", stopped)


# ----------------------------------------------------------------------------- the other learner's checkpoints
def test_a_checkpoint_of_the_other_learner_is_refused(tmp_path, capsys):
    ppo = tmp_path / "ppo"
    run(ppo, 100)
    assert main(["train", "--resume", str(ppo), "--set", "learner=streaming", "--set", "agent.n_units=8"]) == 2
    err = capsys.readouterr().err
    assert "no valid checkpoint" in err and "holds a ppo learner, this run's learner is streaming" in err
    streaming = tmp_path / "streaming"
    main_train(None, [f"env_id={ENV}", "steps=50", f"output={streaming}", "agent.n_units=8", "plots=false",
                      "progress=none"], echo=quiet)
    with pytest.raises(TrainError, match="holds a streaming learner, this run's learner is ppo"):
        main_train(None, [*TINY_PPO], resume=streaming, echo=quiet)
    # a ppo checkpoint of other sizes names what differs
    with pytest.raises(TrainError, match=r"ppo.n_units: checkpoint has 8, agent has 9"):
        main_train(None, ["ppo.n_units=9"], resume=ppo, echo=quiet)
    # a ppo run does not start from a checkpoint (yet)
    assert main(["train", "--set", "learner=ppo", "--set", f"agent_from={ppo}",
                 "--set", f"output={tmp_path / 'x'}"]) == 2
    assert "agent_from: expected empty with learner: ppo" in capsys.readouterr().err
    # nor does a streaming run or a deploy start from a ppo checkpoint: the message says what it holds
    assert main(["train", "--set", f"agent_from={ppo}", "--set", f"output={tmp_path / 'y'}"]) == 2
    assert "holds a ppo learner; only streaming agents can be deployed" in capsys.readouterr().err


def test_a_diverged_update_rolls_back_at_once(tmp_path):
    """Non-finite parameters after an update are caught in that tick (before a NaN action reaches the
    env), not only at the check every check_every steps."""
    d = tmp_path / "g"
    cfg = load_train_config(None, [f"output={d}", f"env_id={ENV}", "steps=400", "checkpoint_every=200", *TINY_PPO])
    Trainer(cfg, d, echo=quiet).run()
    saved, _ = final_arrays(d)
    t = Trainer(dataclasses.replace(cfg, steps=450), d, resume=True, echo=quiet)
    update = t.agent._update

    def diverging_update(last_value):
        update(last_value)
        t.agent.params["actor_w1"][0, 0] = np.nan

    t.agent._update = diverging_update
    t.run()
    rb = R.read_metrics(d, "rollback")
    assert t.rollbacks == 1 and len(rb) == 1 and rb[0]["reason"] == "non-finite learner arrays"
    assert rb[0]["checkpoint"] == "ckpt-0000000400.npz" and rb[0]["step"] == 448   # the update's tick
    assert t.learner_finite() and t.agent.stats["rollouts"] == 6 and t.agent._t == 16 + 2
    # the stored step before the rollback's new episode was cut there: GAE stops at it
    assert not saved["rollout.done"][15] and t.agent.rollout.done[15]
    assert json.loads((d / "summary.json").read_text())["rollbacks"] == 1

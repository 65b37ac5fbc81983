"""`logger: tensorboard` (launch/tb_logger.py): the event files mirror metrics.jsonl (episodes, periodic
figures, learner health), a resumed run's events after its checkpoint are purged as metrics.jsonl is
truncated, a missing tensorboardX stops the run before any file is written, the default logger never
needs it. Event files are read with a small TFRecord reader (tensorboard itself is not required)."""
import importlib.util
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from controller.errors import ConfigError
from launch import results as R
from launch.train import TrainError, list_checkpoints, load_train_config, main_train

ROOT = Path(__file__).resolve().parents[2]
TINY = ["agent.n_units=8", "agent.encoder_width=16", "agent.head_width=16", "plots=false", "progress=none"]
INSTALL = "pip install 'rtu-control[tensorboard]'"
# find_spec, not importorskip: importing tensorboardX here would import torch into the test process
needs_tensorboardx = pytest.mark.skipif(importlib.util.find_spec("tensorboardX") is None,
                                        reason="tensorboardX not installed")


def quiet(*_args, **_kwargs):
    pass


def run(output, steps, extra=(), resume=None):
    if resume is not None:
        return main_train(None, [f"steps={steps}", *extra], resume=resume, echo=quiet)
    return main_train(None, ["env_id=CartPole-P-v1", f"steps={steps}", f"output={output}", *TINY, *extra],
                      echo=quiet)


def read_events(log_dir):
    """The Event protos of log_dir's event files, in TensorBoard's order (file names sorted); each
    record: uint64 length, uint32 masked crc of it, data, uint32 masked crc of the data."""
    from tensorboardX.proto.event_pb2 import Event
    from tensorboardX.record_writer import masked_crc32c

    events = []
    for path in sorted(Path(log_dir).glob("events.out.tfevents.*")):
        data, pos = path.read_bytes(), 0
        while pos < len(data):
            header = data[pos:pos + 8]
            (n,) = struct.unpack("<Q", header)
            assert struct.unpack("<I", data[pos + 8:pos + 12])[0] == masked_crc32c(header)
            body = data[pos + 12:pos + 12 + n]
            assert struct.unpack("<I", data[pos + 12 + n:pos + 16 + n])[0] == masked_crc32c(body)
            event = Event()
            event.ParseFromString(body)
            events.append(event)
            pos += 16 + n
    return events


def scalars(log_dir, purge=True):
    """{tag: [(step, value), ...]} as TensorBoard shows them: a SessionLog START event at step s hides
    the earlier events at steps >= s (purge=False: every event as written)."""
    from tensorboardX.proto.event_pb2 import SessionLog

    out = {}
    for event in read_events(log_dir):
        if purge and event.HasField("session_log") and event.session_log.status == SessionLog.START:
            out = {tag: [(s, v) for s, v in pts if s < event.step] for tag, pts in out.items()}
        for value in event.summary.value:
            out.setdefault(value.tag, []).append((event.step, value.simple_value))
    return out


def f32(x):
    return float(np.float32(x))


def expected_episodes(run_dir, key):
    return [(r["step"], f32(r[key])) for r in R.read_metrics(run_dir, "episode")]


# ----------------------------------------------------------------------------- a run's events
@needs_tensorboardx
def test_tensorboard_events_mirror_the_metrics(tmp_path):
    d = tmp_path / "tb"
    run(d, 3000, ["metrics_every=1000", "logger=tensorboard"])
    tb = scalars(d / "tensorboard")
    assert len(list((d / "tensorboard").iterdir())) == 1
    assert len(tb["episode/return"]) > 10
    assert tb["episode/return"] == expected_episodes(d, "return")
    assert tb["episode/length"] == expected_episodes(d, "length")
    assert "episode/segment" not in tb     # CartPole's dynamics do not change
    periodic = R.read_metrics(d, "periodic")
    assert [p["step"] for p in periodic] == [1000, 2000, 3000]
    for tag, get in [("train/steps_per_s", lambda p: p["steps_per_s"]),
                     ("train/recent_return", lambda p: p["recent_return"]),
                     ("latency/act_us_p50", lambda p: p["act_us"]["p50"]),
                     ("latency/act_us_p99", lambda p: p["act_us"]["p99"]),
                     ("latency/learn_us_p50", lambda p: p["learn_us"]["p50"]),
                     ("latency/learn_us_p99", lambda p: p["learn_us"]["p99"]),
                     ("learner/updates", lambda p: p["updates"]), ("learner/skipped", lambda p: p["skipped"]),
                     ("learner/rollbacks", lambda p: p["rollbacks"]),
                     ("health/samples", lambda p: p["health"]["samples"]),
                     ("health/dormant/actor", lambda p: p["health"]["dormant"]["actor"]),
                     ("health/weight_norm/critic/0", lambda p: p["health"]["weight_norm"]["critic"][0]),
                     ("health/weight_norm/critic/1", lambda p: p["health"]["weight_norm"]["critic"][1]),
                     ("health/step/actor/1", lambda p: p["health"]["step"]["actor"][1])]:
        assert tb[tag] == [(p["step"], f32(get(p))) for p in periodic], tag
    assert tb["learner/updates"][-1][1] > 0
    # only episode, periodic and health scalars: no tags for checkpoint / start / end records
    assert {tag.split("/")[0] for tag in tb} == {"episode", "train", "latency", "learner", "health"}


@needs_tensorboardx
def test_writer_maps_records_and_skips_what_is_not_a_number(tmp_path):
    from launch.tb_logger import TensorBoardLogger

    log = TensorBoardLogger(tmp_path / "tb")
    log.write({"kind": "episode", "step": 7, "return": 1.5, "length": 7, "segment": 2, "wall_s": 0.1})
    log.write({"kind": "periodic", "step": 10, "steps_per_s": 100.0, "recent_return": None,
               "act_us": {"p50": 3.0, "p99": 9.0}, "learn_us": {"p50": 4.0, "p99": float("nan")},
               "updates": 9, "skipped": 1, "rollbacks": 0,
               "health": {"samples": 1, "dormant": {}, "step": {"actor": [0.5, float("inf")]}, "ok": True}})
    log.write({"kind": "rollback", "step": 11, "rollbacks": 1, "partial_return": 3.0})
    log.write({"kind": "checkpoint", "step": 12, "file": "ckpt-0000000012.npz"})
    log.close()
    tb = scalars(tmp_path / "tb")
    assert tb == {"episode/return": [(7, 1.5)], "episode/length": [(7, 7.0)], "episode/segment": [(7, 2.0)],
                  "train/steps_per_s": [(10, 100.0)], "latency/act_us_p50": [(10, 3.0)],
                  "latency/act_us_p99": [(10, 9.0)], "latency/learn_us_p50": [(10, 4.0)],
                  "learner/updates": [(10, 9.0)], "learner/skipped": [(10, 1.0)],
                  "learner/rollbacks": [(10, 0.0)], "health/samples": [(10, 1.0)],
                  "health/step/actor/0": [(10, 0.5)]}


@needs_tensorboardx
def test_the_writer_does_not_load_torch(tmp_path):
    code = ("import sys\nfrom launch.tb_logger import TensorBoardLogger\n"
            "log = TensorBoardLogger(sys.argv[1])\nlog.write({'kind': 'episode', 'step': 1, 'return': 1.0, "
            "'length': 1})\nlog.close()\nprint('torch' in sys.modules)\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "tb")], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False"
    assert scalars(tmp_path / "tb") == {"episode/return": [(1, 1.0)], "episode/length": [(1, 1.0)]}


def test_the_default_logger_writes_no_event_files_and_needs_no_tensorboardx(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    d = tmp_path / "files"
    summary = run(d, 300)
    assert summary["steps"] == 300 and R.read_metrics(d, "episode")
    assert not (d / "tensorboard").exists()
    assert load_train_config(d / "config.yaml").logger == "files"


# ----------------------------------------------------------------------------- resume
@needs_tensorboardx
def test_a_resumed_run_purges_the_events_after_its_checkpoint(tmp_path):
    d = tmp_path / "resumed"
    run(d, 2537, ["checkpoint_every=1000", "metrics_every=1000", "logger=tensorboard"])
    # the newest checkpoint lost: the run resumes from step 2000, the first session's events after it
    # are orphans (metrics.jsonl is cut back to step 2000)
    newest = list_checkpoints(d)[0]
    assert newest.name == "ckpt-0000002537.npz"
    newest.unlink()
    run(d, 3500, resume=d)
    assert R.read_metrics(d, "resume")[-1]["checkpoint"] == "ckpt-0000002000.npz"
    assert len(list((d / "tensorboard").glob("events.out.tfevents.*"))) == 2
    raw, tb = scalars(d / "tensorboard", purge=False), scalars(d / "tensorboard")
    episodes = expected_episodes(d, "return")
    assert any(s > 2537 for s, _ in episodes)
    assert len(raw["episode/return"]) > len(episodes)       # the orphans are in the files...
    assert tb["episode/return"] == episodes                  # ...and hidden, nothing else
    # the periodic record at the checkpoint's own step (2000) was written before it and is kept
    assert [s for s, _ in tb["train/steps_per_s"]] == [1000, 2000, 3000]
    assert [s for s, _ in raw["train/steps_per_s"]] == [1000, 2000, 3000]   # 2537 is no multiple


@needs_tensorboardx
def test_a_files_run_resumed_with_tensorboard_logs_from_the_checkpoint_on(tmp_path):
    d = tmp_path / "switch"
    run(d, 700, ["metrics_every=500"])
    run(d, 1500, ["logger=tensorboard"], resume=d)
    tb = scalars(d / "tensorboard")
    assert tb["episode/return"] == [e for e in expected_episodes(d, "return") if e[0] > 700]
    assert [s for s, _ in tb["train/steps_per_s"]] == [1000, 1500]


# ----------------------------------------------------------------------------- errors
def test_logger_tensorboard_without_tensorboardx_fails_before_any_file(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    d = tmp_path / "new" / "run"
    with pytest.raises(TrainError) as err:
        run(d, 100, ["logger=tensorboard"])
    message = str(err.value)
    assert message.startswith("logger: ") and INSTALL in message and "tensorboardX" in message
    assert not (tmp_path / "new").exists()


def test_resuming_with_tensorboard_without_tensorboardx_changes_nothing(tmp_path, monkeypatch):
    d = tmp_path / "old"
    run(d, 200)
    before = {p: p.read_bytes() for p in d.rglob("*") if p.is_file()}
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    with pytest.raises(TrainError, match=r"^logger: .*" + INSTALL.replace("[", r"\[").replace("]", r"\]")):
        run(d, 400, ["logger=tensorboard"], resume=d)
    assert {p: p.read_bytes() for p in d.rglob("*") if p.is_file()} == before


def test_cli_reports_a_missing_tensorboardx_with_status_2(tmp_path, monkeypatch, capsys):
    from launch.cli import main

    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    status = main(["train", "--set", "env_id=CartPole-P-v1", "--set", "logger=tensorboard",
                   "--set", f"output={tmp_path / 'x'}", *[a for t in TINY for a in ("--set", t)]])
    assert status == 2
    err = capsys.readouterr().err
    assert "logger: " in err and INSTALL in err
    assert not (tmp_path / "x").exists()


def test_an_unknown_logger_is_a_config_error_naming_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"logger: expected one of 'files', 'tensorboard', found 'wandb'"):
        load_train_config(None, ["logger=wandb"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("env_id: CartPole-P-v1\nlogger: wandb\n")
    with pytest.raises(ConfigError, match=r"logger: expected one of .*found 'wandb'") as err:
        load_train_config(bad)
    assert str(bad) in str(err.value)

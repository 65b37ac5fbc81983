"""`rtu-control bench agent` and `rtu-control bench learning`: packaged configs equal the defaults,
short smoke runs print their tables and write JSON (and curves), bad values exit with status 2."""
import json

import pytest

from controller.config import load_config, read_yaml
from launch.bench_agent import AgentBenchConfig
from launch.cli import main, packaged_config
from launch.learning import LearningBenchConfig


@pytest.mark.parametrize("cls, name", [(AgentBenchConfig, "bench_agent.yaml"),
                                       (LearningBenchConfig, "bench_learning.yaml")])
def test_packaged_configs_equal_the_defaults(cls, name):
    assert load_config(cls, packaged_config(name)) == cls()
    assert set(read_yaml(packaged_config(name))) == {f.name for f in cls.__dataclass_fields__.values()}


def test_bench_agent_smoke_run(tmp_path, capsys):
    out = tmp_path / "agent.json"
    status = main(["bench", "agent", "--set", "calls=200", "--set", "warmup_calls=20",
                   "--set", "sizes=[small]", "--set", "dtypes=[float32]", "--set", f"output={out}"])
    assert status == 0
    text = capsys.readouterr().out
    assert "agent rtu-linear act+learn" in text and "× ff" in text
    rows = json.loads(out.read_text())["rows"]
    assert {r["case"] for r in rows} == {"agent rtu-linear act", "agent rtu-linear act+learn",
                                         "agent none act", "agent none act+learn"}
    for r in rows:
        assert 0 < r["median_us"] <= r["p99_us"]
    by_case = {r["case"]: r for r in rows}
    assert by_case["agent rtu-linear act"]["median_us"] < by_case["agent rtu-linear act+learn"]["median_us"]


def test_bench_learning_smoke_run(tmp_path, capsys):
    status = main(["bench", "learning", "--set", "steps=400", "--set", "seeds=[0, 1]", "--set", "workers=1",
                   "--set", "cells=[rtu-linear, none]", "--set", "n_units=8", "--set", "last_episodes=3",
                   "--set", f"output={tmp_path}"])
    assert status == 0
    assert "final (last 3 ep.)" in capsys.readouterr().out
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert len(summary["runs"]) == 4 and len(summary["summary"]) == 2
    for run in summary["runs"]:
        lines = [x for x in map(json.loads, open(run["curve"])) if x["kind"] == "episode"]
        assert len(lines) == run["episodes"] > 0
        assert sum(x["length"] for x in lines) <= 400
        assert run["agent_us_per_step"] > 0 and run["env_us_per_step"] > 0
    assert (tmp_path / "trials.json").is_file() and (tmp_path / "report" / "table.md").is_file()   # a sweep


def test_bench_learning_is_the_packaged_learning_sweep():
    """`bench learning` with its defaults runs exactly the trials of `sweep --config learning`."""
    from launch.cli import packaged_config
    from launch.learning import sweep_config
    from launch.sweep_config import expand, load_sweep_config

    path = packaged_config("sweep_learning.yaml")
    preset = load_sweep_config(path)
    assert preset == sweep_config(LearningBenchConfig())
    assert [t.data for t in expand(preset, path, "out")] == \
        [t.data for t in expand(sweep_config(LearningBenchConfig()), "bench", "out")]


@pytest.mark.parametrize("args, message", [
    (["bench", "agent", "--set", "calls=5"], "calls: expected an integer >= 100, found 5"),
    (["bench", "agent", "--set", "between_ticks_us=-1"], "between_ticks_us: expected a number of microseconds"),
    (["bench", "agent", "--set", "critic_thread=maybe"], "critic_thread"),
    (["bench", "learning", "--set", "cells=[gru]"], "cells[0]: expected one of"),
    (["bench", "learning", "--set", "env_kwargs=[1]"], "env_kwargs: expected a mapping with string keys"),
])
def test_bad_values_exit_2_naming_the_key(args, message, capsys):
    assert main(args) == 2
    assert message in capsys.readouterr().err



@pytest.mark.parametrize("critic_thread", [False, True])
def test_bench_agent_critic_thread_and_a_pause_between_ticks(tmp_path, monkeypatch, critic_thread):
    """critic_thread and between_ticks_us reach the agent and the rows, and the pause is not timed.
    The timing bound is asserted single-threaded only: with the thread, a machine busy with other work
    (CI, a learning run) can keep the helper off a core for a scheduler slice."""
    import launch.bench_agent as bench_agent_module
    from controller.critic_thread import usable_cpus

    spun = []
    real_spin = bench_agent_module.spin
    monkeypatch.setattr(bench_agent_module, "spin", lambda us: (spun.append(us), real_spin(us)))
    out = tmp_path / "agent.json"
    status = main(["bench", "agent", "--set", "calls=200", "--set", "warmup_calls=20",
                   "--set", "sizes=[small]", "--set", "dtypes=[float32]", "--set", "cells=[rtu-linear]",
                   "--set", f"critic_thread={str(critic_thread).lower()}", "--set", "between_ticks_us=2000",
                   "--set", f"output={out}"])
    assert status == 0
    rows = json.loads(out.read_text())["rows"]
    label = " [critic thread]" if critic_thread and usable_cpus() >= 2 else ""
    assert {r["case"] for r in rows} == {f"agent rtu-linear act{label} [+2000 us between ticks]",
                                         f"agent rtu-linear act+learn{label} [+2000 us between ticks]"}
    assert spun.count(2000) == 20 + 200 + 200          # warm-up, act loop, act+learn loop
    if not critic_thread:
        for r in rows:
            assert 0 < r["median_us"] < 2000            # the 2 ms pause is outside the timed region


def test_the_replayed_stream_feeds_the_agent_row_after_row_in_a_cycle():
    """Tick k = 1, 2, ...: act(rows[k]), then learn(rewards[k], rows[k + 1], False, False), indices
    modulo STREAM; the observations are the stream's rows themselves (no copies)."""
    import numpy as np

    from launch.bench_agent import STREAM, ReplayedStream
    from launch.runner import Runner

    rng = np.random.default_rng(0)
    rows, rewards = rng.standard_normal((STREAM, 3)), rng.standard_normal(STREAM)
    seen = []

    class Agent:
        def act(self, obs):
            seen.append(("act", obs))
            return 0

        def learn(self, reward, obs, terminated, truncated):
            seen.append(("learn", reward, obs, terminated, truncated))

    stream = ReplayedStream(rows, rewards)
    runner = Runner(Agent(), stream, stream.reset()[0])
    runner.run(STREAM + 3)
    assert runner.episodes == 0 and len(seen) == 2 * (STREAM + 3)
    for tick in range(STREAM + 3):
        k = (tick + 1) % STREAM
        (_, acted), (_, reward, following, terminated, truncated) = seen[2 * tick], seen[2 * tick + 1]
        assert acted.base is rows and np.array_equal(acted, rows[k])
        assert reward == rewards[k] and np.array_equal(following, rows[(k + 1) % STREAM])
        assert not terminated and not truncated

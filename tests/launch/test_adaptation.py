"""launch.adaptation on run folders with known episode returns: per-segment figures, recovery steps
against the return before the change, fresh agents matched by schedule seed and segment; and
launch.learner_health's record of a training run."""
import json

import pytest
import yaml

from launch.adaptation import analyse, markdown


def _run(folder, seed, episodes, env_kwargs=None):
    """A results folder: config.yaml and metrics.jsonl with episodes [(return, segment)] of 1000 steps."""
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump({"seed": seed, "env_kwargs": env_kwargs or {}}))
    lines = [{"kind": "episode", "step": 1000 * (i + 1), "episode": i + 1, "return": r, "length": 1000,
              **({"segment": s} if s is not None else {})} for i, (r, s) in enumerate(episodes)]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    return folder


def test_recovery_is_counted_from_the_change_to_90_percent_of_the_return_before(tmp_path):
    # segment 0: 20 episodes at 100; segment 1: drops to 10, then climbs 10 per episode
    eps = [(100.0, 0)] * 20 + [(10.0 + 10 * i, 1) for i in range(20)]
    run = _run(tmp_path / "run", 3, eps)
    figs = analyse([run], window=1)["runs"][str(run)]
    assert figs[0]["mean"] == 100.0 and "before" not in figs[0]
    one = figs[1]
    assert one["start_step"] == 20_000 and one["before"] == 100.0 and one["first"] == 10.0
    # 10 + 10 i >= 90 first at i = 8: the 9th episode of the segment ends 9,000 steps after the change
    assert one["recovery_steps"] == 9_000


def test_a_segment_that_never_recovers_says_so_and_fresh_agents_are_matched(tmp_path):
    eps = [(100.0, 0)] * 20 + [(50.0, 1)] * 20
    run = _run(tmp_path / "run", 5, eps)
    fresh = _run(tmp_path / "fresh", 9, [(40.0 + 10 * i, None) for i in range(20)],
                 {"first_segment": 1, "every": 0, "schedule_seed": 5})
    other = _run(tmp_path / "other", 6, [(0.0, None)] * 20, {"first_segment": 1, "every": 0})
    report = analyse([run], [fresh, other], window=1)
    one = report["runs"][str(run)][1]
    assert one["recovery_steps"] is None
    # the fresh agent of schedule seed 5 reaches 90 at its 6th episode; the one of seed 6 is not matched
    assert one["fresh_steps"] == 6_000 and one["fresh_dir"] == str(fresh)
    assert one["fresh_mean"] == pytest.approx(sum(40.0 + 10 * i for i in range(20)) / 20)
    table = markdown(report)
    assert "| 1 | 100 (1) | 50 (1) |" in table and "0/1 recover" in table


def test_train_writes_the_learner_health_into_its_periodic_records(tmp_path):
    from launch.results import read_metrics
    from launch.train import main_train

    main_train(None, ["env_id=CartPole-P-v1", "steps=2000", "metrics_every=1000", "agent.n_units=8",
                      "plots=false", "progress=none", f"output={tmp_path / 'r'}"], echo=lambda line: None)
    records = read_metrics(tmp_path / "r", "periodic")
    health = records[-1]["health"]
    assert health["samples"] == 100         # one sample every 10 steps of the 1,000-step window
    for net in ("actor", "critic"):
        assert 0.0 <= health["dormant"][net] <= 1.0
        assert all(v > 0 for v in health["weight_norm"][net])
        assert len(health["trace_l1"][net]) == 2 and len(health["step"][net]) == 2

"""envs.nonstationary: the MuJoCo parameters of a segment really change (and nothing else), only at
resets, reproducibly from the seed; a resumed training run continues the schedule bit for bit."""
import json

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401  (registers the ids)
from envs.errors import EnvConfigError
from envs.nonstationary import ChangingDynamics, segment_dynamics

UNCHANGED = ("geom_size", "geom_pos", "body_pos", "body_inertia", "dof_damping", "jnt_range",
             "actuator_ctrlrange", "geom_friction")   # geom_friction: its torsional/rolling columns


def _model_fields(model):
    out = {name: np.array(getattr(model, name), copy=True) for name in UNCHANGED}
    out["geom_friction"] = out["geom_friction"][:, 1:]
    out["body_mass_rest"] = np.array(model.body_mass[2:], copy=True)
    out["timestep"] = np.array(model.opt.timestep)
    return out


def test_a_change_sets_the_drawn_parameters_and_nothing_else():
    plain = gym.make("HalfCheetah-v5").unwrapped.model
    env = gym.make("ChangingHalfCheetah-P-v5", every=50, gravity=(0.8, 1.2))
    _, info = env.reset(seed=4)
    d = info["dynamics"]
    m = env.unwrapped.model
    assert d["segment"] == 0 and d == {"segment": 0, **segment_dynamics(4, 0, env.get_wrapper_attr("ranges"))}
    np.testing.assert_allclose(m.geom_friction[:, 0], plain.geom_friction[:, 0] * d["friction"])
    np.testing.assert_allclose(m.actuator_gear[:, 0], plain.actuator_gear[:, 0] * d["motor"])
    np.testing.assert_allclose(m.opt.gravity, plain.opt.gravity * d["gravity"])
    assert m.body_mass[1] == pytest.approx(plain.body_mass[1] + d["payload"] * plain.body_subtreemass[0])
    assert m.body_subtreemass[0] == pytest.approx(plain.body_subtreemass[0] * (1 + d["payload"]))
    before, after = _model_fields(plain), _model_fields(m)
    assert all(np.array_equal(before[k], after[k]) for k in before)


def test_the_physics_follows_the_changed_model():
    """A step of the changing env equals a step of a plain env whose model was given the same values."""
    env = gym.make("ChangingHalfCheetah-v5", every=0, first_segment=3)
    env.reset(seed=1)
    plain = gym.make("HalfCheetah-v5")
    plain.reset(seed=1)
    pm, m = plain.unwrapped.model, env.unwrapped.model
    pm.geom_friction[:] = m.geom_friction
    pm.actuator_gear[:] = m.actuator_gear
    pm.body_mass[:] = m.body_mass
    import mujoco
    mujoco.mj_setConst(pm, plain.unwrapped.data)
    plain.unwrapped.set_state(env.unwrapped.data.qpos.copy(), env.unwrapped.data.qvel.copy())
    action = np.linspace(-1, 1, 6)
    for _ in range(20):
        o1, r1, *_ = env.step(action)
        o2, r2, *_ = plain.step(action)
    np.testing.assert_array_equal(env.unwrapped.data.qpos, plain.unwrapped.data.qpos)
    np.testing.assert_array_equal(o1, o2)
    assert r1 == r2


def test_changes_come_only_at_resets_and_follow_the_seed():
    def run(seed):
        env = gym.make("ChangingHalfCheetah-P-v5", every=150, max_episode_steps=100)
        seen = [env.reset(seed=seed)[1]["dynamics"]]
        frictions = []
        for _ in range(5):
            for _ in range(100):
                *_, term, trunc, _ = env.step(np.zeros(6))
                frictions.append(float(env.unwrapped.model.geom_friction[0, 0]))
            seen.append(env.reset()[1]["dynamics"])
        return seen, frictions
    seen, frictions = run(7)
    # steps 0..499 in episodes of 100: segment = steps // 150 at each reset
    assert [d["segment"] for d in seen] == [0, 0, 1, 2, 2, 3]
    for episode in range(5):      # constant within every episode
        assert len(set(frictions[100 * episode:100 * (episode + 1)])) == 1
    assert run(7)[0] == seen and run(8)[0] != seen


def test_bad_schedules_are_clear_errors():
    with pytest.raises(EnvConfigError, match="friction: expected factors > 0"):
        gym.make("ChangingHalfCheetah-P-v5", friction=(0.0, 1.0))
    with pytest.raises(EnvConfigError, match="every: expected env steps >= 0"):
        gym.make("SlipperyAnt-P-v5", every=-1)
    with pytest.raises(EnvConfigError, match="is not a MuJoCo env"):
        ChangingDynamics(gym.make("CartPole-v1"), every=10)


def test_slippery_ant_changes_the_friction_only():
    env = gym.make("SlipperyAnt-P-v5", every=0, first_segment=2)
    _, info = env.reset(seed=0)
    d = info["dynamics"]
    assert 0.02 <= d["friction"] <= 2.0 and d["payload"] == 0.0 and d["motor"] == 1.0
    assert env.observation_space.shape == (13,)


def test_a_resumed_training_run_continues_the_schedule_bit_for_bit(tmp_path):
    from launch.train import main_train

    common = ["env_id=ChangingHalfCheetah-P-v5", "env_kwargs.every=2000", "agent.n_units=8",
              "agent.encoder_width=8", "agent.head_width=8", "checkpoint_every=2500", "plots=false",
              "progress=none"]
    main_train(None, common + ["steps=7000", f"output={tmp_path / 'whole'}"], echo=lambda line: None)
    main_train(None, common + ["steps=3700", f"output={tmp_path / 'cut'}"], echo=lambda line: None)
    main_train(None, ["steps=7000"], resume=str(tmp_path / "cut"), echo=lambda line: None)

    def records(run, kind):
        return [{k: v for k, v in r.items() if k != "wall_s"}
                for r in map(json.loads, open(run / "metrics.jsonl")) if r["kind"] == kind]
    whole, cut = records(tmp_path / "whole", "episode"), records(tmp_path / "cut", "episode")
    assert whole == cut and [e["segment"] for e in whole] == [0, 0, 1, 1, 2, 2, 3]
    assert records(tmp_path / "whole", "dynamics") == records(tmp_path / "cut", "dynamics")

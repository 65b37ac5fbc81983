"""launch.velocity_probe: windows never cross episodes, the decoders and R² against numpy, the recorded
masked observation and qvel against the simulator, and a small end-to-end run."""
import json

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401
from launch import velocity_probe as vp


def test_history_rows_and_windows_stay_inside_one_episode():
    episode = np.array([0, 0, 0, 1, 1, 1, 1, 2])
    rows = vp.history_rows(episode, 3)
    assert rows.tolist() == [2, 5, 6]            # t=7 is the first step of episode 2; 3,4 lack history
    x = np.arange(8.0)[:, None] * np.array([[1.0, 10.0]])
    w = vp.windows(x, rows, 3)
    assert w.shape == (3, 6)
    assert w[1].tolist() == [5, 50, 4, 40, 3, 30]  # [x_t, x_{t-1}, x_{t-2}]


def test_split_keeps_whole_episodes_apart():
    episode = np.repeat(np.arange(10), 20)
    rows = vp.history_rows(episode, 5)
    train, test = vp.split_by_episode(episode, rows, 0.2)
    assert set(episode[rows][train]).isdisjoint(episode[rows][test])
    assert set(episode[rows][test]) == {8, 9}
    with pytest.raises(ValueError, match="single episode"):
        vp.split_by_episode(np.zeros(50, np.int64), np.arange(50), 0.2)


def test_r2_and_ridge_against_numpy(rng):
    x = rng.standard_normal((400, 5))
    w = rng.standard_normal((5, 2))
    y = x @ w + 0.3
    pred = vp.ridge_predict(x[:300], y[:300], x[300:], lam=1e-9)
    np.testing.assert_allclose(pred, y[300:], atol=1e-5)    # exact linear map recovered
    noisy = y[300:] + rng.standard_normal((100, 2))
    expect = 1 - ((noisy - y[300:]) ** 2).sum(0) / ((y[300:] - y[300:].mean(0)) ** 2).sum(0)
    np.testing.assert_allclose(vp.r2(noisy, y[300:]), expect)
    assert np.isnan(vp.r2(np.zeros((3, 1)), np.ones((3, 1))))[0]   # constant target: undefined, not 1


def test_recorded_masked_observation_and_qvel_are_the_simulators():
    data = vp.record("HalfCheetah", train_steps=0, record_steps=30, seed=3)
    env = gym.make("HalfCheetah-P-v5")
    obs, _ = env.reset(seed=3)
    np.testing.assert_array_equal(data["masked"][0], obs)               # the -P env's own first observation
    np.testing.assert_array_equal(data["masked"][0], env.unwrapped.data.qpos[1:])
    assert data["qvel"].shape == (30, 9) and data["masked"].shape == (30, 8)
    np.testing.assert_array_equal(data["masked"], data["obs"][:, :8])    # qpos[1:] of every recorded step
    # qvel is data.qvel at the recorded observation: the full observation carries the same values
    np.testing.assert_array_equal(data["obs"][:, 8:], data["qvel"])
    assert data["joint_dofs"].tolist() == list(range(3, 9))              # rootx, rootz, rooty excluded


def test_joint_velocities_come_back_from_two_positions_not_from_one(tmp_path):
    # random-ish policy (200 training steps): joint velocities are (nearly) a difference of positions
    assert vp.main(["--env", "HalfCheetah", "--train-steps", "200", "--record-steps", "3000",
                    "--mlp-epochs", "1", "--output", str(tmp_path)]) == 0
    out = json.loads((tmp_path / "HalfCheetah-seed0.json").read_text())
    ridge = {row["k"]: row for row in out["rows"] if row["decoder"] == "ridge" and row["k"] is not None}
    assert ridge[2]["joints"] > ridge[1]["joints"] + 0.3
    assert ridge[2]["joints"] > 0.7
    cells = [row for row in out["rows"] if row["k"] is None]
    assert [row["features"].split()[1] for row in cells] == ["none", "rtu-linear"]
    assert (tmp_path / "HalfCheetah-seed0.npz").exists()

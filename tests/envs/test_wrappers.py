"""Observation wrappers: exact behaviour against the unwrapped stream, seeding, composition, bad input."""
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs  # noqa: F401  (registers the ids)
from envs.wrappers import (
    MAX_DELAY,
    GaussianObservationNoise,
    ObservationDelay,
    PreviousActionReward,
    apply_wrappers,
)

SEED = 4242


def rollout(env, n, seed=SEED):
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    out, acts, rews = [obs], [], []
    for _ in range(n):
        a = env.action_space.sample()
        obs, r, term, trunc, _ = env.step(a)
        out.append(obs)
        acts.append(a)
        rews.append(r)
        assert not (term or trunc)
    return np.array(out), acts, rews


@pytest.mark.parametrize("delay", [0, 1, 3])
def test_delay_shifts_the_stream(delay):
    plain, _, _ = rollout(gym.make("Swimmer-P-v5"), 12)
    delayed, _, _ = rollout(ObservationDelay(gym.make("Swimmer-P-v5"), delay=delay), 12)
    for t in range(len(plain)):
        np.testing.assert_array_equal(delayed[t], plain[max(t - delay, 0)], err_msg=f"t={t} seed={SEED}")


def test_delay_zero_fill():
    delayed, _, _ = rollout(ObservationDelay(gym.make("Swimmer-P-v5"), delay=2, fill="zeros"), 4)
    plain, _, _ = rollout(gym.make("Swimmer-P-v5"), 4)
    assert not delayed[:2].any()
    np.testing.assert_array_equal(delayed[2:], plain[:3])


def test_noise_statistics_and_seeding():
    env = GaussianObservationNoise(gym.make("HalfCheetah-P-v5"), std=0.5)
    noisy, _, _ = rollout(env, 200)
    plain, _, _ = rollout(gym.make("HalfCheetah-P-v5"), 200)
    err = noisy - plain
    assert abs(err.mean()) < 0.05 and abs(err.std() - 0.5) < 0.05
    again, _, _ = rollout(GaussianObservationNoise(gym.make("HalfCheetah-P-v5"), std=0.5), 200)
    np.testing.assert_array_equal(noisy, again)  # reset(seed=...) seeds the noise
    other, _, _ = rollout(GaussianObservationNoise(gym.make("HalfCheetah-P-v5"), std=0.5), 200, seed=SEED + 1)
    assert not np.array_equal(noisy[1:5], other[1:5])


def test_noise_zero_is_identity_and_respects_bounds():
    plain, _, _ = rollout(gym.make("Pendulum-P-v1"), 20)
    same, _, _ = rollout(GaussianObservationNoise(gym.make("Pendulum-P-v1"), std=0.0), 20)
    np.testing.assert_array_equal(plain, same)
    env = GaussianObservationNoise(gym.make("Pendulum-P-v1"), std=[5.0, 5.0])
    noisy, _, _ = rollout(env, 50)
    assert noisy.dtype == np.float32 and np.all(np.abs(noisy) <= 1.0)


def test_previous_action_reward_box_and_discrete():
    env = PreviousActionReward(gym.make("Hopper-P-v5"))
    assert env.observation_space.shape == (5 + 3 + 1,)
    obs, acts, rews = rollout(env, 5)
    np.testing.assert_array_equal(obs[0, 5:], 0.0)
    for t in range(1, len(obs)):
        np.testing.assert_array_equal(obs[t, 5:8], np.clip(acts[t - 1], -1, 1))
        assert obs[t, 8] == rews[t - 1]
    env = PreviousActionReward(gym.make("CartPole-P-v1"), reward=False)
    assert env.observation_space.shape == (4,) and env.observation_space.dtype == np.float32
    env.reset(seed=1)
    o, *_ = env.step(1)
    np.testing.assert_array_equal(o[2:], [0.0, 1.0])


@pytest.mark.parametrize("env_id", ["CartPole-P-v1", "Reacher-V-v5", "Ant-P-v5"])
def test_composed_stack_passes_check_env(env_id):
    env = apply_wrappers(
        gym.make(env_id, disable_env_checker=True),
        delay=2,
        noise_std=0.1,
        prev_action=True,
        prev_reward=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(env, skip_render_check=True)
    rebuilt = gym.make(env.spec)
    assert rebuilt.observation_space == env.observation_space


def test_bad_parameters_name_the_parameter():
    env = gym.make("Hopper-P-v5")
    with pytest.raises(ValueError, match="delay"):
        ObservationDelay(env, delay=-1)
    with pytest.raises(ValueError, match="delay"):
        ObservationDelay(env, delay=MAX_DELAY + 1)
    with pytest.raises(ValueError, match="delay"):
        ObservationDelay(env, delay=1.5)
    with pytest.raises(ValueError, match="fill"):
        ObservationDelay(env, delay=1, fill="last")
    with pytest.raises(ValueError, match="std"):
        GaussianObservationNoise(env, std=-0.1)
    with pytest.raises(ValueError, match="std"):
        GaussianObservationNoise(env, std=float("nan"))
    with pytest.raises(ValueError, match="std"):
        GaussianObservationNoise(env, std=[0.1, 0.2])
    with pytest.raises(ValueError, match="reward"):
        PreviousActionReward(env, action=False, reward=False)
    with pytest.raises(ValueError, match="delay"):
        apply_wrappers(env, delay=-3)


def test_wrappers_through_make_kwargs():
    env = gym.make("Hopper-P-v5", wrappers={"delay": 2, "noise_std": 0.0, "prev_action": True, "prev_reward": True})
    assert env.observation_space.shape == (5 + 3 + 1,)
    plain, _, _ = rollout(gym.make("Hopper-P-v5"), 6)
    wrapped, acts, rews = rollout(env, 6)
    for t in range(len(plain)):
        np.testing.assert_array_equal(wrapped[t, :5], plain[max(t - 2, 0)])
    assert wrapped[3, 8] == rews[2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(gym.make("Hopper-P-v5", disable_env_checker=True, wrappers={"delay": 1}), skip_render_check=True)
    with pytest.raises(ValueError, match="unknown key"):
        gym.make("Hopper-P-v5", wrappers={"dealy": 1})
    with pytest.raises(ValueError, match="delay"):
        gym.make("Hopper-P-v5", wrappers={"delay": 5000})


def test_frame_stack_shows_the_last_k_observations_oldest_first():
    k, n = 3, 5
    env = gym.make("Hopper-P-v5", wrappers={"frame_stack": k})
    assert env.observation_space.shape == (k * n,)
    plain, _, _ = rollout(gym.make("Hopper-P-v5"), 7)
    stacked, _, _ = rollout(env, 7)
    for t in range(len(plain)):
        for j in range(k):          # block j holds o_{t-k+1+j}; before the reset, the reset observation
            np.testing.assert_array_equal(stacked[t, j * n:(j + 1) * n], plain[max(t - k + 1 + j, 0)])
    # after the inner wrappers: the delayed observation and the appended reward are what gets stacked
    both = gym.make("Hopper-P-v5", wrappers={"delay": 1, "prev_reward": True, "frame_stack": 2})
    assert both.observation_space.shape == (2 * (n + 1),)
    out, _, rews = rollout(both, 5)
    np.testing.assert_array_equal(out[4, n + 1:2 * n + 1], plain[3])
    assert out[4, 2 * n + 1] == rews[3] and out[4, n] == rews[2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(gym.make("HalfCheetah-P-v5", disable_env_checker=True, wrappers={"frame_stack": 2}),
                  skip_render_check=True)
    rebuilt = gym.make(env.spec)
    assert rebuilt.observation_space == env.observation_space


@pytest.mark.parametrize("bad", [0, 65, 1.5, "2"])
def test_frame_stack_out_of_range_names_the_key(bad):
    with pytest.raises(ValueError, match="frame_stack"):
        gym.make("Hopper-P-v5", wrappers={"frame_stack": bad})

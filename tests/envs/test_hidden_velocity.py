"""HiddenVelocity-v0 / HiddenVelocityFull-v0: the dynamics against their closed forms (constant force,
damping, walls), reward, observation and truncation, seeding, the documented reference controllers (PD
on the true or finite-difference velocity far ahead of every P-only gain), argument validation, speed."""
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs  # noqa: F401  (registers the ids)
from envs import EnvConfigError, HiddenVelocity

SEED = 99
DT = 0.1


@pytest.mark.parametrize("env_id", ["HiddenVelocity-v0", "HiddenVelocityFull-v0"])
@pytest.mark.parametrize("kwargs", [{}, {"obs_noise_std": 0.1, "damping": 0.5, "episode_steps": 7}])
def test_check_env_non_default(env_id, kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # infinite Box bounds, by design
        check_env(gym.make(env_id, disable_env_checker=True, **kwargs), skip_render_check=True)


def test_registered_ids_observe_what_they_say():
    hidden, full = gym.make("HiddenVelocity-v0"), gym.make("HiddenVelocityFull-v0")
    assert hidden.observation_space.shape == (2,) and full.observation_space.shape == (3,)
    oh, ih = hidden.reset(seed=SEED)
    of, if_ = full.reset(seed=SEED)
    np.testing.assert_array_equal(oh, np.float32([ih["position"], ih["target"]]))
    np.testing.assert_array_equal(of, np.float32([if_["position"], if_["target"], if_["velocity"]]))
    assert ih == if_  # same state for the same seed: only the observation differs


@pytest.mark.parametrize("u", [0.7, -0.3, 4.0])
def test_constant_force_closed_form(u):
    env = HiddenVelocity(wall=1000.0, episode_steps=60, action_cost=0.05)
    obs, info = env.reset(seed=SEED)
    x0, v0, g = info["position"], info["velocity"], info["target"]
    a = float(np.clip(np.float32(u), -1, 1))  # the applied action: float32, clipped; max_accel = 1
    for t in range(1, 61):
        obs, r, term, trunc, info = env.step(np.array([u], dtype=np.float32))
        # semi-implicit Euler: v_t = v0 + t·dt·a, x_t = x0 + dt Σ_{k=1..t} v_k
        v = v0 + t * DT * a
        x = x0 + t * DT * v0 + DT * DT * a * t * (t + 1) / 2
        assert info["velocity"] == pytest.approx(v, rel=1e-12, abs=1e-12)
        assert info["position"] == pytest.approx(x, rel=1e-12, abs=1e-12)
        assert r == pytest.approx(-((x - g) ** 2 + 0.05 * a**2), rel=1e-12, abs=1e-12)
        np.testing.assert_array_equal(obs, np.float32([info["position"], g]))
        assert not term and trunc == (t == 60) and info["t"] == t
    with pytest.raises(gym.error.ResetNeeded):
        env.step(np.array([0.0], dtype=np.float32))


def test_damping_closed_form():
    b = 2.0
    env = HiddenVelocity(damping=b, init_speed=3.0, wall=1000.0)
    _, info = env.reset(seed=SEED)
    while abs(info["velocity"]) < 1.0:  # a start that moves clearly
        _, info = env.reset()
    x0, v0 = info["position"], info["velocity"]
    q = 1.0 - DT * b
    for t in range(1, 40):
        _, _, _, _, info = env.step(np.array([0.0], dtype=np.float32))
        assert info["velocity"] == pytest.approx(v0 * q**t, rel=1e-12, abs=1e-14)
        assert info["position"] == pytest.approx(x0 + DT * v0 * sum(q**k for k in range(1, t + 1)),
                                                 rel=1e-12, abs=1e-12)


def test_inelastic_walls():
    env = HiddenVelocity(wall=1.5, episode_steps=200)
    _, info = env.reset(seed=SEED)
    hit = None
    for t in range(1, 101):
        prev = info["position"], info["velocity"]
        _, _, _, _, info = env.step(np.array([1.0], dtype=np.float32))
        free_x = prev[0] + DT * (prev[1] + DT)
        if free_x > 1.5:  # this step would cross the wall: the mass stops on it
            hit = hit or t
            assert info["position"] == 1.5 and info["velocity"] == 0.0
        else:
            assert info["position"] == pytest.approx(free_x, rel=1e-12)
    assert hit is not None and hit < 60
    for _ in range(12):  # pushed the other way it leaves the wall
        _, _, _, _, info = env.step(np.array([-1.0], dtype=np.float32))
    assert info["position"] < 1.0 and info["velocity"] < 0.0


def test_observation_noise_is_seeded_and_has_the_given_std():
    def positions(seed):
        env = HiddenVelocity(obs_noise_std=0.2)
        obs, info = env.reset(seed=seed)
        errors, out = [obs[0] - info["position"]], [obs]
        for _ in range(99):
            obs, _, _, _, info = env.step(np.array([0.1], dtype=np.float32))
            errors.append(obs[0] - info["position"])
            out.append(obs)
        return np.array(errors), np.array(out)

    e1, o1 = positions(SEED)
    e2, o2 = positions(SEED)
    np.testing.assert_array_equal(o1, o2)
    errs = np.concatenate([positions(SEED + k)[0] for k in range(20)])
    assert abs(errs.std() - 0.2) < 0.01 and abs(errs.mean()) < 0.015  # 2000 draws: sd of mean 0.0045


def test_same_seed_same_episodes_and_starts_cover_the_range():
    def episodes(seed, n=5):
        env = gym.make("HiddenVelocity-v0")
        rng = np.random.default_rng(0)
        out = []
        for ep in range(n):
            obs, info = env.reset(seed=seed if ep == 0 else None)
            traj, done = [obs], False
            while not done:
                obs, r, term, trunc, info = env.step(rng.uniform(-1, 1, 1).astype(np.float32))
                traj.append(np.append(obs, r))
                done = term or trunc
            out.append(np.concatenate(traj))
        return out

    a, b, c = episodes(SEED), episodes(SEED), episodes(SEED + 1)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])
    env = HiddenVelocity()
    env.reset(seed=SEED)
    starts = np.array([[i["target"], i["position"], i["velocity"]] for i in (env.reset()[1] for _ in range(2000))])
    assert np.all(np.abs(starts[:, :2]) <= 1.0) and np.all(np.abs(starts[:, 2]) <= 0.5)
    assert np.all(starts[:, :2].min(axis=0) < -0.98) and np.all(starts[:, :2].max(axis=0) > 0.98)
    assert abs(np.corrcoef(starts[:, 0], starts[:, 1])[0, 1]) < 0.08


def episode_returns(controller, n, observe_velocity=False, **kwargs):
    """Mean return over the first episodes of seeds 0..n-1; ``controller(obs, prev_obs) -> u``."""
    env = HiddenVelocity(observe_velocity=observe_velocity, **kwargs)
    out = []
    for seed in range(n):
        obs, _ = env.reset(seed=seed)
        prev, ret, done = obs, 0.0, False
        while not done:
            u = controller(obs, prev)
            prev = obs
            obs, r, term, trunc, _ = env.step(np.array([u], dtype=np.float32))
            ret += r
            done = term or trunc
        out.append(ret)
    return float(np.mean(out))


def pd_true(obs, prev):
    return -4.0 * (obs[0] - obs[1]) - 3.0 * obs[2]


def pd_estimated(obs, prev):
    return -4.0 * (obs[0] - obs[1]) - 3.0 * (obs[0] - prev[0]) / DT


def test_velocity_controllers_far_ahead_of_every_position_only_gain():
    n = 200
    pd = episode_returns(pd_true, n, observe_velocity=True)
    pd_est = episode_returns(pd_estimated, n)
    assert -7.0 < pd < -3.5  # docstring: -5.04 ± 0.24 over 1000 seeds
    assert abs(pd_est - pd) < 0.05 * abs(pd)  # one step of memory recovers the full-information return
    p_only = {k: episode_returns(lambda o, _p, k=k: -k * (o[0] - o[1]), n) for k in (0.25, 1, 2, 4, 16, 32)}
    assert max(p_only.values()) < 4 * pd, p_only  # docstring: best -30.5 at k = 2
    assert episode_returns(lambda o, _p: 0.0, 50) < 20 * pd  # docstring: -200


def test_damping_lets_position_only_control_settle():
    # with friction the position-only controller needs no memory: the control for "damping > 0" in the docs
    p_free = episode_returns(lambda o, _p: -4.0 * (o[0] - o[1]), 100)
    p_damped = episode_returns(lambda o, _p: -4.0 * (o[0] - o[1]), 100, damping=3.0)
    assert p_damped > 0.4 * p_free


@pytest.mark.parametrize("kwargs, name, found", [
    ({"dt": 0.0}, "dt", "found 0.0"),
    ({"dt": 2}, "dt", "found 2.0"),
    ({"episode_steps": 0}, "episode_steps", "found 0"),
    ({"episode_steps": 10.0}, "episode_steps", "found 10.0 of type float"),
    ({"max_accel": -1.0}, "max_accel", "found -1.0"),
    ({"damping": 11.0}, "damping", "found 11.0"),
    ({"damping": -0.1}, "damping", "found -0.1"),
    ({"wall": 0.0}, "wall", "found 0.0"),
    ({"target_range": 2.5}, "target_range", "found 2.5"),
    ({"init_speed": float("nan")}, "init_speed", "found nan"),
    ({"obs_noise_std": -1e-3}, "obs_noise_std", "found -0.001"),
    ({"action_cost": "0.01"}, "action_cost", "found '0.01'"),
    ({"observe_velocity": 1}, "observe_velocity", "got 1 of type int"),
    ({"render_mode": "rgb_array"}, "render_mode", "got 'rgb_array'"),
])
def test_bad_arguments_name_argument_expected_and_found(kwargs, name, found):
    with pytest.raises(EnvConfigError, match=name) as err:
        HiddenVelocity(**kwargs)
    message = str(err.value)   # envs.errors' validators say "expected ..., found ..."; the env's own checks "must be"
    assert found in message and ("expected" if found.startswith("found") else "must be") in message


def test_bad_actions():
    env = HiddenVelocity()
    env.reset(seed=SEED)
    for bad in [np.array([np.nan], dtype=np.float32), np.array([np.inf]), np.array([0.1, 0.2]), [0.1, 0.2]]:
        with pytest.raises(EnvConfigError, match="action must be one finite number"):
            env.step(bad)
    env.step([0.5])  # any one-number array-like is accepted
    env.step(0.5)

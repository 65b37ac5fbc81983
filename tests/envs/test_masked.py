"""Masked MuJoCo / classic-control ids: every observation checked against the simulator's own state.

The oracle below is written from the base envs' documented construction (qpos/qvel read from
``env.unwrapped.data``), independently of ``envs.masks``.
"""
import warnings

import gymnasium as gym
import mujoco
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from envs import MaskObservation

SEED = 20260127
STEPS = 60

# number of leading qpos the base env leaves out when exclude_current_positions_from_observation=True
SKIPPED_QPOS = {"HalfCheetah": 1, "Hopper": 1, "Walker2d": 1, "Ant": 2, "Swimmer": 2, "InvertedPendulum": 0}
CLIPPED_QVEL = {"Hopper", "Walker2d", "InvertedDoublePendulum"}


def split_id(env_id):
    name, keep, version = env_id.split("-")
    return name, keep, f"{name}-{version}"


def oracle(env_id, u, exclude=True):
    """What the masked observation must be, read from the simulator's state."""
    name, keep, _ = split_id(env_id)
    if name == "CartPole":
        s = np.asarray(u.state, dtype=np.float32)
        return s[[0, 2]]
    if name == "Pendulum":
        th = u.state[0]
        return np.array([np.cos(th), np.sin(th)], dtype=np.float32)
    qpos, qvel = u.data.qpos.copy(), u.data.qvel.copy()
    if name in CLIPPED_QVEL:
        qvel = np.clip(qvel, -10, 10)
    if name == "InvertedDoublePendulum":
        return np.concatenate([qpos[:1], np.sin(qpos[1:]), np.cos(qpos[1:])]) if keep == "P" else qvel
    if name == "Reacher":
        if keep == "V":
            return qvel[:2]
        # forward kinematics of the current qpos (MuJoCo's data.xpos after mj_step lags behind qpos)
        scratch = mujoco.MjData(u.model)
        scratch.qpos[:] = qpos
        mujoco.mj_kinematics(u.model, scratch)
        tip = scratch.body("fingertip").xpos - scratch.body("target").xpos
        return np.concatenate([np.cos(qpos[:2]), np.sin(qpos[:2]), qpos[2:], tip[:2]])
    skip = SKIPPED_QPOS[name] if exclude else 0
    return qpos[skip:] if keep == "P" else qvel


def base_kwargs(env_id):
    """The options our registration sets on the base env (Ant: contact forces off)."""
    return {"include_cfrc_ext_in_observation": False} if env_id.startswith("Ant-") else {}


def find_mask(env):
    while not isinstance(env, MaskObservation):
        env = env.env
    return env


def test_ids_registered_and_listed():
    assert len(envs.MASKED_MUJOCO_IDS) == 16
    assert set(envs.MASKED_IDS) <= set(envs.ALL_IDS)
    for env_id in envs.MASKED_IDS:
        assert env_id in gym.registry


def test_registration_is_idempotent():
    """Registering again (directly, or by reloading the package) keeps every spec object and adds no id;
    gymnasium's "Overriding environment" warning would be an error here."""
    import importlib

    specs = {env_id: gym.registry[env_id] for env_id in envs.ALL_IDS}
    count = len(gym.registry)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert envs.register_masked_envs() == envs.MASKED_IDS
        importlib.reload(envs)  # re-runs the package's registration
    assert len(gym.registry) == count and envs.ALL_IDS == tuple(specs)
    for env_id, spec in specs.items():
        assert gym.registry[env_id] is spec, env_id
    gym.make("Hopper-P-v5").close()


@pytest.mark.parametrize("env_id", envs.MASKED_IDS)
def test_check_env(env_id):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(gym.make(env_id, disable_env_checker=True), skip_render_check=True)


@pytest.mark.parametrize("env_id", envs.MASKED_IDS)
def test_space_is_base_space_restricted(env_id):
    _, _, base_id = split_id(env_id)
    env, base = gym.make(env_id), gym.make(base_id, **base_kwargs(env_id))
    idx = find_mask(env).indices
    assert env.observation_space.dtype == base.observation_space.dtype
    assert env.observation_space.shape == (len(idx),)
    np.testing.assert_array_equal(env.observation_space.low, base.observation_space.low[idx])
    np.testing.assert_array_equal(env.observation_space.high, base.observation_space.high[idx])
    assert env.action_space == base.action_space


@pytest.mark.parametrize("env_id", envs.MASKED_IDS)
def test_rollout_matches_simulator_and_base_env(env_id):
    """Step by step: obs == simulator state, and reward/terminated/truncated == the base env's."""
    _, _, base_id = split_id(env_id)
    env = gym.make(env_id, max_episode_steps=25)
    base = gym.make(base_id, max_episode_steps=25, **base_kwargs(env_id))
    env.action_space.seed(SEED)
    obs, _ = env.reset(seed=SEED)
    bobs, _ = base.reset(seed=SEED)
    u = env.unwrapped
    np.testing.assert_array_equal(obs, oracle(env_id, u), err_msg=f"seed={SEED} reset")
    n_resets = 0
    for t in range(STEPS):
        a = env.action_space.sample()
        obs, r, term, trunc, _ = env.step(a)
        bobs, br, bterm, btrunc, _ = base.step(a)
        assert obs in env.observation_space
        assert obs.dtype == env.observation_space.dtype
        np.testing.assert_array_equal(obs, oracle(env_id, u), err_msg=f"seed={SEED} step={t}")
        assert (r, term, trunc) == (br, bterm, btrunc), f"seed={SEED} step={t}"
        if term or trunc:
            n_resets += 1
            obs, _ = env.reset(seed=SEED + n_resets)
            base.reset(seed=SEED + n_resets)
            np.testing.assert_array_equal(obs, oracle(env_id, u))
    assert n_resets >= 1  # the truncation path was exercised


@pytest.mark.parametrize("env_id", envs.MASKED_IDS)
def test_only_the_other_kind_changes_nothing(env_id):
    """-P obs do not depend on qvel; -V obs do not depend on qpos (for the same other half)."""
    name, keep, _ = split_id(env_id)
    env = gym.make(env_id)
    env.reset(seed=SEED)
    mask, u = find_mask(env), env.unwrapped
    rng = np.random.default_rng(SEED)

    def observe(pos_part, vel_part):
        if name in ("CartPole", "Pendulum"):
            s = np.array(u.state, dtype=np.float64)
            if name == "CartPole":
                s[[0, 2]], s[[1, 3]] = pos_part, vel_part
                u.state = s
                return mask.observation(np.array(u.state, dtype=np.float32))
            u.state = np.array([pos_part[0], vel_part[0]])
            return mask.observation(u._get_obs())
        u.set_state(pos_part, vel_part)
        return mask.observation(u._get_obs())

    if name == "CartPole":
        npos, nvel = 2, 2
    elif name == "Pendulum":
        npos, nvel = 1, 1
    else:
        npos, nvel = u.model.nq, u.model.nv
    for _ in range(5):
        p = rng.normal(scale=0.3, size=npos)
        v1, v2 = rng.normal(scale=3.0, size=nvel), rng.normal(scale=3.0, size=nvel)
        p2 = rng.normal(scale=0.3, size=npos)
        if keep == "P":
            a, b = observe(p, v1), observe(p, v2)
            if name == "Reacher":  # also after a step, where data.xpos lags behind qpos by a velocity term
                u.set_state(p, v1)
                u.do_simulation(np.zeros(u.model.nu), u.frame_skip)
                q_after, a = u.data.qpos.copy(), mask.observation(u._get_obs())
                u.set_state(q_after, v2)
                b2 = mask.observation(u._get_obs())
                np.testing.assert_array_equal(a, b2, err_msg=f"seed={SEED}")
                a, b = observe(p, v1), observe(p, v2)
        else:
            a, b = observe(p, v1), observe(p2, v1)
        np.testing.assert_array_equal(a, b, err_msg=f"seed={SEED}")


@pytest.mark.parametrize("env_id", ["Hopper-P-v5", "Ant-P-v5", "Swimmer-V-v5", "Reacher-P-v5", "CartPole-P-v1"])
def test_seeded_determinism(env_id):
    def run():
        env = gym.make(env_id)
        env.action_space.seed(7)
        out = [env.reset(seed=7)[0]]
        for _ in range(20):
            o, r, term, trunc, _ = env.step(env.action_space.sample())
            out.append(np.append(o, r))
            if term or trunc:
                out.append(env.reset()[0])
        return np.concatenate(out)

    np.testing.assert_array_equal(run(), run())


@pytest.mark.parametrize("name", ["HalfCheetah", "Hopper", "Walker2d", "Ant", "Swimmer"])
def test_exclude_current_positions_false_keeps_root_position(name):
    env = gym.make(f"{name}-P-v5", exclude_current_positions_from_observation=False)
    default = gym.make(f"{name}-P-v5")
    u = env.unwrapped
    assert env.observation_space.shape[0] == u.model.nq == default.observation_space.shape[0] + SKIPPED_QPOS[name]
    env.action_space.seed(SEED)
    obs, _ = env.reset(seed=SEED)
    np.testing.assert_array_equal(obs, u.data.qpos)
    for _ in range(10):
        obs, *_ = env.step(env.action_space.sample())
        np.testing.assert_array_equal(obs, oracle(f"{name}-P-v5", u, exclude=False))
    # -V is unaffected by the option
    assert gym.make(f"{name}-V-v5", exclude_current_positions_from_observation=False).observation_space.shape == (
        u.model.nv,
    )


def test_ant_default_has_no_contact_forces_and_option_is_refused():
    env = gym.make("Ant-P-v5")
    assert env.observation_space.shape == (13,)
    assert env.unwrapped.observation_structure["cfrc_ext"] == 0
    for env_id in ("Ant-P-v5", "Ant-V-v5"):
        with pytest.raises(envs.MaskOptionError, match="include_cfrc_ext_in_observation"):
            gym.make(env_id, include_cfrc_ext_in_observation=True)
    gym.make("Ant-P-v5", include_cfrc_ext_in_observation=False).close()


def test_kwargs_reach_the_base_env():
    env = gym.make("Hopper-P-v5", healthy_reward=3.5, frame_skip=2)
    assert env.unwrapped._healthy_reward == 3.5
    assert env.unwrapped.frame_skip == 2
    assert gym.make("Pendulum-P-v1", g=3.0).unwrapped.g == 3.0


def test_bad_input_errors():
    with pytest.raises(envs.UnknownEnvError, match="Humanoid-v5"):
        envs.make_masked("Humanoid-v5", "P")
    with pytest.raises(ValueError, match="keep"):
        envs.make_masked("Hopper-v5", "X")
    with pytest.raises(ValueError, match="indices"):
        MaskObservation(gym.make("Hopper-v5"), [0, 0])
    with pytest.raises(ValueError, match="indices"):
        MaskObservation(gym.make("Hopper-v5"), [11])


def test_remake_from_spec():
    env = gym.make("Walker2d-V-v5")
    again = gym.make(env.spec)
    assert again.observation_space == env.observation_space


@pytest.mark.parametrize("env_id", ["Hopper-V-v5", "Walker2d-V-v5", "InvertedDoublePendulum-V-v5", "Ant-V-v5"])
def test_velocity_clipping_follows_the_base_env(env_id):
    env = gym.make(env_id)
    env.reset(seed=SEED)
    u, mask = env.unwrapped, find_mask(env)
    qvel = np.linspace(-30.0, 30.0, u.model.nv)
    u.set_state(u.data.qpos.copy(), qvel)
    obs = mask.observation(u._get_obs())
    name = split_id(env_id)[0]
    expected = np.clip(qvel, -10, 10) if name in CLIPPED_QVEL else qvel
    np.testing.assert_array_equal(obs, expected)
    np.testing.assert_array_equal(obs, oracle(env_id, u))

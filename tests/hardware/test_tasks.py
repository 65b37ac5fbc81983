"""hardware.tasks: the MuJoCo tasks reproduce gymnasium v5 (observation with the -P mask, reward,
termination) when the loop drives the sim adapter in lock-step; their layouts are the masked ids'; the
applied action is converted once, into the loop's buffer, within the action bounds; registry and
binding errors."""
import gymnasium as gym
import numpy as np
import pytest

from controller.clock import MonotonicClock
from controller.config import ConfigError, load_config
from controller.loop import ControlLoop, FixedPolicy, LoopConfig
from hardware.base import ChannelError
from hardware.mock import MockAdapter
from hardware.sim import SimAdapter, SimConfig
from hardware.tasks import TASKS, TaskConfig, make_task

CASES = {  # task -> (gymnasium id, observation size with -P, obs slice of the full gymnasium obs)
    "HalfCheetah": ("HalfCheetah-v5", 8, slice(0, 8)),
    "Hopper": ("Hopper-v5", 5, slice(0, 5)),
    "Walker2d": ("Walker2d-v5", 8, slice(0, 8)),
    "Swimmer": ("Swimmer-v5", 3, slice(0, 3)),
    "InvertedPendulum": ("InvertedPendulum-v5", 2, slice(0, 2)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_lockstep_matches_gymnasium(name):
    env_id, obs_dim, cut = CASES[name]
    seed = 3
    print(f"seed {seed}")
    adapter = SimAdapter(SimConfig(env_id=env_id, seed=seed))
    task = make_task(TaskConfig(name=name, mask="P", max_episode_steps=0, reset="none"))
    rng = np.random.default_rng(seed)
    policy = FixedPolicy(obs_dim, adapter.n_commands, gain=rng.normal(0, 1.0, (adapter.n_commands, obs_dim)),
                         bias=rng.uniform(-0.5, 0.5, adapter.n_commands), low=task.action_low,
                         high=task.action_high, record=True)
    cfg = LoopConfig(rate_hz=1000, duration=0, max_ticks=150, free_run=True, gc_freeze=False,
                     handle_signals=False)
    ControlLoop(adapter, task, policy, cfg, clock=MonotonicClock(0)).run()
    assert task.obs_dim == obs_dim
    acts = [a for k, a in policy.log if k == "act"]
    credits = [a for k, a in policy.log if k == "credit"]
    learns = [a for k, a in policy.log if k in ("update", "skip")]
    env = gym.make(env_id)
    obs, _ = env.reset(seed=seed)
    np.testing.assert_allclose(acts[0], obs[cut], rtol=0, atol=1e-12)
    n = len(learns)
    assert n >= 1
    for t in range(n):
        obs, reward, terminated, truncated, _ = env.step(credits[t])
        r, o, term, trunc = learns[t]
        np.testing.assert_allclose(o, obs[cut], rtol=0, atol=1e-9, err_msg=f"obs at step {t}")
        assert r == pytest.approx(reward, abs=1e-9), f"reward at step {t}"
        assert term == terminated, f"terminated at step {t}"
        if term:
            break
    env.close()
    adapter.shutdown()


def test_masks_and_velocity_clip():
    adapter = SimAdapter(SimConfig(env_id="Hopper-v5"))
    full = make_task(TaskConfig(name="Hopper", mask="full"))
    full.bind(adapter)
    vel = make_task(TaskConfig(name="Hopper", mask="V"))
    vel.bind(adapter)
    assert full.obs_dim == 11 and vel.obs_dim == 6
    state = np.zeros(adapter.n_states)
    state[7:] = 50.0                        # velocities beyond gymnasium's ±10 clip
    obs = np.zeros(11)
    full.start_episode(state, obs)
    assert np.all(obs[5:] == 10.0)


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("mask", ["P", "V"])
def test_the_task_observes_what_the_masked_id_observes(name, mask):
    """The layout comes from envs.masks: for a state with velocities beyond any clip, the task's
    observation equals the <Name>-<mask>-v5 id's, entry for entry."""
    from envs.masked import MaskObservation  # importing envs registers the masked ids
    env = gym.make(f"{name}-{mask}-v5")
    masked = env
    while not isinstance(masked, MaskObservation):
        masked = masked.env
    env.reset(seed=1)
    u = env.unwrapped
    u.set_state(u.data.qpos + 0.05, np.linspace(-30.0, 30.0, u.model.nv))
    adapter = SimAdapter(SimConfig(env_id=CASES[name][0]))
    task = make_task(TaskConfig(name=name, mask=mask))
    task.bind(adapter)
    state = np.concatenate([[u.data.time], u.data.qpos, u.data.qvel])
    obs = np.full(task.obs_dim, np.nan)
    task.start_episode(state, obs)
    np.testing.assert_array_equal(obs, masked.observation(u._get_obs()))
    env.close()
    adapter.shutdown()


def test_reward_weights_are_gymnasiums(monkeypatch):
    """Weights read off gymnasium's env: made with other weights, the task's reward follows them."""
    make = gym.make
    monkeypatch.setattr(gym, "make", lambda env_id, **kw: make(env_id, forward_reward_weight=2.0,
                                                               ctrl_cost_weight=0.5, **kw))
    task = make_task(TaskConfig(name="HalfCheetah"))
    adapter = SimAdapter(SimConfig(env_id="HalfCheetah-v5"))
    task.bind(adapter)
    state, obs = np.zeros(adapter.n_states), np.zeros(task.obs_dim)
    task.start_episode(state, obs)
    state[0], state[1] = 0.05, 0.3          # time, qpos/rootx: x velocity 6 m/s
    applied = np.full(task.action_dim, 0.5)
    reward, terminated = task.step(state, obs, applied)
    assert reward == pytest.approx(2.0 * 6.0 - 0.5 * 0.25 * task.action_dim) and not terminated
    adapter.shutdown()


class CreditLog:
    """A policy that acts with a fixed out-of-range action and records what credit is handed."""

    def __init__(self, action):
        self.action, self.credited = np.asarray(action, dtype=np.float64), []

    def act(self, obs):
        return self.action

    def update(self, reward, obs, terminated, truncated):
        pass

    skip = update

    def credit(self, applied_action):
        self.credited.append((applied_action, applied_action.copy()))

    def reset(self):
        pass


def test_the_applied_action_is_converted_once_into_the_loops_buffer():
    """The command the safety filter clamped comes back as the action actually applied, within the
    action bounds, in one float64 buffer the loop owns: the one every credit gets."""
    adapter = SimAdapter(SimConfig(env_id="InvertedPendulum-v5"))
    task = make_task(TaskConfig(name="InvertedPendulum", max_episode_steps=0, reset="none"))
    policy = CreditLog([7.5])                # beyond the actuator's [-3, 3]
    cfg = LoopConfig(rate_hz=1000, duration=0, max_ticks=20, free_run=True, gc_freeze=False,
                     handle_signals=False)
    loop = ControlLoop(adapter, task, policy, cfg, clock=MonotonicClock(0))
    loop.run()
    adapter.shutdown()
    assert len(policy.credited) >= 3
    assert all(array is loop.applied for array, _ in policy.credited)
    assert loop.applied.dtype == np.float64 and loop.applied.flags.c_contiguous
    assert all(np.array_equal(values, task.action_high) for _, values in policy.credited)
    assert not hasattr(task, "applied")


def test_registry_and_binding_errors(tmp_path):
    assert {"HalfCheetah", "Hopper", "Walker2d", "Swimmer", "InvertedPendulum", "track"} <= set(TASKS)
    with pytest.raises(ConfigError, match="task.name"):
        TaskConfig(name="Walker9000")
    p = tmp_path / "t.yaml"
    p.write_text("name: Hopper\nmask: X\n")
    with pytest.raises(ConfigError, match="mask"):
        load_config(TaskConfig, p)
    with pytest.raises(ChannelError, match="expected channel .time."):
        make_task(TaskConfig(name="HalfCheetah")).bind(MockAdapter())


def test_mujoco_task_ticks_do_not_grow_memory():
    """Observation, reward, health check and both conversions run on preallocated arrays."""
    import tracemalloc
    adapter = SimAdapter(SimConfig(env_id="Hopper-v5"))
    task = make_task(TaskConfig(name="Hopper", mask="full"))
    task.bind(adapter)
    state, obs = np.linspace(0.0, 1.0, adapter.n_states), np.zeros(task.obs_dim)
    command, applied = np.zeros(task.action_dim), np.zeros(task.action_dim)
    action = np.full(task.action_dim, 0.3)

    def tick():
        task.step(state, obs, applied)
        task.action_to_command(action, command)
        task.command_to_action(command, applied)
    task.start_episode(state, obs)
    tick()
    tracemalloc.start()
    try:
        tick()
        start = tracemalloc.get_traced_memory()[0]
        for _ in range(5000):
            state[0] += 0.008
            tick()
        grown = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    adapter.shutdown()
    assert grown < 1024, grown
    np.testing.assert_allclose(applied, action)

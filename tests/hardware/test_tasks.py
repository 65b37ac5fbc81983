"""hardware.tasks: the MuJoCo tasks reproduce gymnasium v5 (observation with the -P mask, reward,
termination) when the loop drives the sim adapter in lock-step; registry and binding errors."""
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
    bound = task.action_bound
    policy = FixedPolicy(obs_dim, adapter.n_commands, gain=rng.normal(0, 1.0, (adapter.n_commands, obs_dim)),
                         bias=rng.uniform(-0.5, 0.5, adapter.n_commands), low=-bound, high=bound,
                         record=True)
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


def test_registry_and_binding_errors(tmp_path):
    assert {"HalfCheetah", "Hopper", "InvertedPendulum", "track"} <= set(TASKS)
    with pytest.raises(ConfigError, match="task.name"):
        TaskConfig(name="Walker9000")
    p = tmp_path / "t.yaml"
    p.write_text("name: Hopper\nmask: X\n")
    with pytest.raises(ConfigError, match="mask"):
        load_config(TaskConfig, p)
    with pytest.raises(ChannelError, match="expected channel .time."):
        make_task(TaskConfig(name="HalfCheetah")).bind(MockAdapter())

"""The critic's learning pass on a helper thread (Agent(..., critic_thread=True), controller.critic_thread):
same learning as the single-threaded agent, deterministic, checkpoints across the option, every access
of the critic waits for the helper, the thread stops. (No allocation per step: test_agent.py.)"""
import gc

import gymnasium as gym
import numpy as np
import pytest

from controller.agent import Agent, AgentConfig, load_agent, save_agent
from controller.critic_thread import CriticThread
from controller.kernels import agent_step

OBS = gym.spaces.Box(-np.inf, np.inf, (5,), np.float64)
BOX = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
DISCRETE = gym.spaces.Discrete(3)
SMALL = dict(n_units=8, encoder_width=8, head_width=8)


def _agent(space=BOX, thread=True, **cfg):
    return Agent(OBS, space, AgentConfig(**{**SMALL, **cfg}), seed=0, critic_thread=thread)


def _run(agent, rng, steps, episode=25):
    actions = []
    obs = rng.standard_normal(5)
    for t in range(steps):
        actions.append(np.array(agent.act(obs), dtype=np.float64).copy())
        obs = rng.standard_normal(5)
        done = (t + 1) % episode == 0
        agent.learn(float(rng.standard_normal()), obs, done and t % 2 == 0, done and t % 2 == 1)
    agent.sync()
    return np.array(actions)


def _params(agent):
    agent.sync()
    return [p.copy() for net in (agent.actor, agent.critic) for p, _, _ in net.parameter_groups()]


@pytest.mark.parametrize("cell", ["rtu-linear", "rtu-nonlinear", "lru", "none"])
@pytest.mark.parametrize("space", [BOX, DISCRETE], ids=["box", "discrete"])
def test_threaded_critic_learns_what_the_single_threaded_agent_learns(cell, space):
    """Same code on the same arrays in the same order: equal up to the rounding that inlining the pass
    into another caller may change (float64 here)."""
    threaded = _agent(space, cell=cell, dtype="float64")
    single = _agent(space, thread=False, cell=cell, dtype="float64")
    acts_t = _run(threaded, np.random.default_rng(3), 130)
    acts_s = _run(single, np.random.default_rng(3), 130)
    np.testing.assert_allclose(acts_t, acts_s, rtol=1e-9, atol=1e-12)
    for pt, ps in zip(_params(threaded), _params(single)):
        np.testing.assert_allclose(pt, ps, rtol=1e-9, atol=1e-12)
    assert threaded._critic_thread.passes == threaded.stats["updates"] == single.stats["updates"] == 130
    threaded.close()


def test_threaded_agent_is_deterministic():
    a, b = _agent(), _agent()
    acts_a, acts_b = _run(a, np.random.default_rng(1), 200), _run(b, np.random.default_rng(1), 200)
    np.testing.assert_array_equal(acts_a, acts_b)
    for pa, pb in zip(_params(a), _params(b)):
        np.testing.assert_array_equal(pa, pb)
    a.close()
    b.close()


def test_checkpoint_loads_across_the_option(tmp_path):
    """A checkpoint taken while the helper may still run holds its finished pass; it loads into an agent
    without the thread (and back), which then continues as the saving agent does."""
    threaded = _agent(dtype="float64")
    _run(threaded, np.random.default_rng(2), 60)
    path = save_agent(tmp_path / "t.ckpt", threaded)
    single = _agent(thread=False, dtype="float64")
    load_agent(path, single)
    acts_t = _run(threaded, np.random.default_rng(9), 40)
    acts_s = _run(single, np.random.default_rng(9), 40)
    np.testing.assert_allclose(acts_t, acts_s, rtol=1e-9, atol=1e-12)
    back = _agent(dtype="float64")
    load_agent(save_agent(tmp_path / "s.ckpt", single), back)
    np.testing.assert_allclose(_run(back, np.random.default_rng(4), 20),
                               _run(single, np.random.default_rng(4), 20), rtol=1e-9, atol=1e-12)
    threaded.close()
    back.close()


def test_real_time_order_and_refused_inputs_wait_for_the_helper():
    """update/credit/skip (controller.loop's order) and refused transitions (non-finite reward or
    observation) run through the single-threaded route after waiting for the helper: no hang, finite
    parameters, the same result as without the thread."""
    results = []
    for thread in (True, False):
        agent = _agent(thread=thread, dtype="float64")
        agent._warned = True   # the warning itself is tested in test_agent.py
        rng = np.random.default_rng(5)
        for t in range(80):
            obs = rng.standard_normal(5)
            agent.act(obs)
            if t % 10 == 3:
                agent.learn(float("nan"), rng.standard_normal(5), False, False)
            elif t % 10 == 6:
                bad = rng.standard_normal(5)
                bad[2] = np.inf
                agent.learn(0.5, bad, False, False)
            else:
                agent.learn(float(rng.standard_normal()), rng.standard_normal(5), False, t % 37 == 36)
        for t in range(40):
            obs = rng.standard_normal(5)
            agent.act(obs)
            if t % 9 == 4:
                agent.skip(0.0, obs, False, False)
            else:
                agent.update(float(rng.standard_normal()), obs, False, False)
            agent.credit()
        results.append(_params(agent))
        assert all(np.all(np.isfinite(p)) for p in results[-1])
        assert agent.stats["non_finite_inputs"] == 16 and agent.stats["skipped"] == 4
        agent.close()
    for pt, ps in zip(*results):
        np.testing.assert_allclose(pt, ps, rtol=1e-9, atol=1e-12)


def test_close_and_garbage_collection_stop_the_thread():
    agent = _agent()
    _run(agent, np.random.default_rng(0), 10)
    worker = agent._critic_thread
    assert worker.alive
    agent.close()
    assert not worker.alive
    agent.close()                     # idempotent
    agent = _agent()
    thread = agent._critic_thread._thread
    del agent, worker
    gc.collect()
    thread.join(timeout=10)
    assert not thread.is_alive()


def test_hand_over_waits_for_the_pass_and_sees_its_writes():
    """CriticThread alone: each submitted pass is finished and visible after wait() (compared with the
    same passes run on this thread), and observe() returns the critic's value of its observation."""
    single = _agent(thread=False, dtype="float64")
    other = _agent(thread=False, dtype="float64")
    worker = CriticThread(other.critic.private_state, np.zeros(11), np.zeros(5), 5)
    assert worker.observe(np.zeros(5), False)[0] == -1   # an observe op, then passes
    rng = np.random.default_rng(0)
    for _ in range(30):
        x = rng.standard_normal(5)
        for net in (single.critic, other.critic):
            net.forward_backward(x)
        step, cell_step = rng.uniform(-0.01, 0.01, 2)
        agent_step.net_apply(single.critic.state, step, cell_step, True)
        worker.submit(step, cell_step, True)
        worker.wait()
        np.testing.assert_allclose(other.critic.P, single.critic.P, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(other.critic.zl1, single.critic.zl1, rtol=1e-12)
    x = rng.standard_normal(5)
    bad, value = worker.observe(x, False)
    assert bad == -1 and value == pytest.approx(float(single.critic.forward_backward(x)[0]), rel=1e-12)
    x[3] = np.nan
    assert worker.observe(x, False)[0] == 3
    assert worker.passes == 30
    worker.close()


def test_with_one_cpu_the_agent_warns_and_runs_single_threaded(monkeypatch):
    """A helper that polls would take the only core from the caller: refused with a warning."""
    import controller.agent as agent_module

    monkeypatch.setattr(agent_module, "usable_cpus", lambda: 1)
    with pytest.warns(RuntimeWarning, match="2 CPUs"):
        agent = _agent()
    assert agent._critic_thread is None
    _run(agent, np.random.default_rng(0), 5)

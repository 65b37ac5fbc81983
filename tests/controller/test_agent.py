"""Streaming actor-critic: act/learn contract, determinism, episode handling, bad input, bounded steps,
no allocation per step (design.md §3.5, §4.2)."""
import warnings

import gymnasium as gym
import numpy as np
import pytest

from controller.agent import Agent, AgentConfig, NonFiniteInputWarning
from controller.config import ConfigError
from tests.controller.helpers import assert_ticks_allocate_no_array

OBS = gym.spaces.Box(-np.inf, np.inf, (5,), np.float64)
BOX = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
DISCRETE = gym.spaces.Discrete(3)
SMALL = dict(n_units=8, encoder_width=8, head_width=8)


def _agent(action_space=BOX, seed=0, **cfg):
    return Agent(OBS, action_space, AgentConfig(**{**SMALL, **cfg}), seed=seed)


def _run(agent, rng, steps, episode=25):
    actions = []
    obs = rng.standard_normal(5)
    for t in range(steps):
        a = agent.act(obs)
        actions.append(np.array(a, dtype=np.float64).copy())
        obs = rng.standard_normal(5)
        done = (t + 1) % episode == 0
        agent.learn(float(rng.standard_normal()), obs, done and t % 2 == 0, done and t % 2 == 1)
    return np.array(actions)


def _params(agent):
    return [a.copy() for net in (agent.actor, agent.critic) for p, _, _ in net.parameter_groups()
            for a in (p,)]


@pytest.mark.parametrize("cell", ["rtu-linear", "rtu-nonlinear", "lru", "none"])
@pytest.mark.parametrize("space", [BOX, DISCRETE], ids=["box", "discrete"])
def test_same_seed_same_observations_identical_actions_and_parameters(cell, space):
    a, b = _agent(space, cell=cell), _agent(space, cell=cell)
    acts_a = _run(a, np.random.default_rng(7), 120)
    acts_b = _run(b, np.random.default_rng(7), 120)
    np.testing.assert_array_equal(acts_a, acts_b)
    for pa, pb in zip(_params(a), _params(b)):
        np.testing.assert_array_equal(pa, pb)
    assert a.stats["updates"] == 120 and a.stats["episodes"] == 5
    c = _agent(space, seed=1, cell=cell)
    assert not np.array_equal(_run(c, np.random.default_rng(7), 120), acts_a)


def test_learning_changes_parameters_and_actions_stay_in_bounds():
    agent = _agent()
    before = _params(agent)
    acts = _run(agent, np.random.default_rng(0), 200)
    assert np.all(acts >= -1.0) and np.all(acts <= 1.0)
    assert any(not np.array_equal(x, y) for x, y in zip(before, _params(agent)))


def test_discrete_actions_are_ints_in_range():
    agent = _agent(DISCRETE)
    acts = _run(agent, np.random.default_rng(0), 100)
    assert set(np.unique(acts)) <= {0, 1, 2}
    assert isinstance(agent.act(np.zeros(5)), int)


def test_termination_does_not_bootstrap_and_truncation_does():
    for terminated in (True, False):
        agent = _agent(normalize_observations=False, scale_rewards=False, dtype="float64")
        rng = np.random.default_rng(3)
        for _ in range(5):
            agent.act(rng.standard_normal(5))
            agent.learn(0.0, rng.standard_normal(5), False, False)
        agent.act(rng.standard_normal(5))
        v_s = agent._value
        agent.learn(2.0, rng.standard_normal(5), terminated, not terminated)
        v_next = agent.stats["last_value"]
        expect = 2.0 - v_s if terminated else 2.0 + 0.99 * v_next - v_s
        assert agent.stats["last_delta"] == pytest.approx(expect, rel=1e-12)
        assert v_next != 0.0


def test_episode_end_resets_states_and_traces():
    agent = _agent()
    _run(agent, np.random.default_rng(0), 10, episode=1000)
    agent.act(np.ones(5))
    agent.learn(1.0, np.ones(5), True, False)
    assert np.any(agent.actor.Z != 0)
    agent.act(np.ones(5))   # first act of the next episode: everything restarts from zero
    for net in (agent.actor, agent.critic):
        for _, _, z in net.parameter_groups():
            assert not np.any(z)
    assert not np.any(agent.critic.cell.state)
    assert agent.stats["episodes"] == 2


def test_critic_update_is_bounded_by_one_over_kappa():
    """ObGD: the L1 size of each critic update, α_eff |δ| ||z||₁, never exceeds 1/κ_v, even for huge
    rewards."""
    agent = _agent(dtype="float64", scale_rewards=False)
    kappa_v = agent.config.kappas[1]
    rng = np.random.default_rng(0)
    for t in range(100):
        agent.act(rng.standard_normal(5))
        before = agent.critic.P.copy(), agent.critic.cell.vec[:2].copy(), agent.critic.cell.mat[:2].copy()
        agent.learn(float(rng.standard_normal() * 1e4), rng.standard_normal(5), False, False)
        after = agent.critic.P, agent.critic.cell.vec[:2], agent.critic.cell.mat[:2]
        change = sum(np.abs(a - b).sum() for a, b in zip(after, before))
        assert change <= 1.0 / kappa_v * (1 + 1e-9), (t, change)


@pytest.mark.parametrize("scope", ["network", "group"])
def test_per_group_obgd_bounds_dense_layers_and_cell_each_by_one_over_kappa(scope):
    """obgd_scope="group": the dense layers' update and the cell's update are each at most 1/κ_v in L1
    and, with huge rewards, each reaches that bound; with the network-wide bound only their sum is
    bounded, so the cell (the smaller share of ||z||₁ here) moves less. zl1 records both shares."""
    agent = _agent(dtype="float64", scale_rewards=False, obgd_scope=scope)
    critic = agent.critic
    kappa_v = agent.config.kappas[1]
    rng = np.random.default_rng(0)
    cell_changes = []
    for t in range(60):
        agent.act(rng.standard_normal(5))
        np.testing.assert_allclose(critic.zl1, critic.trace_norms(), rtol=1e-12)
        before = critic.P.copy(), critic.cell.vec[:2].copy(), critic.cell.mat[:2].copy()
        agent.learn(float(rng.standard_normal() * 1e4), rng.standard_normal(5), False, False)
        dense = np.abs(critic.P - before[0]).sum()
        cell = np.abs(critic.cell.vec[:2] - before[1]).sum() + np.abs(critic.cell.mat[:2] - before[2]).sum()
        assert dense <= 1.0 / kappa_v * (1 + 1e-9), (t, dense)
        assert dense + cell <= (2.0 if scope == "group" else 1.0) / kappa_v * (1 + 1e-9), (t, dense, cell)
        cell_changes.append(cell * kappa_v)
    if scope == "group":
        assert max(cell_changes) <= 1 + 1e-9 and max(cell_changes) > 0.99
    else:
        assert max(cell_changes) < 0.9


def test_non_finite_observation_is_refused_with_a_warning_and_never_gives_a_nan_action():
    agent = _agent()
    rng = np.random.default_rng(0)
    _run(agent, rng, 5, episode=1000)
    bad = rng.standard_normal(5)
    bad[2] = np.nan
    before = _params(agent)
    with pytest.warns(NonFiniteInputWarning, match=r"observation\[2\]"):
        a = agent.act(bad)
    assert np.all(np.isfinite(a))
    agent.learn(1.0, rng.standard_normal(5), False, False)
    for x, y in zip(before, _params(agent)):
        np.testing.assert_array_equal(x, y)   # nothing learned from the transition out of a NaN obs
    assert agent.stats["non_finite_inputs"] == 1 and agent.stats["refused"] == 1
    inf_next = rng.standard_normal(5)
    inf_next[0] = np.inf
    agent.act(rng.standard_normal(5))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once per agent: no second warning
        agent.learn(1.0, inf_next, False, False)
        agent.act(rng.standard_normal(5))
        agent.learn(float("nan"), rng.standard_normal(5), False, False)
    assert agent.stats["non_finite_inputs"] == 3 and agent.stats["refused"] == 3
    for net in (agent.actor, agent.critic):
        assert np.all(np.isfinite(net.P))


def test_wrong_observation_size_names_expected_and_given():
    agent = _agent()
    with pytest.raises(ValueError, match=r"Agent\.obs: expected shape \(5,\), found \(4,\)"):
        agent.act(np.zeros(4))
    agent.act(np.zeros(5))
    with pytest.raises(ValueError, match=r"Agent\.next_obs: expected shape \(5,\), found \(6,\)"):
        agent.learn(0.0, np.zeros(6), False, False)


def test_learn_before_act_is_an_error():
    with pytest.raises(RuntimeError, match="act"):
        _agent().learn(0.0, np.zeros(5), False, False)


def test_config_validation_names_the_field():
    with pytest.raises(ConfigError, match="gamma"):
        AgentConfig(gamma=1.5)
    with pytest.raises(ConfigError, match="alpha"):
        AgentConfig(alpha=0.0)
    with pytest.raises(ValueError, match="action_space"):
        Agent(OBS, gym.spaces.MultiBinary(3))
    with pytest.raises(ConfigError, match="obgd_scope"):
        AgentConfig(obgd_scope="layer")


def test_obgd_parameters_are_named_and_built_once_by_keyword():
    """The agent's ObGD hyperparameters reach the kernels as one array with named fields, built by keyword:
    κ_π and κ_v cannot trade places at a call."""
    from controller.kernels.agent_step import (
        OBGD_ALPHA, OBGD_KAPPA_POLICY, OBGD_KAPPA_VALUE, OBGD_PER_GROUP, obgd_params,
    )

    with pytest.raises(TypeError):
        obgd_params(0.5, 3.0, 2.0, True)   # positional: refused
    agent = _agent(alpha=0.5, kappa_policy=3.0, kappa_value=2.0, obgd_scope="group")
    params = agent._obgd
    assert (params[OBGD_ALPHA], params[OBGD_KAPPA_POLICY], params[OBGD_KAPPA_VALUE], params[OBGD_PER_GROUP]) \
        == (0.5, 3.0, 2.0, 1.0)
    assert _agent()._obgd[OBGD_PER_GROUP] == 0.0


def test_kappa_defaults_depend_on_recurrence():
    assert AgentConfig().kappas == (1.5, 1.0)
    assert AgentConfig(cell="none").kappas == (3.0, 2.0)
    assert AgentConfig(kappa_policy=2.0).kappas == (2.0, 1.0)


def test_applied_action_is_the_one_credited():
    a, b = _agent(dtype="float64"), _agent(dtype="float64")
    obs = np.ones(5)
    act_a = a.act(obs).copy()
    b.act(obs)
    a.learn(1.0, obs, False, False)                                  # credits act_a
    b.learn(1.0, obs, False, False, applied_action=np.clip(act_a + 0.5, -1, 1))
    assert not np.array_equal(a.actor.P, b.actor.P)
    np.testing.assert_array_equal(a.critic.P, b.critic.P)


def test_the_loops_applied_action_is_credited_as_given_without_conversion():
    """credit() of a float64 C-contiguous (a,) array (what controller.loop passes) hands that very array
    to the kernel: no converted copy or reshaped view is made per tick."""
    agent = _agent(dtype="float64")
    applied = np.array([0.25, -1.0])
    assert agent._head.applied(applied) is applied
    assert agent._head.applied(None) is agent.action
    converted = agent._head.applied([0.25, -1.0])           # a list: converted once, same values
    assert converted is not applied and converted.dtype == np.float64
    np.testing.assert_array_equal(converted, applied)
    a, b = _agent(dtype="float64"), _agent(dtype="float64")
    obs = np.ones(5)
    for agent in (a, b):
        agent.act(obs)
    a.learn(1.0, obs, False, False, applied_action=applied)
    b.learn(1.0, obs, False, False, applied_action=applied.astype(np.float32)[None, :])   # slow path
    np.testing.assert_array_equal(a.actor.P, b.actor.P)


@pytest.mark.parametrize("bad, message", [
    (np.array([0.5, np.nan]), r"Agent\.applied_action: expected finite values, found applied_action\[1\] = nan"),
    (np.array([np.inf, 0.5]), r"Agent\.applied_action: expected finite values, found applied_action\[0\] = inf"),
    (np.zeros(3), r"Agent\.applied_action: expected shape \(2,\), found \(3,\)"),
    ([0.5, float("nan")], r"Agent\.applied_action: expected finite values"),
    (np.zeros(4)[::2] + np.nan, r"Agent\.applied_action: expected finite values"),
])
@pytest.mark.parametrize("order", ["learn", "credit"])
def test_a_bad_applied_action_is_refused_naming_expected_and_found(bad, message, order):
    agent = _agent()
    obs = np.ones(5)
    agent.act(obs)
    with pytest.raises(ValueError, match=message):
        if order == "learn":
            agent.learn(0.0, obs, False, False, applied_action=bad)
        else:
            agent.credit(bad)


def test_a_discrete_applied_action_out_of_range_is_refused():
    agent = _agent(DISCRETE)
    agent.act(np.ones(5))
    with pytest.raises(ValueError, match=r"Agent\.applied_action: expected an index in \[0, 3\), found 3"):
        agent.credit(3)


def test_loop_order_update_credit_and_skip():
    agent = _agent()
    rng = np.random.default_rng(0)
    obs = rng.standard_normal(5)
    agent.act(obs)
    agent.credit(None)
    for t in range(30):
        obs = rng.standard_normal(5)
        a = agent.act(obs)
        if t % 5 == 4:
            agent.skip(0.5, obs, False, False)
        else:
            agent.update(0.5, obs, False, False)
        agent.credit(np.clip(a, -0.5, 0.5))
    assert agent.stats["skipped"] == 6 and agent.stats["updates"] == 24
    agent.update(1.0, rng.standard_normal(5), True, False)   # terminal: no act on it
    agent.reset()
    agent.act(obs)
    assert agent.stats["episodes"] == 2


@pytest.mark.parametrize("cell, critic_thread",
                         [("rtu-linear", False), ("none", False), ("rtu-linear", True)],
                         ids=["rtu-linear", "none", "rtu-linear-critic-thread"])
def test_no_array_allocation_per_step(cell, critic_thread):
    """After warm-up, 300 act+learn steps allocate no array: the peak of traced memory stays within a
    few KiB of the start (one parameter-sized temporary would add tens of KiB). With the critic on its
    helper thread too (its hand-overs)."""
    agent = Agent(OBS, BOX, AgentConfig(cell=cell), seed=0,   # paper size: arrays of 100+ KiB
                  critic_thread=critic_thread)
    assert_ticks_allocate_no_array(agent, 5)


@pytest.mark.parametrize("cell", ["rtu-linear", "lru", "none"])
@pytest.mark.parametrize("space", [BOX, DISCRETE], ids=["box", "discrete"])
def test_checkpoint_round_trip_gives_identical_next_actions_and_updates(cell, space, tmp_path):
    from controller.agent import load_agent, save_agent

    rng = np.random.default_rng(1)
    stream = rng.standard_normal((80, 5))
    rewards = rng.standard_normal(80)
    a = _agent(space, cell=cell)
    for t in range(40):   # mid-episode, with pending state in every buffer
        a.act(stream[t])
        a.learn(rewards[t], stream[t + 1], t == 20, False)
    path = save_agent(tmp_path / "agent.ckpt", a, extra_meta={"step": 40})
    b = _agent(space, seed=99, cell=cell)          # different init and RNG: all must be overwritten
    assert load_agent(path, b) == {"step": 40}
    for t in range(40, 79):
        act_a = np.array(a.act(stream[t]), dtype=float).copy()
        act_b = np.array(b.act(stream[t]), dtype=float).copy()
        np.testing.assert_array_equal(act_a, act_b)
        a.learn(rewards[t], stream[t + 1], t == 60, False)
        b.learn(rewards[t], stream[t + 1], t == 60, False)
    for pa, pb in zip(_params(a), _params(b)):
        np.testing.assert_array_equal(pa, pb)
    assert a.stats == b.stats


def test_checkpoint_without_trace_norms_loads_and_recomputes_them(tmp_path):
    """A checkpoint written before Network.zl1 existed still loads: the norms come from the traces."""
    from controller.agent import agent_arrays, agent_meta, load_agent
    from controller.checkpoint import save_arrays

    rng = np.random.default_rng(2)
    a = _agent(dtype="float64", obgd_scope="group")
    for t in range(30):
        a.act(rng.standard_normal(5))
        a.learn(float(rng.standard_normal()), rng.standard_normal(5), False, False)
    arrays = {k: np.array(v, copy=True) for k, v in agent_arrays(a).items() if not k.endswith(".zl1")}
    path = save_arrays(tmp_path / "old.ckpt", arrays, agent_meta(a))
    b = _agent(dtype="float64", obgd_scope="group", seed=7)
    load_agent(path, b)
    for na, nb in ((a.actor, b.actor), (a.critic, b.critic)):
        assert nb.zl1[0] > 0 and nb.zl1[1] > 0
        np.testing.assert_allclose(nb.zl1, na.zl1, rtol=1e-12)
    np.testing.assert_array_equal(b.act(np.ones(5)), a.act(np.ones(5)))


def test_checkpoint_of_another_configuration_or_corrupt_file_is_refused(tmp_path):
    from controller.agent import load_agent, save_agent
    from controller.checkpoint import CheckpointError

    a = _agent()
    path = save_agent(tmp_path / "a.ckpt", a)
    other = _agent(n_units=6)
    before = other.actor.P.copy()
    with pytest.raises(CheckpointError, match="config"):
        load_agent(path, other)
    np.testing.assert_array_equal(other.actor.P, before)   # untouched
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="bad.ckpt"):
        load_agent(bad, _agent())


@pytest.mark.parametrize("scope", ["network", "group"])
@pytest.mark.parametrize("space", [BOX, DISCRETE], ids=["box", "discrete"])
def test_fused_credit_and_apply_equals_the_separate_calls(space, scope):
    """One kernel call for credit + ObGD equals the two calls. Not bit for bit: the L1 norm of the
    traces is a vectorised sum whose order LLVM may choose differently once the kernels are inlined
    into one, so the step sizes differ in the last bits (each route on its own is deterministic)."""
    fused = _agent(space, dtype="float64", obgd_scope=scope)
    separate = _agent(space, dtype="float64", obgd_scope=scope)
    separate._fuse = False
    acts_f = _run(fused, np.random.default_rng(5), 90)
    acts_s = _run(separate, np.random.default_rng(5), 90)
    np.testing.assert_allclose(acts_f, acts_s, rtol=1e-9, atol=1e-12)
    for pf, ps in zip(_params(fused), _params(separate)):
        np.testing.assert_allclose(pf, ps, rtol=1e-9, atol=1e-12)
    assert fused.stats["updates"] == separate.stats["updates"] == 90

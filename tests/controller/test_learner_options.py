"""The learner options of AgentConfig beyond design.md §3.5 (issue 18): λ per parameter group, the input skip
to the head, the RTU's initial ranges, the widths. Validation, what each option changes and nothing else,
checkpoints. (Gradients against torch: test_networks.py; bit-exact defaults: test_default_fingerprint.py;
no allocation: test_no_allocation.py.)"""
import gymnasium as gym
import numpy as np
import pytest

from controller.agent import LAM_GROUPS, Agent, AgentConfig
from controller.config import ConfigError

OBS = gym.spaces.Box(-np.inf, np.inf, (5,), np.float64)
BOX = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
DISCRETE = gym.spaces.Discrete(3)
SMALL = dict(n_units=8, encoder_width=8, head_width=8)


def _agent(space=BOX, seed=0, critic_thread=False, **cfg):
    return Agent(OBS, space, AgentConfig(**{**SMALL, **cfg}), seed=seed, critic_thread=critic_thread)


def _traces(agent):
    """{(network, group index): copy of the trace}; group 0: the dense layers, 1-3: the cell's."""
    agent.sync()
    return {(name, i): z.copy() for name in ("actor", "critic")
            for i, (_, _, z) in enumerate(getattr(agent, name).parameter_groups())}


# ----------------------------------------------------------------------------- λ per parameter group
@pytest.mark.parametrize("name", LAM_GROUPS)
@pytest.mark.parametrize("value", [-0.1, 1.5, float("nan")])
def test_group_lambda_outside_zero_one_is_refused_by_name(name, value):
    with pytest.raises(ConfigError, match=name):
        AgentConfig(**{name: value})


def test_trace_decays_default_to_gamma_lambda_and_reach_their_networks():
    cfg = AgentConfig(gamma=0.9, lam=0.5, lam_policy_cell=0.99, lam_value_dense=0.0)
    assert cfg.trace_decays == ((0.9 * 0.5, 0.9 * 0.99), (0.0, 0.9 * 0.5))
    assert AgentConfig().trace_decays == ((0.99 * 0.8,) * 2,) * 2
    agent = Agent(OBS, BOX, AgentConfig(**SMALL, dtype="float64", gamma=0.9, lam=0.5, lam_policy_dense=0.7,
                                        lam_policy_cell=0.99, lam_value_dense=0.0, lam_value_cell=1.0))
    assert agent.actor.trace_decays == (0.9 * 0.7, 0.9 * 0.99)
    assert agent.critic.trace_decays == (0.0, 0.9)
    f32 = _agent(lam_value_cell=0.3)
    assert f32.critic.trace_decays == (float(np.float32(0.99 * 0.8)), float(np.float32(0.99 * 0.3)))


@pytest.mark.parametrize("group", LAM_GROUPS)
@pytest.mark.parametrize("cell, space, thread, scope", [
    ("rtu-linear", BOX, False, "network"), ("rtu-nonlinear", DISCRETE, True, "group"),
    ("lru", BOX, False, "group"), ("none", DISCRETE, False, "network"), ("rtu-linear", BOX, True, "network"),
    ("rtu-linear", BOX, True, "skip")],
    ids=["rtu-linear", "rtu-nonlinear-thread-group", "lru-group", "none", "rtu-linear-thread",
         "rtu-linear-thread-skip"])
def test_a_group_lambda_decays_that_group_and_nothing_else(group, cell, space, thread, scope):
    """Two agents identical but for one group's λ (0.9 against 0), gymnasium order. Up to the update
    where that group's trace first decays, both take the same steps, so every gradient is the same:
    there the agent with λ_g = 0 holds the new gradient g alone and the other γ·0.9·z + g (z: the trace
    before, the same in both), and every other trace is bit-identical. For the critic that is the first
    learn (its trace already holds ∇V(s₀)), for the actor the second. With cell "none" the cell's λ
    changes nothing."""
    # normalize_observations=False: a first normalised observation is 0, and so would be the first cell traces
    kw = dict(cell=cell, dtype="float64", obgd_scope="network" if scope == "skip" else scope,
              critic_thread=thread, normalize_observations=False, input_skip=scope == "skip")
    a = _agent(space, **kw, **{group: 0.9})
    b = _agent(space, **kw, **{group: 0.0})
    net = "actor" if "policy" in group else "critic"
    rng = np.random.default_rng(4)
    obs = rng.standard_normal((3, 5))
    for agent in (a, b):
        agent.act(obs[0])
        agent._critic_catch_up()   # the critic's trace now holds ∇V(s₀): observable before the first learn
    history = [(_traces(a), _traces(b))]
    for t in (1, 2):
        for agent in (a, b):
            if t == 2:
                agent.act(obs[1])
            agent.learn(0.7, obs[t], False, False)
        history.append((_traces(a), _traces(b)))
    at = 1 if net == "critic" else 2
    before, (za, zb) = history[at - 1][0], history[at]
    assert history[at - 1][0].keys() == history[at - 1][1].keys()
    for key in before:
        np.testing.assert_array_equal(history[at - 1][0][key], history[at - 1][1][key])
    changed = [k for k in za if k[0] == net and ((k[1] == 0) == group.endswith("dense"))]
    assert bool(changed) == (cell != "none" or group.endswith("dense"))
    for key in za:
        if key in changed:
            assert np.count_nonzero(before[key]), key
            np.testing.assert_allclose(za[key], zb[key] + 0.99 * 0.9 * before[key], rtol=1e-12, atol=1e-15)
            assert not np.array_equal(za[key], zb[key])
        else:
            np.testing.assert_array_equal(za[key], zb[key], err_msg=str(key))
    a.close()
    b.close()


# ----------------------------------------------------------------------------- input skip
def test_input_skip_must_be_a_bool():
    with pytest.raises(ConfigError, match="input_skip"):
        AgentConfig(input_skip=1)


@pytest.mark.parametrize("cell", ["rtu-linear", "rtu-nonlinear", "lru"])
@pytest.mark.parametrize("space", [BOX, DISCRETE], ids=["box", "discrete"])
def test_input_skip_widens_both_heads_and_learns_alike_on_every_route(cell, space):
    """Both heads read m + H inputs; the agent learns, in gymnasium order with and without the critic
    thread (equal up to rounding) and in the real-time loop order; the fused credit + ObGD call equals
    the separate calls."""
    kw = dict(cell=cell, dtype="float64", input_skip=True)
    agents = [_agent(space, **kw), _agent(space, critic_thread=True, **kw), _agent(space, **kw)]
    agents[2]._fuse = False
    for agent in agents[:1]:
        for net in (agent.actor, agent.critic):
            assert net.dense["hid_w"].shape == (8, 16 + 8) and net.input_skip
    runs = []
    for agent in agents:
        rng = np.random.default_rng(6)
        acts = []
        for t in range(80):
            acts.append(np.array(agent.act(rng.standard_normal(5)), np.float64).copy())
            agent.learn(float(rng.standard_normal()), rng.standard_normal(5), False, t % 40 == 39)
        agent.sync()
        params = [p.copy() for net in (agent.actor, agent.critic) for p, _, _ in net.parameter_groups()]
        runs.append((np.array(acts), params))
    for acts, params in runs[1:]:
        np.testing.assert_allclose(acts, runs[0][0], rtol=1e-9, atol=1e-12)
        for p, q in zip(params, runs[0][1]):
            np.testing.assert_allclose(p, q, rtol=1e-9, atol=1e-12)
    loop = _agent(space, **kw)
    rng = np.random.default_rng(6)
    for t in range(40):
        loop.act(rng.standard_normal(5))
        loop.skip(0.1, rng.standard_normal(5), False, False) if t % 9 == 8 else \
            loop.update(float(rng.standard_normal()), rng.standard_normal(5), False, False)
        loop.credit()
    assert loop.stats["updates"] == 36 and all(np.isfinite(p).all() for p, _, _ in loop.actor.parameter_groups())
    assert not np.array_equal(runs[0][1][0], _agent(space, **kw).actor.P)   # it learned
    agents[1].close()


def test_input_skip_changes_nothing_for_a_feed_forward_agent():
    a, b = _agent(cell="none", input_skip=True), _agent(cell="none")
    rng = np.random.default_rng(0)
    for _ in range(20):
        obs = rng.standard_normal(5)
        np.testing.assert_array_equal(a.act(obs), b.act(obs))
        a.learn(0.5, obs, False, False)
        b.learn(0.5, obs, False, False)
    np.testing.assert_array_equal(a.actor.P, b.actor.P)


# ----------------------------------------------------------------------------- RTU initial ranges
@pytest.mark.parametrize("fields, name", [
    (dict(rtu_r_min=-0.1), "rtu_r_min"), (dict(rtu_r_min=0.5, rtu_r_max=0.5), "rtu_r_min"),
    (dict(rtu_r_min=0.9, rtu_r_max=0.8), "rtu_r_min"), (dict(rtu_r_max=1.01), "rtu_r_max"),
    (dict(rtu_r_max=0.0), "rtu_r_max"), (dict(rtu_max_phase=0.0), "rtu_max_phase"),
    (dict(rtu_max_phase=float("inf")), "rtu_max_phase"), (dict(rtu_r_min=float("nan")), "rtu_r_min")])
def test_rtu_ranges_are_validated_by_name(fields, name):
    with pytest.raises(ConfigError, match=name):
        AgentConfig(**fields)


def test_rtu_range_defaults_are_the_cells():
    import inspect

    from controller.cells import RTUCell

    params = inspect.signature(RTUCell).parameters
    cfg = AgentConfig()
    assert (cfg.rtu_r_min, cfg.rtu_r_max, cfg.rtu_max_phase) == (
        params["r_min"].default, params["r_max"].default, params["max_phase"].default)


@pytest.mark.parametrize("cell", ["rtu-linear", "rtu-nonlinear"])
def test_initial_radii_and_phases_land_in_the_configured_ranges(cell):
    """Both networks' RTUs draw r and θ inside the configured ranges and fill them (r² uniform: with 64
    units the extremes come within a few percent of the ends); the default ranges give other draws."""
    r_min, r_max, max_phase = 0.9, 0.99, 0.5
    agent = _agent(cell=cell, n_units=64, rtu_r_min=r_min, rtu_r_max=r_max, rtu_max_phase=max_phase)
    default = _agent(cell=cell, n_units=64)
    for net, other in ((agent.actor, default.actor), (agent.critic, default.critic)):
        r = np.exp(-np.exp(net.cell.params["nu_log"].astype(np.float64)))
        theta = np.exp(net.cell.params["theta_log"].astype(np.float64))
        assert r_min <= r.min() < r_min + 0.01 and r_max - 0.01 < r.max() <= r_max
        assert 0.0 < theta.min() < 0.05 * max_phase and 0.95 * max_phase < theta.max() < max_phase
        r_default = np.exp(-np.exp(other.cell.params["nu_log"].astype(np.float64)))
        assert r_default.min() < 0.5 and np.exp(other.cell.params["theta_log"]).max() > 3.0
        np.testing.assert_array_equal(net.cell.params["w1"], other.cell.params["w1"])  # the same draws


def test_rtu_ranges_do_not_change_an_lru_or_feed_forward_agent():
    for cell in ("lru", "none"):
        a = _agent(cell=cell, rtu_r_min=0.5, rtu_r_max=0.6, rtu_max_phase=1.0)
        b = _agent(cell=cell)
        for (pa, _, _), (pb, _, _) in zip(a.actor.parameter_groups() + a.critic.parameter_groups(),
                                          b.actor.parameter_groups() + b.critic.parameter_groups()):
            np.testing.assert_array_equal(pa, pb)


# ----------------------------------------------------------------------------- widths, checkpoints
@pytest.mark.parametrize("cell", ["rtu-linear", "rtu-nonlinear", "lru", "none"])
@pytest.mark.parametrize("thread", [False, True], ids=["single", "critic-thread"])
def test_widths_are_honoured_by_both_networks_the_thread_and_checkpoints(cell, thread, tmp_path):
    """encoder_width 5, n_units 3, head_width 7: every array of both networks has those sizes, the
    agent learns (also with the critic on its helper thread), and a checkpoint restores it into an
    agent built from the same configuration, whose next actions are bit-identical."""
    from controller.agent import load_agent, save_agent

    cfg = dict(cell=cell, encoder_width=5, n_units=3, head_width=7, dtype="float64")
    agent = Agent(OBS, BOX, AgentConfig(**cfg), seed=0, critic_thread=thread)
    m = 6 if cell != "none" else 5
    for net, k in ((agent.actor, 4), (agent.critic, 1)):
        shapes = {name: v.shape for name, v in net.dense.items()}
        assert shapes == {"enc_w": (5, 5), "enc_b": (5,), "hid_w": (7, m), "hid_b": (7,), "out_w": (k, 7),
                          "out_b": (k,)}
        if net.cell is not None:
            assert net.cell.n_in == 5 and net.cell.n_hidden == 3 and net.y.shape == (6,)
    rng = np.random.default_rng(0)
    stream = rng.standard_normal((60, 5))
    for t in range(30):
        agent.act(stream[t])
        agent.learn(0.3, stream[t + 1], False, False)
    path = save_agent(tmp_path / "w.ckpt", agent)
    other = Agent(OBS, BOX, AgentConfig(**cfg), seed=9, critic_thread=thread)
    load_agent(path, other)
    for t in range(30, 40):
        np.testing.assert_array_equal(agent.act(stream[t]), other.act(stream[t]))
        agent.learn(0.3, stream[t + 1], False, False)
        other.learn(0.3, stream[t + 1], False, False)
    agent.sync()
    assert agent.stats["updates"] == 40 and np.all(np.isfinite(agent.critic.P))
    agent.close()
    other.close()


@pytest.mark.parametrize("field, value", [("lam_policy_dense", 0.5), ("lam_policy_cell", 0.99),
                                          ("lam_value_dense", 0.5), ("lam_value_cell", 0.99),
                                          ("rtu_r_min", 0.5), ("rtu_r_max", 0.9), ("rtu_max_phase", 1.0),
                                          ("encoder_width", 6), ("head_width", 6), ("input_skip", True)])
def test_checkpoint_of_another_option_value_is_refused_and_the_same_one_restores(field, value, tmp_path):
    from controller.agent import load_agent, save_agent
    from controller.checkpoint import CheckpointError

    rng = np.random.default_rng(1)
    a = _agent(**{field: value})
    for _ in range(10):
        a.act(rng.standard_normal(5))
        a.learn(0.1, rng.standard_normal(5), False, False)
    path = save_agent(tmp_path / "a.ckpt", a)
    with pytest.raises(CheckpointError, match=field):
        load_agent(path, _agent())
    same = _agent(seed=3, **{field: value})
    load_agent(path, same)
    obs = rng.standard_normal(5)
    np.testing.assert_array_equal(a.act(obs), same.act(obs))


def test_checkpoint_from_before_the_options_loads_as_their_defaults(tmp_path):
    """A checkpoint whose config lacks the fields added with these options (written before them) holds
    an agent with their defaults: it loads into a default agent and is refused by one with another
    value."""
    from controller.agent import agent_arrays, agent_meta, load_agent
    from controller.agent_checkpoint import _LATER_FIELDS
    from controller.checkpoint import CheckpointError, save_arrays

    a = _agent()
    rng = np.random.default_rng(2)
    for _ in range(10):
        a.act(rng.standard_normal(5))
        a.learn(0.1, rng.standard_normal(5), False, False)
    meta = agent_meta(a)
    for k in _LATER_FIELDS:
        del meta["config"][k]
    path = save_arrays(tmp_path / "old.ckpt", {k: np.array(v, copy=True) for k, v in agent_arrays(a).items()},
                       meta)
    b = _agent(seed=4)
    load_agent(path, b)
    obs = rng.standard_normal(5)
    np.testing.assert_array_equal(a.act(obs), b.act(obs))
    with pytest.raises(CheckpointError, match="lam_value_cell"):
        load_agent(path, _agent(lam_value_cell=0.9))

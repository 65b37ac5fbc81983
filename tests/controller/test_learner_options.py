"""The learner options of AgentConfig beyond DESIGN §3.5 (issue 18): λ per parameter group, the input skip
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
    ("lru", BOX, False, "group"), ("none", DISCRETE, False, "network"), ("rtu-linear", BOX, True, "network")],
    ids=["rtu-linear", "rtu-nonlinear-thread-group", "lru-group", "none", "rtu-linear-thread"])
def test_a_group_lambda_decays_that_group_and_nothing_else(group, cell, space, thread, scope):
    """Two agents identical but for one group's λ (0.9 against 0), gymnasium order. Up to the update
    where that group's trace first decays, both take the same steps, so every gradient is the same:
    there the agent with λ_g = 0 holds the new gradient g alone and the other γ·0.9·z + g (z: the trace
    before, the same in both), and every other trace is bit-identical. For the critic that is the first
    learn (its trace already holds ∇V(s₀)), for the actor the second. With cell "none" the cell's λ
    changes nothing."""
    # normalize_observations=False: a first normalised observation is 0, and so would be the first cell traces
    kw = dict(cell=cell, dtype="float64", obgd_scope=scope, critic_thread=thread, normalize_observations=False)
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

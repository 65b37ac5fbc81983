"""PPO-RTRL learner (controller.ppo): the batched RTU step against RTUCell, the hand-written minibatch
gradient against torch autograd on the same stored states and traces, GAE against a direct loop, the
normalisers against gymnasium's statistics, a short learning check on a task that needs memory, the
feed-forward variant (cell: none) and a checkpoint round trip in the middle of a rollout."""
import dataclasses
import math

import gymnasium as gym
import numpy as np
import pytest

from controller.cells import RTUCell
from controller.errors import ConfigError
from controller.ppo import PPOAgent, rtu_batch_step
from controller.ppo_buffer import ObservationNormalizer, RewardScaler, gae
from controller.ppo_config import PPOConfig

VARIANTS = ("linear", "nonlinear")
CELLS = {"linear": "rtu-linear", "nonlinear": "rtu-nonlinear", None: "none"}
OBS, ACT = 5, 2


def _small_agent(variant, **overrides):
    """A float64 PPOAgent of test size whose update is intercepted: after one rollout of 32 steps (a
    termination at step 9, a truncation at step 20) the stored arrays are complete and GAE is filled."""
    kw = {"rollout_steps": 32, "minibatches": 4, "encoder_width": 8, "n_units": 6, "head_width": 8,
          "dtype": "float64", "cell": CELLS[variant],
          "entropy_coef": 0.01, **overrides}
    cfg = PPOConfig(**kw)
    agent = PPOAgent(gym.spaces.Box(-np.inf, np.inf, (OBS,), np.float64),
                     gym.spaces.Box(-1.0, 1.0, (ACT,), np.float64), cfg, seed=1)
    last_values = []
    agent._update = last_values.append   # keep the rollout instead of learning from it
    rng = np.random.default_rng(7)
    for t in range(cfg.rollout_steps):
        agent.act(2.0 * rng.standard_normal(OBS) + 1.0)
        agent.learn(float(rng.standard_normal()), 2.0 * rng.standard_normal(OBS) + 1.0, t == 9, t == 20)
    assert len(last_values) == 1
    agent.rollout.finish(last_values[0], cfg.gamma, cfg.gae_lambda)
    return agent


# ----------------------------------------------------------------------------- batched RTU step
@pytest.mark.parametrize("variant", VARIANTS)
def test_batch_step_equals_cell_forward(variant):
    d, n = 7, 5
    cell = RTUCell(d, n, variant=variant, activation="relu", dtype=np.float64, seed=3)
    rng = np.random.default_rng(0)
    states, xs, ys, news = [], [], [], []
    for _ in range(12):
        x = rng.standard_normal(d)
        states.append(cell.state.copy())
        y = cell.forward(x)
        xs.append(x)
        ys.append(y.copy())
        news.append(cell.state.copy())
    assert np.abs(np.array(news)).max() > 0.1 and (np.array(ys) == 0).any()  # ReLU cut and state non-trivial
    p = cell.params
    c, y, _, _ = rtu_batch_step(np.array(states), np.array(xs), p["nu_log"], p["theta_log"], p["w1"], p["w2"],
                                variant)
    np.testing.assert_allclose(y, np.array(ys), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(c, np.array(news), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("variant", VARIANTS + (None,))
def test_update_forward_reproduces_the_act_path(variant):
    """Before any update the minibatch forward from the stored c_{t-1} gives the stored x_t, V and log-prob."""
    agent = _small_agent(variant)
    ro, idx = agent.rollout, np.arange(32)
    fw = agent._forward(ro.obs[idx], ro.c_prev[idx])
    np.testing.assert_allclose(fw["x"], ro.x, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(fw["v"], ro.values, rtol=1e-10, atol=1e-12)
    _, info = agent.minibatch_gradient(idx)
    assert abs(info["approx_kl"]) < 1e-12 and info["clip_fraction"] == 0.0
    assert ro.boot[20] != 0.0 and ro.boot[9] == 0.0 and ro.done[[9, 20]].all() and ro.terminated.sum() == 1


# ----------------------------------------------------------------------------- gradient vs torch
def _torch_gradients(agent, idx):
    """The same PPO loss in torch autograd, from the stored tensors (the RTU step: ``_torch_rtu``; without a
    cell the heads read the encoder's output)."""
    torch = pytest.importorskip("torch")
    cfg, ro, eps = agent.config, agent.rollout, agent.config.clip
    P = {k: torch.tensor(np.array(v), dtype=torch.float64, requires_grad=True) for k, v in agent.params.items()}
    T = lambda a: torch.tensor(np.ascontiguousarray(a), dtype=torch.float64)  # noqa: E731
    o, cp, s_vec, s_mat = T(ro.obs[idx]), T(ro.c_prev[idx]), T(ro.trace_vec[idx]), T(ro.trace_mat[idx])
    x = torch.tanh(o @ P["enc_w"].T + P["enc_b"])
    y = x if cfg.variant is None else _torch_rtu(cfg, P, x, cp, s_vec, s_mat)
    ha = torch.tanh(y @ P["actor_w1"].T + P["actor_b1"])
    mean = ha @ P["actor_w2"].T + P["actor_b2"]
    hv = torch.tanh(y @ P["critic_w1"].T + P["critic_b1"])
    v = (hv @ P["critic_w2"].T + P["critic_b2"])[:, 0]
    dist = torch.distributions.Normal(mean, torch.exp(P["log_std"]))
    logp = dist.log_prob(T(ro.actions[idx])).sum(-1)
    ratio = torch.exp(logp - T(ro.logp[idx]))
    adv = T(ro.advantages[idx])
    adv = (adv - adv.mean()) / (adv.std(unbiased=False) + 1e-8)
    policy_loss = -torch.minimum(ratio * adv, torch.clamp(ratio, 1 - eps, 1 + eps) * adv).mean()
    v_old, ret = T(ro.values[idx]), T(ro.returns[idx])
    v_clip = v_old + torch.clamp(v - v_old, -eps, eps)
    value_loss = 0.5 * torch.maximum((v - ret) ** 2, (v_clip - ret) ** 2).mean()
    loss = policy_loss + cfg.value_coef * value_loss - cfg.entropy_coef * dist.entropy().sum(-1).mean()
    loss.backward()
    return {k: t.grad.numpy() for k, t in P.items()}, loss.item(), ratio.detach().numpy(), v.detach().numpy()


def _torch_rtu(cfg, P, x, cp, s_vec, s_mat):
    """y_t of the RTU step from c_{t-1} in torch: the current parameters on the input path, and
    S_t · (p − p.detach()) for the parameters' path."""
    import torch
    e_nu = torch.exp(P["nu_log"].detach())
    r = torch.exp(-e_nu)
    theta = torch.exp(P["theta_log"].detach())
    g, phi, eta = r * torch.cos(theta), r * torch.sin(theta), torch.sqrt(1.0 - r * r) + 1e-8
    a1 = g * cp[:, 0] - phi * cp[:, 1] + eta * (x @ P["w1"].detach().T)
    a2 = g * cp[:, 1] + phi * cp[:, 0] + eta * (x @ P["w2"].detach().T)
    if cfg.variant == "nonlinear":
        a1, a2 = torch.relu(a1), torch.relu(a2)
    dp = {k: P[k] - P[k].detach() for k in ("nu_log", "theta_log", "w1", "w2")}
    s1_w1, s2_w1 = s_mat[:, 0].transpose(1, 2), s_mat[:, 1].transpose(1, 2)   # (B, n, d)
    if cfg.variant == "linear":
        s1_w2, s2_w2 = -s2_w1, s1_w1
    else:
        s1_w2, s2_w2 = s_mat[:, 2].transpose(1, 2), s_mat[:, 3].transpose(1, 2)
    c1 = (a1 + s_vec[:, 0] * dp["nu_log"] + s_vec[:, 2] * dp["theta_log"]
          + (s1_w1 * dp["w1"]).sum(-1) + (s1_w2 * dp["w2"]).sum(-1))
    c2 = (a2 + s_vec[:, 1] * dp["nu_log"] + s_vec[:, 3] * dp["theta_log"]
          + (s2_w1 * dp["w1"]).sum(-1) + (s2_w2 * dp["w2"]).sum(-1))
    return torch.cat([torch.relu(c1), torch.relu(c2)] if cfg.variant == "linear" else [c1, c2], dim=1)


@pytest.mark.parametrize("variant", VARIANTS + (None,))
def test_minibatch_gradient_equals_torch_autograd(variant):
    agent = _small_agent(variant)
    rng = np.random.default_rng(11)
    for p in agent.params.values():   # current parameters differ from the rollout's: ratios and values move
        p += 0.2 * rng.standard_normal(p.shape)
    idx = rng.permutation(32)[:16]
    grads, info = agent.minibatch_gradient(idx)
    ref, loss, ratio, v = _torch_gradients(agent, idx)
    # every branch of both clips is exercised
    assert 0.0 < info["clip_fraction"] < 1.0, ratio
    moved = np.abs(v - agent.rollout.values[idx]) > agent.config.clip
    assert moved.any() and not moved.all()
    assert info["total_loss"] == pytest.approx(loss, rel=1e-10)
    assert set(grads) == set(ref)
    for k in ref:
        assert grads[k].shape == ref[k].shape, k
        assert np.abs(ref[k]).max() > 1e-8, k
        np.testing.assert_allclose(grads[k], ref[k], rtol=1e-6, atol=1e-9, err_msg=k)


def test_gradient_clip_and_adam_step():
    agent = _small_agent("linear")
    grads, _ = agent.minibatch_gradient(np.arange(8))
    before = {k: np.array(v) for k, v in agent.params.items()}
    norm = agent.apply_gradients({k: 100.0 * g for k, g in grads.items()})
    cfg = agent.config
    assert norm > 10 * cfg.max_grad_norm
    clipped = {k: 100.0 * g * cfg.max_grad_norm / norm for k, g in grads.items()}
    assert math.sqrt(sum(np.sum(g * g) for g in clipped.values())) == pytest.approx(cfg.max_grad_norm)
    # first Adam step: m̂ = g, v̂ = g², so the step is lr g / (|g| + ε) with g the clipped gradient
    for k, p in agent.params.items():
        g = clipped[k]
        np.testing.assert_allclose(before[k] - p, cfg.lr * g / (np.abs(g) + cfg.adam_eps), rtol=1e-9,
                                   atol=1e-15, err_msg=k)


# ----------------------------------------------------------------------------- GAE
def _gae_loop(rewards, values, terminated, done, boot, last_value, gamma, lam):
    """A_t = Σ_k (γλ)^(k-t) δ_k up to the episode's end or the rollout's end, one t at a time."""
    T = len(rewards)
    adv = np.zeros(T)
    for t in range(T):
        for k in range(t, T):
            if terminated[k]:
                nxt = 0.0
            elif done[k]:
                nxt = boot[k]
            elif k == T - 1:
                nxt = last_value
            else:
                nxt = values[k + 1]
            adv[t] += (gamma * lam) ** (k - t) * (rewards[k] + gamma * nxt - values[k])
            if done[k]:
                break
    return adv


def test_gae_matches_loop_and_separates_truncation_from_termination():
    rng = np.random.default_rng(3)
    T, gamma, lam = 40, 0.97, 0.9
    rewards, values, boot = rng.standard_normal(T), rng.standard_normal(T), np.zeros(T)
    terminated, done = np.zeros(T, bool), np.zeros(T, bool)
    terminated[[7, 30]] = done[[7, 30]] = True
    done[19] = True
    boot[19] = 2.5
    for last_value in (0.0, 1.7):
        adv, ret = gae(rewards, values, terminated, done, boot, last_value, gamma, lam)
        np.testing.assert_allclose(adv, _gae_loop(rewards, values, terminated, done, boot, last_value,
                                                  gamma, lam), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(ret, adv + values)
    # truncation bootstraps: turning it into a termination removes γ·boot, discounted back to the start
    term2 = terminated.copy()
    term2[19] = True
    adv2, _ = gae(rewards, values, term2, done, boot, 1.7, gamma, lam)
    diff = adv - adv2
    expected = np.zeros(T)
    expected[8:20] = gamma * boot[19] * (gamma * lam) ** np.arange(11, -1, -1)
    np.testing.assert_allclose(diff, expected, atol=1e-12)
    # the last step bootstraps from last_value unless it ended an episode
    done3, term3 = done.copy(), terminated.copy()
    done3[-1] = term3[-1] = True
    a, _ = gae(rewards, values, term3, done3, boot, 123.0, gamma, lam)
    assert a[-1] == pytest.approx(rewards[-1] - values[-1])


# ----------------------------------------------------------------------------- normalisers, config
def test_normalisers_follow_gymnasium_statistics():
    from gymnasium.wrappers.utils import RunningMeanStd

    rng = np.random.default_rng(5)
    obs = 3.0 + 2.0 * rng.standard_normal((50, 4))
    norm, ref = ObservationNormalizer(4), RunningMeanStd(shape=(4,))
    out = np.zeros(4, np.float32)
    for o in obs:
        norm.update_normalize(o, out)
        ref.update(o[None])
        np.testing.assert_allclose(out, (o - ref.mean) / np.sqrt(ref.var + 1e-8), rtol=1e-6, atol=1e-6)
    scaler, ref, ret = RewardScaler(0.9), RunningMeanStd(shape=()), np.zeros(1)
    for r in rng.standard_normal(30):
        ret = 0.9 * ret + r
        ref.update(ret)
        assert scaler(float(r), False) == pytest.approx(r / math.sqrt(ref.var + 1e-8), rel=1e-12)


def test_config_rejects_bad_values():
    with pytest.raises(ConfigError, match="minibatches"):
        PPOConfig(rollout_steps=100, minibatches=32)
    with pytest.raises(ConfigError, match="cell"):
        PPOConfig(cell="lru")
    with pytest.raises(ConfigError, match="lr"):
        PPOConfig(lr=0.0)
    assert PPOConfig().minibatch_size == 64 and PPOConfig(cell="rtu-nonlinear").variant == "nonlinear"
    assert PPOConfig(cell="none").variant is None


def test_feed_forward_rollout_stores_no_state_or_traces():
    spaces = (gym.spaces.Box(-np.inf, np.inf, (8,), np.float64), gym.spaces.Box(-1.0, 1.0, (6,), np.float32))
    sizes = {cell: PPOAgent(*spaces, PPOConfig(cell=cell, rollout_steps=64, minibatches=4)).rollout.bytes_per_step
             for cell in ("rtu-linear", "none")}
    # float32, n_obs 8, d 64, a 6: 4 (8 + 64 + 12) + 6 * 8 + 2 bytes; the RTU adds 4 (6 n + 2 d n)
    assert sizes == {"rtu-linear": 386 + 4 * (6 * 192 + 2 * 64 * 192), "none": 386}


# ----------------------------------------------------------------------------- learning
class PreviousObservation(gym.Env):
    """o_t ~ U(-1, 1) i.i.d.; reward −(a_t − o_{t−1})² (o_{−1} = 0); 64 steps, then truncation.
    The current observation says nothing about the target: only a memory of the last one helps."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float64)
    action_space = gym.spaces.Box(-2.0, 2.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._prev, self._t = 0.0, 0
        self._obs = self.np_random.uniform(-1.0, 1.0, 1)
        return self._obs.copy(), {}

    def step(self, action):
        reward = -float((action[0] - self._prev) ** 2)
        self._prev, self._t = float(self._obs[0]), self._t + 1
        self._obs = self.np_random.uniform(-1.0, 1.0, 1)
        return self._obs.copy(), reward, False, self._t >= 64, {}


def test_learns_to_recall_the_previous_observation():
    env = PreviousObservation()
    cfg = PPOConfig(rollout_steps=512, minibatches=8, epochs=4, lr=1e-3, encoder_width=16, n_units=16,
                    head_width=16)
    agent = PPOAgent(env.observation_space, env.action_space, cfg, seed=0)
    obs, _ = env.reset(seed=0)
    means, targets, prev = [], [], 0.0
    for _ in range(40 * 512):
        agent.act(obs)
        means.append(float(agent._mean[0]))
        targets.append(prev)
        prev = float(obs[0])
        obs, reward, terminated, truncated, _ = env.step(agent._action)
        agent.learn(reward, obs, terminated, truncated)
        if terminated or truncated:
            obs, _ = env.reset()
            prev = 0.0
    means, targets = np.array(means), np.array(targets)
    first = np.mean((means[:2048] - targets[:2048]) ** 2)
    last = np.mean((means[-2048:] - targets[-2048:]) ** 2)
    assert agent.stats["rollouts"] == 40
    assert last < 0.25 * first, (first, last)
    assert np.corrcoef(means[-2048:], targets[-2048:])[0, 1] > 0.8


def test_act_and_learn_allocate_no_array_between_updates():
    from tests.controller.helpers import assert_ticks_allocate_no_array

    cfg = PPOConfig(rollout_steps=512, minibatches=8, encoder_width=32, n_units=64, head_width=16)
    agent = PPOAgent(gym.spaces.Box(-np.inf, np.inf, (OBS,), np.float64),
                     gym.spaces.Box(-1.0, 1.0, (ACT,), np.float32), cfg, seed=0)
    assert_ticks_allocate_no_array(agent, OBS)   # 350 ticks: no update runs
    assert agent.stats["rollouts"] == 0 and agent.stats["steps"] == 350


# ----------------------------------------------------------------------------- checkpoints
@pytest.mark.parametrize("cell", ["rtu-nonlinear", "none"])
def test_checkpoint_mid_rollout_continues_bit_identically(tmp_path, cell):
    from controller.checkpoint import CheckpointError
    from controller.ppo_checkpoint import read_ppo, save_ppo

    cfg = PPOConfig(rollout_steps=32, minibatches=4, encoder_width=8, n_units=6, head_width=8, cell=cell)
    spaces = (gym.spaces.Box(-np.inf, np.inf, (OBS,), np.float64), gym.spaces.Box(-1.0, 1.0, (ACT,), np.float32))
    rng = np.random.default_rng(0)
    obs, rewards = 2.0 * rng.standard_normal((121, OBS)), rng.standard_normal(120)

    def drive(agent, start, stop):
        actions = []
        for t in range(start, stop):
            actions.append(agent.act(obs[t]).copy())
            agent.learn(rewards[t], obs[t + 1], t % 25 == 24, t % 40 == 39)
        return np.array(actions)

    a = PPOAgent(*spaces, cfg, seed=3)
    drive(a, 0, 45)   # one update, then 13 steps into the next rollout, mid-episode
    path = save_ppo(tmp_path / "a.npz", a, {"note": 1})
    b = PPOAgent(*spaces, cfg, seed=99)   # another seed: everything comes from the file
    assert read_ppo(path, b) == {"note": 1} and b._t == 13
    np.testing.assert_array_equal(drive(a, 45, 110), drive(b, 45, 110))   # two more updates
    assert a.stats["rollouts"] == b.stats["rollouts"] == 3
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k], err_msg=k)
    other = PPOAgent(*spaces, dataclasses.replace(cfg, head_width=9), seed=3)
    before = {k: v.copy() for k, v in other.params.items()}
    with pytest.raises(CheckpointError, match="ppo.head_width: checkpoint has 8, agent has 9"):
        read_ppo(path, other)
    assert all(np.array_equal(before[k], other.params[k]) for k in before) and other._t == 0

"""Memory diagnostics against analytic answers: discounted returns, trace-conditioning schedule and true
return, cue-recall rewards and chance level."""
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from envs import CueRecall, CueRecallContinuous, TraceConditioning, discounted_returns, msre

SEED = 777


def test_discounted_returns_known_answers():
    g = 0.9
    np.testing.assert_allclose(discounted_returns([0, 0, 1], g), [g**2, g, 1.0], rtol=0, atol=1e-15)
    np.testing.assert_allclose(discounted_returns([1, 1, 1], 0.0), [1, 1, 1])
    np.testing.assert_allclose(discounted_returns([1, 0], g, bootstrap=2.0), [1 + g * g * 2.0, g * 2.0])
    # slow obvious twin: the definition as a double sum
    c = np.random.default_rng(SEED).normal(size=40)
    naive = [sum(g**k * c[t + k] for k in range(len(c) - t)) for t in range(len(c))]
    np.testing.assert_allclose(discounted_returns(c, g), naive, rtol=1e-12, atol=1e-12)
    assert msre([1.0, 2.0], [1.0, 4.0]) == 2.0
    with pytest.raises(ValueError, match="gamma"):
        discounted_returns([0.0], 1.5)
    with pytest.raises(ValueError, match="shape"):
        msre([1.0], [1.0, 2.0])


@pytest.mark.parametrize("env_id", envs.DIAGNOSTIC_IDS)
def test_check_env(env_id):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(gym.make(env_id, disable_env_checker=True), skip_render_check=True)


def run_trace(env, n):
    obs, info = env.reset(seed=SEED)
    O, R, G = [obs], [], [info["return"]]
    for _ in range(n):
        obs, r, term, trunc, info = env.step(0)
        assert not (term or trunc)
        O.append(obs)
        R.append(r)
        G.append(info["return"])
    return np.array(O), np.array(R), np.array(G)


@pytest.mark.parametrize("isi,iti,gamma", [(5, 10, 0.5), (1, 3, 0.9), (20, 80, 0.95), (7, 13, 0.0)])
def test_trace_conditioning_fixed_schedule_closed_form(isi, iti, gamma):
    env = TraceConditioning(isi=isi, iti=iti, n_distractors=3, gamma=gamma)
    O, R, G = run_trace(env, 3 * (isi + iti) + 5)
    cs, us = np.flatnonzero(O[:, 0]), np.flatnonzero(O[:, 1])
    assert cs[0] == iti  # the first CS comes after one ITI
    np.testing.assert_array_equal(np.diff(cs), isi + iti)
    np.testing.assert_array_equal(us[: len(cs)], cs[: len(us)] + isi)
    np.testing.assert_array_equal(R, O[1:, 1])  # the cumulant is the next US
    period = isi + iti
    for s in cs:  # return at a CS step: γ^(isi−1) / (1 − γ^P)
        assert G[s] == pytest.approx(gamma ** (isi - 1) / (1 - gamma**period), abs=1e-11)
    for u in us:  # the step before a US: 1 / (1 − γ^P)
        assert G[u - 1] == pytest.approx(1 / (1 - gamma**period), abs=1e-11)


def test_trace_conditioning_returns_match_realised_stream():
    gamma = 0.9
    env = gym.make("TraceConditioning-v0", gamma=gamma)
    O, R, G = run_trace(env, 2000)
    full = discounted_returns(R, gamma)
    # the realised stream is cut at 2000 steps: compare where the cut-off tail is negligible
    n = 2000 - 400
    np.testing.assert_allclose(G[:n], full[:n], rtol=0, atol=1e-11)
    cs, us = np.flatnonzero(O[:, 0]), np.flatnonzero(O[:, 1])
    isis = us[: len(cs)] - cs[: len(us)]
    assert isis.min() >= 14 and isis.max() <= 26
    itis = cs[1:] - us[: len(cs) - 1]
    assert itis.min() >= 80 and itis.max() <= 120
    d = O[:, 2:]
    assert d.shape[1] == 10 and abs(d.mean() - 0.1) < 0.02
    assert msre(G, G) == 0.0


def test_trace_conditioning_seeded_and_bad_parameters():
    a = run_trace(TraceConditioning(), 300)
    b = run_trace(TraceConditioning(), 300)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    for kwargs, name in [
        ({"isi": 0}, "isi"),
        ({"isi": (5, 3)}, "isi"),
        ({"iti": -1}, "iti"),
        ({"gamma": 1.0}, "gamma"),
        ({"n_distractors": -2}, "n_distractors"),
        ({"distractor_prob": 1.5}, "distractor_prob"),
    ]:
        with pytest.raises(ValueError, match=name):
            TraceConditioning(**kwargs)


@pytest.mark.parametrize("cls", [CueRecall, CueRecallContinuous])
@pytest.mark.parametrize("n_cues,delay", [(2, 0), (3, 4), (5, 10)])
def test_cue_recall_episode_structure_and_oracle(cls, n_cues, delay):
    env = cls(n_cues=n_cues, delay=delay)
    for ep in range(10):
        obs, info = env.reset(seed=SEED + ep)
        cue = info["cue"]
        expected = np.zeros(n_cues + 1, dtype=np.float32)
        expected[cue] = 1
        np.testing.assert_array_equal(obs, expected)
        # the oracle: remember the cue, answer at the query
        answer = cue if cls is CueRecall else np.array([env.targets[cue]], dtype=np.float32)
        total, steps = 0.0, 0
        while True:
            obs, r, term, trunc, info = env.step(answer)
            steps += 1
            total += r
            if term:
                break
            if steps <= delay:
                assert not obs.any() and not info["query"]
            else:
                assert obs[-1] == 1 and not obs[:-1].any() and info["query"]
        assert total == 1.0 and steps == delay + 2 and not trunc
        with pytest.raises(gym.error.ResetNeeded):
            env.step(answer)


@pytest.mark.parametrize("env_id", ["CueRecall-v0", "CueRecallContinuous-v0"])
def test_cue_recall_chance_level(env_id):
    env = gym.make(env_id, n_cues=4, delay=2)
    env.action_space.seed(SEED)
    rewards = []
    for ep in range(2000):
        env.reset(seed=SEED + ep)
        while True:
            _, r, term, trunc, _ = env.step(env.action_space.sample())
            if term or trunc:
                rewards.append(r)
                break
    assert env.unwrapped.chance_level == 0.25
    assert abs(np.mean(rewards) - 0.25) < 0.03


def test_cue_recall_continuous_nearest_target():
    env = CueRecallContinuous(n_cues=2, delay=0)
    for a, expected_cue in [(-0.3, 0), (0.2, 1), (5.0, 1), (-9.0, 0)]:
        _, info = env.reset(seed=SEED)
        env.step(np.array([0.0], dtype=np.float32))
        _, r, term, _, _ = env.step(np.array([a]))
        assert term and r == float(info["cue"] == expected_cue)


def test_cue_recall_bad_parameters():
    with pytest.raises(ValueError, match="n_cues"):
        CueRecall(n_cues=1)
    with pytest.raises(ValueError, match="delay"):
        gym.make("CueRecall-v0", delay=-1)
    with pytest.raises(ValueError, match="delay"):
        CueRecallContinuous(delay=2.5)
    env = CueRecall(n_cues=3)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(3)

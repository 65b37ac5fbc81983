"""DelayedCue-v0 / DelayedCueContinuous-v0: episode layout, reward and info["correct"], seeding, the
per-episode delay distribution, distractors that reveal neither the cue nor the delay at the query
(a memoryless read-out of everything at the query step is at chance, and the same read-out finds a
planted leak), and argument validation."""
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs  # noqa: F401  (registers the ids)
from envs import DelayedCue, DelayedCueContinuous, EnvConfigError

SEED = 4242
IDS = ["DelayedCue-v0", "DelayedCueContinuous-v0"]


def answer_for(env, cue):
    """The action that names ``cue`` in either version."""
    if isinstance(env.action_space, gym.spaces.Discrete):
        return cue
    return np.array([env.unwrapped.targets[cue]], dtype=np.float32)


def rollout(env, seed=None, answer=None):
    """One episode acting 0 (or the given answer at the query). Returns observations (n, d), rewards,
    infos, terminated and truncated flags of the last step."""
    obs, info = env.reset(seed=seed)
    O, R, I = [obs], [], [info]
    while True:
        a = answer if (answer is not None and info["query"]) else answer_for(env, 0)
        obs, r, term, trunc, info = env.step(a)
        O.append(obs)
        R.append(r)
        I.append(info)
        if term or trunc:
            return np.array(O), np.array(R), I, term, trunc


@pytest.mark.parametrize("env_id", IDS)
@pytest.mark.parametrize("kwargs", [{}, {"n_cues": 5, "delay": 0, "n_distractors": 0},
                                    {"delay": (2, 3), "noise_std": 0.0}, {"n_distractors": 30, "noise_std": 5.0}])
def test_check_env_non_default(env_id, kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the distractors' Box bounds are infinite, by design
        check_env(gym.make(env_id, disable_env_checker=True, **kwargs), skip_render_check=True)


@pytest.mark.parametrize("cls", [DelayedCue, DelayedCueContinuous])
@pytest.mark.parametrize("n_cues,delay,n_d", [(2, (8, 24), 8), (3, (0, 4), 2), (5, 7, 0)])
def test_episode_layout_and_oracle(cls, n_cues, delay, n_d):
    env = cls(n_cues=n_cues, delay=delay, n_distractors=n_d, noise_std=1.0)
    assert env.observation_space.shape == (n_cues + 1 + n_d,)
    for ep in range(20):
        obs, info = env.reset(seed=SEED + ep)
        cue, d = info["cue"], info["delay"]
        O, R, I, term, trunc = rollout(env, seed=SEED + ep, answer=answer_for(env, cue))
        clean = O[:, : n_cues + 1]  # cue channels and query flag
        expected = np.zeros_like(clean)
        expected[0, cue] = 1.0
        expected[d + 1, n_cues] = 1.0
        np.testing.assert_array_equal(clean, expected)
        assert len(O) == d + 3 and len(R) == d + 2  # reset obs + delay + 2 steps (the last is terminal)
        assert term and not trunc and R.sum() == 1.0 and R[-1] == 1.0
        assert [i["query"] for i in I] == [t == d + 1 for t in range(d + 3)]
        assert [i["t"] for i in I] == list(range(d + 3))
        assert all(i["correct"] is None for i in I[:-1]) and I[-1]["correct"] is True
        assert all(i["cue"] == cue and i["delay"] == d for i in I)
        if n_d:  # noise on every step, the cue and query steps included
            assert np.all(O[:, n_cues + 1:] != 0.0)
        with pytest.raises(gym.error.ResetNeeded):
            env.step(answer_for(env, cue))


@pytest.mark.parametrize("env_id", IDS)
def test_reward_and_correct_for_every_answer(env_id):
    n = 4
    env = gym.make(env_id, n_cues=n, delay=(1, 6))
    for ep in range(12):
        _, info = env.reset(seed=SEED + ep)
        for answer in range(n):
            _, R, I, term, _ = rollout(env, seed=SEED + ep, answer=answer_for(env, answer))
            assert R[-1] == float(answer == info["cue"]) and R[:-1].sum() == 0.0
            assert I[-1]["correct"] is (answer == info["cue"])


def test_actions_before_the_query_change_nothing():
    a, b = DelayedCue(n_cues=3), DelayedCue(n_cues=3)
    rng = np.random.default_rng(SEED)
    for ep in range(10):
        oa, ia = a.reset(seed=SEED + ep)
        ob, ib = b.reset(seed=SEED + ep)
        while True:
            final = ia["query"]
            ans = ia["cue"]
            oa, ra, ta, _, ia = a.step(ans if final else 0)
            ob, rb, tb, _, ib = b.step(ans if final else int(rng.integers(3)))
            np.testing.assert_array_equal(oa, ob)
            assert (ra, ta, ia["correct"]) == (rb, tb, ib["correct"])
            if ta:
                assert ra == 1.0
                break


def test_continuous_nearest_target():
    env = DelayedCueContinuous(n_cues=3, delay=0)  # targets -1, 0, 1
    for a, chosen in [(-0.6, 0), (-0.4, 1), (0.4, 1), (0.6, 2), (7.0, 2), (-7.0, 0), (-0.5, 0)]:
        _, info = env.reset(seed=SEED)
        env.step(np.array([0.0], dtype=np.float32))
        _, r, term, _, info = env.step(np.array([a]))
        assert term and r == float(info["cue"] == chosen)


@pytest.mark.parametrize("env_id", IDS)
def test_same_seed_same_episodes(env_id):
    def stream(seed, episodes=6):
        env = gym.make(env_id)
        out = []
        for ep in range(episodes):
            O, R, I, _, _ = rollout(env, seed=seed if ep == 0 else None)
            out.append((O, R, [(i["cue"], i["delay"]) for i in I]))
        return out

    a, b, c = stream(SEED), stream(SEED), stream(SEED + 1)
    for (oa, ra, ia), (ob, rb, ib) in zip(a, b):
        np.testing.assert_array_equal(oa, ob)
        np.testing.assert_array_equal(ra, rb)
        assert ia == ib
    assert any(oa.shape != oc.shape or not np.array_equal(oa, oc) for (oa, _, _), (oc, _, _) in zip(a, c))


def test_delay_and_cue_drawn_uniformly_per_episode():
    env = DelayedCue(n_cues=3, n_distractors=0)  # default delay 8..24
    env.reset(seed=SEED)
    n = 6000
    delays, cues = np.empty(n, int), np.empty(n, int)
    for ep in range(n):
        _, info = env.reset()
        delays[ep], cues[ep] = info["delay"], info["cue"]
    assert delays.min() == 8 and delays.max() == 24
    counts = np.bincount(delays - 8, minlength=17)
    assert len(counts) == 17
    # each count ~ Binomial(n, 1/17): 352.9 ± 18.3; 5 standard deviations
    assert np.all(np.abs(counts - n / 17) < 5 * np.sqrt(n / 17 * 16 / 17)), counts
    assert np.all(np.abs(np.bincount(cues, minlength=3) - n / 3) < 5 * np.sqrt(n * 2 / 9))
    assert np.abs(np.corrcoef(delays, cues)[0, 1]) < 0.05  # drawn independently
    fixed = DelayedCue(delay=11)
    assert {fixed.reset(seed=s)[1]["delay"] for s in range(20)} == {11}


def query_steps(env, n, seed):
    """Features of everything a memoryless agent sees at the query step (observation and t) over n
    episodes, with the cue and delay of each."""
    env.reset(seed=seed)
    X, cues, delays = [], np.empty(n, int), np.empty(n, int)
    for ep in range(n):
        obs, info = env.reset()
        while not info["query"]:
            obs, _, _, _, info = env.step(0)
        X.append(np.concatenate([obs, [info["t"]]]))
        cues[ep], delays[ep] = info["cue"], info["delay"]
    return np.array(X, dtype=np.float64), cues, delays


def quadratic_readout(X_train, y_train, X_test):
    """Least-squares read-out on [1, x, x²] (fit on train, predict test)."""
    def feats(X):
        return np.hstack([np.ones((len(X), 1)), X, X**2])

    w, *_ = np.linalg.lstsq(feats(X_train), y_train, rcond=None)
    return feats(X_test) @ w


def test_query_step_reveals_neither_cue_nor_delay():
    n_d = 8
    env = DelayedCue(n_cues=2, n_distractors=n_d, noise_std=1.0)
    X, cues, delays = query_steps(env, 8000, SEED)
    clean = X[:, :3]  # cue channels and query flag: identical at every query
    np.testing.assert_array_equal(clean, np.tile([0.0, 0.0, 1.0], (len(X), 1)))
    half = len(X) // 2

    def cue_accuracy(X):
        pred = quadratic_readout(X[:half], cues[:half].astype(float), X[half:]) > 0.5
        return np.mean(pred == cues[half:])

    def delay_r2(X):
        pred = quadratic_readout(X[:half], delays[:half].astype(float), X[half:])
        return 1.0 - np.mean((pred - delays[half:]) ** 2) / np.var(delays[half:])

    acc, r2 = cue_accuracy(X), delay_r2(X[:, :-1])  # the delay read-out without t (t = delay + 1)
    # chance: accuracy ~ 0.5 ± 0.008 (4000 test episodes); 0.03 is ~4 standard deviations
    assert abs(acc - 0.5) < 0.03, acc
    assert r2 < 0.01, r2
    # the same read-outs find a small planted leak, so the checks above can fail
    leaky = X.copy()
    leaky[:, 3] += 0.2 * cues
    assert cue_accuracy(leaky) > 0.53
    leaky = X[:, :-1].copy()
    leaky[:, 4] += 0.05 * delays
    assert delay_r2(leaky) > 0.05


def test_memoryless_policies_at_chance():
    env = DelayedCue(n_cues=2, n_distractors=4)
    X, cues, _ = query_steps(env, 6000, SEED + 1)
    policies = {  # deterministic functions of the query observation
        "always 0": np.zeros(len(X), int),
        "sign of distractor 0": (X[:, 3] > 0).astype(int),
        "argmax of distractors 0, 1": np.argmax(X[:, 3:5], axis=1),
        "|distractor sum| > 2": (np.abs(X[:, 3:7].sum(axis=1)) > 2).astype(int),
    }
    for name, actions in policies.items():
        # chance 0.5, standard deviation of the mean 0.0065: 0.03 is ~4.6 standard deviations
        assert abs(np.mean(actions == cues) - env.chance_level) < 0.03, name


@pytest.mark.parametrize("env_id", IDS)
def test_random_actions_at_chance(env_id):
    env = gym.make(env_id, n_cues=4, delay=(0, 3))
    env.action_space.seed(SEED)
    env.reset(seed=SEED)
    rewards = []
    for _ in range(3000):
        env.reset()
        while True:
            _, r, term, trunc, _ = env.step(env.action_space.sample())
            if term or trunc:
                rewards.append(r)
                break
    assert env.unwrapped.chance_level == 0.25
    assert abs(np.mean(rewards) - 0.25) < 0.035  # sd of the mean 0.0079


def test_distractor_statistics_and_noise_off():
    env = DelayedCue(n_distractors=6, noise_std=2.5, delay=(8, 8))
    O = np.concatenate([rollout(env, seed=SEED + ep)[0][:, 3:] for ep in range(300)])
    assert O.shape == (300 * 11, 6)
    assert abs(O.mean()) < 0.06 and abs(O.std() - 2.5) < 0.05  # 19,800 draws: sd of mean 0.018
    quiet = DelayedCue(n_distractors=6, noise_std=0.0)
    assert not rollout(quiet, seed=SEED)[0][:, 3:].any()


@pytest.mark.parametrize("kwargs, name, found", [
    ({"n_cues": 1}, "n_cues", "found 1"),
    ({"n_cues": 2.0}, "n_cues", "found 2.0 of type float"),
    ({"delay": -1}, "delay", "found -1"),
    ({"delay": (5, 3)}, "delay", "found (5, 3)"),
    ({"delay": (1, 2, 3)}, "delay", "found (1, 2, 3)"),
    ({"delay": (0, 2.5)}, r"delay\[1\]", "found 2.5"),
    ({"delay": "8..24"}, "delay", "found '8..24'"),
    ({"n_distractors": -1}, "n_distractors", "found -1"),
    ({"n_distractors": True}, "n_distractors", "found True"),
    ({"noise_std": -0.1}, "noise_std", "found -0.1"),
    ({"noise_std": float("inf")}, "noise_std", "found inf"),
    ({"noise_std": "1"}, "noise_std", "found '1'"),
    ({"render_mode": "human"}, "render_mode", "got 'human'"),
])
@pytest.mark.parametrize("cls", [DelayedCue, DelayedCueContinuous])
def test_bad_arguments_name_argument_expected_and_found(cls, kwargs, name, found):
    with pytest.raises(EnvConfigError, match=name) as err:
        cls(**kwargs)
    message = str(err.value)   # envs.errors' validators say "expected ..., found ..."; the env's own checks "must be"
    assert found in message and ("expected" if found.startswith("found") else "must be") in message


def test_bad_actions():
    env = DelayedCue(n_cues=3)
    env.reset(seed=SEED)
    for bad in [3, -1, 0.5, np.array([0, 1]), np.array(1.0), True, "0"]:
        with pytest.raises(EnvConfigError, match=r"action must be an integer in \[0, 3\)"):
            env.step(bad)
    env.step(np.array([2]))  # a one-element integer array is accepted
    cont = DelayedCueContinuous()
    cont.reset(seed=SEED)
    for bad in [np.array([np.nan]), np.array([0.1, 0.2])]:
        with pytest.raises(EnvConfigError, match="action must be one finite number"):
            cont.step(bad)

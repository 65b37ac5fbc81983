"""POPGym ids: registered without popgym; a clear ImportError when popgym is missing; when it is installed,
check_env and the one-hot observation."""
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs


def test_ids_registered_without_popgym():
    for env_id in envs.POPGYM_IDS:
        assert env_id in gym.registry


def test_missing_popgym_gives_clear_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "popgym", None)  # makes `import popgym...` raise ImportError
    monkeypatch.setitem(sys.modules, "popgym.envs", None)
    with pytest.raises(ImportError, match="pip install popgym"):
        gym.make("POPGym-RepeatFirstEasy-v0")


def test_bad_task():
    with pytest.raises(ValueError, match="task"):
        envs.make_popgym("RepeatFirstHard")


@pytest.mark.parametrize("env_id", envs.POPGYM_IDS)
def test_popgym_check_env_and_rollout(env_id):
    pytest.importorskip("popgym")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(gym.make(env_id, disable_env_checker=True), skip_render_check=True)
    env = gym.make(env_id)
    env.action_space.seed(3)
    obs, _ = env.reset(seed=3)
    for _ in range(100):
        assert obs in env.observation_space and obs.dtype == np.float32
        obs, r, term, trunc, _ = env.step(env.action_space.sample())
        if term or trunc:
            obs, _ = env.reset()

"""A gymnasium task checked before a run writes anything: it can be made with its keyword arguments, its
spaces are ones the agent takes (a 1-D Box observation; a 1-D Box or Discrete action) and it resets.

Every failure is a ConfigError naming the key (``env_id``, ``env_kwargs`` or, for a list of ids,
``env_ids[i]``), what was expected and what was found.
"""
from controller.config import ConfigError


def make_env(env_id, env_kwargs, key="env_id"):
    """gymnasium.make(env_id, **env_kwargs) with this package's ids registered; ConfigError when it
    fails (unknown id, missing dependency, bad keyword arguments)."""
    import gymnasium as gym

    import envs  # noqa: F401  (registers the ids)
    try:
        return gym.make(env_id, **env_kwargs)
    except Exception as err:  # gymnasium raises several types for unknown ids / bad kwargs
        raise ConfigError(f"{key} / env_kwargs: cannot make {env_id!r} with {env_kwargs}: "
                          f"{type(err).__name__}: {err}") from None


def check_spaces(env, env_id, key="env_id"):
    """ConfigError unless the env's spaces are ones controller.agent.Agent takes."""
    from gymnasium import spaces

    obs, act = env.observation_space, env.action_space
    obs_ok = isinstance(obs, spaces.Box) and len(obs.shape) == 1
    act_ok = isinstance(act, spaces.Discrete) or (isinstance(act, spaces.Box) and len(act.shape) == 1)
    if not (obs_ok and act_ok):
        raise ConfigError(f"{key}: expected an env with a 1-D Box observation and a 1-D Box or Discrete "
                          f"action, found {env_id!r} with observation {obs} and action {act}")


def first_reset(env, env_id, env_kwargs, seed, key="env_id"):
    """env.reset(seed=seed) -> (obs, info); ConfigError when the env cannot reset (e.g. a render mode
    whose dependency is missing)."""
    try:
        return env.reset(seed=seed)
    except Exception as err:  # the env's own code: any type
        raise ConfigError(f"{key} / env_kwargs: {env_id!r} with {env_kwargs} cannot reset: "
                          f"{type(err).__name__}: {err}") from None


def check_env(env_id, env_kwargs, seed=0, key="env_id"):
    """Make, check and reset one env, then close it (ConfigError naming key on any failure)."""
    env = make_env(env_id, env_kwargs, key)
    try:
        check_spaces(env, env_id, key)
        first_reset(env, env_id, env_kwargs, seed, key)
    finally:
        env.close()

"""The registered ids of robots whose dynamics change during a run (:mod:`envs.nonstationary`).

| id | base, observation | changes | every |
|---|---|---|---|
| ``SlipperyAnt-v5``, ``SlipperyAnt-P-v5`` | Ant-v5 (no contact forces), full / positions | friction × [0.02, 2] (log-uniform) | 2M steps |
| ``ChangingHalfCheetah-v5``, ``ChangingHalfCheetah-P-v5`` | HalfCheetah-v5, full / positions | friction × [0.4, 1.6], payload [0, 0.25] of the mass, motor gear × [0.7, 1] | 250k steps |

Every schedule value is a keyword of ``gymnasium.make`` (``train --set env_kwargs.every=50000``,
``env_kwargs.first_segment=3``, ``env_kwargs.schedule_seed=7``), as are the base env's own keywords.
"""
import gymnasium as gym

from envs.nonstationary import PARAMETERS, ChangingDynamics

SCHEDULES = {  # name -> (base id, schedule keywords)
    "SlipperyAnt": ("Ant-v5", {"every": 2_000_000, "friction": (0.02, 2.0)}),
    "ChangingHalfCheetah": ("HalfCheetah-v5", {"every": 250_000, "friction": (0.4, 1.6),
                                               "payload": (0.0, 0.25), "motor": (0.7, 1.0)}),
}
_BASE_OPTIONS = {"Ant-v5": {"include_cfrc_ext_in_observation": False}}
_SCHEDULE_KEYS = ("every", "schedule_seed", "first_segment") + PARAMETERS

NONSTATIONARY_IDS = tuple(f"{name}{keep}-v5" for name in SCHEDULES for keep in ("", "-P"))


def make_changing(base_id, keep, **kwargs):
    """The base env (keyword arguments: its own plus the schedule's) with ChangingDynamics inside the
    mask ``keep`` ("P", "V") or, for keep "full", as the outer wrapper."""
    schedule = {k: kwargs.pop(k) for k in _SCHEDULE_KEYS if k in kwargs}

    def inner(env):
        return ChangingDynamics(env, **schedule)
    if keep == "full":
        spec = gym.spec(base_id)
        from gymnasium.envs.registration import load_env_creator
        return inner(load_env_creator(spec.entry_point)(**{**spec.kwargs, **kwargs}))
    from envs.masked import make_masked
    return make_masked(base_id, keep, inner=inner, **kwargs)


def register_nonstationary_envs():
    """Register every id of NONSTATIONARY_IDS (idempotent)."""
    for name, (base_id, schedule) in SCHEDULES.items():
        base = gym.spec(base_id)
        for keep in ("full", "P"):
            env_id = f"{name}-v5" if keep == "full" else f"{name}-{keep}-v5"
            existing = gym.registry.get(env_id)
            if existing is not None and existing.entry_point == f"{__name__}:make_changing":
                continue
            gym.register(id=env_id, entry_point=f"{__name__}:make_changing",
                         max_episode_steps=base.max_episode_steps,
                         kwargs={"base_id": base_id, "keep": keep, **_BASE_OPTIONS.get(base_id, {}),
                                 **schedule})
    return NONSTATIONARY_IDS

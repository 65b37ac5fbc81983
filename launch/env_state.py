"""A gymnasium env's state as arrays and JSON-able metadata, so that a resumed run continues the episode.

* MuJoCo envs ("mujoco"): ``mj_getState(..., mjSTATE_INTEGRATION)`` plus the body kinematics env code
  reads before the next ``mj_step``;
* classic control ("classic"): ``env.unwrapped.state`` and its episode scalars;
* both: the env's ``np_random`` bit-generator state and ``TimeLimit``'s elapsed steps;
* anything else, or any wrapper that keeps state of its own (frame stack, delay, noise), is "restart":
  only ``np_random`` is restored and the caller restarts the episode;
* a wrapper with ``checkpoint_state()`` / ``restore_checkpoint_state(state)`` (JSON-able counters, e.g.
  ``envs.nonstationary.ChangingDynamics``'s schedule) keeps its own state that way, restored first.
"""
import numpy as np

from launch.train_config import TrainError

# wrappers that keep no state of their own between steps (beyond what is restored here)
_STATELESS_WRAPPERS = ("TimeLimit", "OrderEnforcing", "PassiveEnvChecker", "MaskObservation",
                       "FreshBodyOffset", "ClipAction", "RescaleAction", "RecordConstructorArgs")
# MuJoCo derived quantities that env code reads before the next mj_step (e.g. Ant's get_body_com)
_MJ_DERIVED = ("xpos", "xquat", "xmat", "xipos", "ximat", "subtree_com", "cfrc_ext")
_CLASSIC_SCALARS = ("steps_beyond_terminated", "last_u")


def _wrapper_chain(env):
    chain = []
    while hasattr(env, "env"):
        chain.append(env)
        env = env.env
    return chain


def _time_limit(env):
    for w in _wrapper_chain(env):
        if type(w).__name__ == "TimeLimit":
            return w
    return None


def _saves_itself(wrapper):
    return hasattr(type(wrapper), "checkpoint_state") and hasattr(type(wrapper), "restore_checkpoint_state")


def env_state_kind(env):
    """How this env's state is checkpointed: "mujoco", "classic" or "restart" (episode restarts)."""
    if any(type(w).__name__ not in _STATELESS_WRAPPERS and not _saves_itself(w) for w in _wrapper_chain(env)):
        return "restart"
    u = env.unwrapped
    if hasattr(u, "model") and hasattr(u, "data") and type(u.data).__name__ == "MjData":
        return "mujoco"
    if type(u).__module__.startswith("gymnasium.envs.classic_control") and hasattr(u, "state"):
        return "classic"
    return "restart"


def capture_env_state(env):
    """(arrays, meta) of the env's current state, the env untouched. arrays: copies, "env.mj_state"
    (float64, (mj_stateSize,)) and "env.mj_<name>" (MuJoCo) or "env.state" (classic control); meta
    (JSON-able): kind, np_random, elapsed_steps and, for classic control, scalars."""
    u = env.unwrapped
    kind = env_state_kind(env)
    meta = {"kind": kind, "np_random": u.np_random.bit_generator.state}
    tl = _time_limit(env)
    meta["elapsed_steps"] = None if tl is None else tl._elapsed_steps
    meta["wrappers"] = {type(w).__name__: w.checkpoint_state() for w in _wrapper_chain(env) if _saves_itself(w)}
    arrays = {}
    if kind == "mujoco":
        import mujoco
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        state = np.empty(mujoco.mj_stateSize(u.model, spec), np.float64)
        mujoco.mj_getState(u.model, u.data, state, spec)
        arrays["env.mj_state"] = state
        for name in _MJ_DERIVED:
            arrays[f"env.mj_{name}"] = np.array(getattr(u.data, name), copy=True)
    elif kind == "classic":
        arrays["env.state"] = np.array(u.state, copy=True)
        meta["scalars"] = {k: getattr(u, k) for k in _CLASSIC_SCALARS if hasattr(u, k)}
        for k, v in list(meta["scalars"].items()):
            if v is not None:
                meta["scalars"][k] = v.item() if isinstance(v, np.generic) else v
    return arrays, meta


def restore_env_state(env, arrays, meta, where):
    """Put a freshly reset env back, in place, into the state ``capture_env_state`` gave (arrays, meta).
    Returns True when the episode continues exactly, False when the kind is "restart" (or differs from
    this env's: then only np_random is restored and the caller restarts the episode). Raises TrainError
    naming ``where`` (e.g. the checkpoint's path) on a mismatch."""
    u = env.unwrapped
    try:
        u.np_random.bit_generator.state = meta["np_random"]
    except (KeyError, TypeError, ValueError) as err:
        raise TrainError(f"{where}: env np_random state cannot be restored ({err})") from None
    saved = meta.get("wrappers") or {}
    for w in _wrapper_chain(env):   # first: a model change may use the simulator's data as scratch
        if _saves_itself(w):
            name = type(w).__name__
            if name not in saved:
                raise TrainError(f"{where}: no saved state for the env's {name} wrapper")
            w.restore_checkpoint_state(saved[name])
    kind = meta.get("kind")
    if kind != env_state_kind(env) or kind == "restart":
        return False
    tl = _time_limit(env)
    if tl is not None:
        tl._elapsed_steps = meta.get("elapsed_steps")
    if kind == "mujoco":
        import mujoco
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        state = arrays.get("env.mj_state")
        if state is None or state.shape != (mujoco.mj_stateSize(u.model, spec),):
            raise TrainError(f"{where}: MuJoCo state has shape {None if state is None else state.shape}, "
                             f"this env's is ({mujoco.mj_stateSize(u.model, spec)},)")
        mujoco.mj_setState(u.model, u.data, state, spec)
        for name in _MJ_DERIVED:
            src = arrays.get(f"env.mj_{name}")
            if src is not None and src.shape == getattr(u.data, name).shape:
                getattr(u.data, name)[...] = src
    else:
        state = arrays.get("env.state")
        if state is None:
            raise TrainError(f"{where}: classic-control env state missing")
        u.state = np.array(state, copy=True)
        for k, v in meta.get("scalars", {}).items():
            setattr(u, k, v)
    return True

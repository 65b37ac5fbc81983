"""Checkpoints of the whole agent (``controller.agent.Agent``) in ``controller.checkpoint``'s format:
``save_agent`` / ``load_agent``, and ``agent_arrays`` / ``agent_meta``, what they store."""
import dataclasses

import numpy as np

from controller.agent_config import LAM_GROUPS, AgentConfig
from controller.checkpoint import CheckpointError, check_arrays, copy_arrays, load_arrays, save_arrays
from controller.episode import CHECKPOINT_FLAGS

# the episode flags (controller.episode), and whether the one-time non-finite warning was given
_FLAGS = tuple(CHECKPOINT_FLAGS) + ("_warned",)
_SCALARS = ("_value", "_reward_trace", "_sign", "_noise_pos", "_rs_count",
            "_rs_mean", "_rs_m2")
# AgentConfig fields added after checkpoints existed, each with a default that reproduces the agent from
# before it: a checkpoint without them holds an agent with those defaults
_LATER_FIELDS = LAM_GROUPS + ("rtu_r_min", "rtu_r_max", "rtu_max_phase", "input_skip")


def agent_arrays(agent):
    """Every array that defines the agent's learning state (views, not copies): both networks'
    parameters, gradients, eligibility traces, activations, cell states and RTRL traces, the normaliser
    and reward-scaling statistics, the last normalised observations, the pre-drawn noise and the action."""
    agent.sync()
    out = {}
    for name, net in (("actor", agent.actor), ("critic", agent.critic)):
        for key, arr in net.arrays().items():
            out[f"{name}.{key}"] = arr
        out[f"{name}.G"] = net.G
        if net.cell is not None:
            out[f"{name}.cell_dx"] = net.cell.dx
    out.update({"obs_stats": agent._obs_stats, "x": agent._x,
                "x_next": agent._x_next, "noise": agent._noise, "action": agent.action})
    return out


def agent_meta(agent):
    """JSON-serialisable rest of the state: configuration and spaces (checked on load), episode flags,
    scalars, counters and the RNG state."""
    return {"config": dataclasses.asdict(agent.config), "seed": agent.seed, "n_obs": agent.n_obs,
            "n_actions": agent.n_actions, "discrete": agent.discrete,
            "flags": {**agent._episode.as_checkpoint(), "_warned": bool(agent._warned)},
            "scalars": {k: float(getattr(agent, k)) for k in _SCALARS},
            "stats": dict(agent.stats), "rng": agent.rng.bit_generator.state}


def save_agent(path, agent, extra_meta=None):
    """Atomically write the complete learner state (controller.checkpoint format); returns the path."""
    meta = agent_meta(agent)
    if extra_meta:
        meta["extra"] = extra_meta
    return save_arrays(path, {k: np.array(v, copy=True) for k, v in agent_arrays(agent).items()}, meta)


def saved_config(meta):
    """The AgentConfig fields (dict) a checkpoint's metadata records, fields added after it was written
    filled with the defaults that reproduce its agent."""
    defaults = dataclasses.asdict(AgentConfig())
    return {**{k: defaults[k] for k in _LATER_FIELDS}, **meta["config"]}


def _difference(key, saved, current):
    """'key: checkpoint has ..., agent has ...', for a configuration only the fields that differ."""
    if isinstance(saved, dict) and isinstance(current, dict):
        missing = "<missing>"
        names = sorted(k for k in saved.keys() | current.keys() if saved.get(k, missing) != current.get(k, missing))
        saved = ", ".join(f"{k}={saved.get(k, missing)!r}" for k in names)
        current = ", ".join(f"{k}={current.get(k, missing)!r}" for k in names)
        return f"{key}: checkpoint has {saved}, agent has {current}"
    return f"{key}: checkpoint has {saved!r}, agent has {current!r}"


def load_agent(path, agent):
    """Restore a checkpoint written by save_agent into an agent built with the same configuration and
    spaces, in place, so that its next actions and updates are bit-identical to the saved agent's.
    Raises ``controller.checkpoint.CheckpointError`` naming the file and the mismatch; on error the
    agent is left untouched. Returns the saved ``extra_meta`` (or {})."""
    arrays, meta = load_arrays(path)
    agent.sync()
    expected = agent_meta(agent)
    if isinstance(meta.get("config"), dict):
        meta["config"] = saved_config(meta)
    diffs = [_difference(k, meta.get(k), expected[k])
             for k in ("config", "n_obs", "n_actions", "discrete") if meta.get(k) != expected[k]]
    if diffs:
        raise CheckpointError(f"{path}: does not match this agent ({'; '.join(diffs)})")
    targets = agent_arrays(agent)
    # checkpoints older than the recorded trace norms: recomputed from the traces after the copy
    derived = [name for name in ("actor.zl1", "critic.zl1") if name not in arrays]
    for name in derived:
        del targets[name]
    check_arrays(path, arrays, targets)
    try:
        flags, scalars, stats = meta["flags"], meta["scalars"], meta["stats"]
        rng_state = meta["rng"]
        missing = [k for k in _FLAGS if k not in flags] + [k for k in _SCALARS if k not in scalars]
    except (KeyError, TypeError) as err:
        raise CheckpointError(f"{path}: agent metadata incomplete ({err})") from None
    if missing:
        raise CheckpointError(f"{path}: agent metadata lacks {missing}")
    copy_arrays(arrays, targets)
    for name in derived:
        net = agent.actor if name.startswith("actor.") else agent.critic
        net.zl1[:] = net.trace_norms()
    agent._episode.load_checkpoint(flags)
    agent._warned = bool(flags["_warned"])
    for k in _SCALARS:
        setattr(agent, k, int(scalars[k]) if k == "_noise_pos" else float(scalars[k]))
    agent.stats.clear()
    agent.stats.update(stats)
    agent.rng.bit_generator.state = rng_state
    return meta.get("extra", {})

"""Checkpoints of the PPO learner (``controller.ppo.PPOAgent``) in ``controller.checkpoint``'s format:
``ppo_arrays`` / ``ppo_meta`` (what is stored), ``load_ppo`` (restore in place), ``save_ppo``.

Stored, so that a restored agent's next actions and updates are bit-identical to the saved one's:

* every parameter (the RTU's as the cell's packed arrays ``cell.vec`` / ``cell.mat``, which also hold its
  state c, cached coefficients and RTRL traces: the episode continues exactly), Adam's moments and
  step count;
* the observation normaliser's and the reward scaler's statistics (count, mean, var; the running return);
* the bit-generator states of both RNGs (policy noise, minibatch shuffle), the rollout's pre-drawn noise
  (T, a), the policy's std and log-prob constant;
* the rollout position t and the FILLED part of the rollout, steps 0..t-1 (float32 at paper size ≈ 103 KB
  per step with an RTU, so up to ≈ 211 MB just before an update; empty at a rollout boundary);
* counters and the last update's statistics.

The metadata records ``learner: "ppo"`` and the ``PPOConfig`` under ``ppo_config`` (not ``config``, the
streaming agent's key, so that readers of streaming checkpoints do not take it for one). A checkpoint of
another learner, configuration or size is a ``CheckpointError`` naming what differs; on any error the
agent is left untouched.
"""
import dataclasses

import numpy as np

from controller.checkpoint import CheckpointError, check_arrays, copy_arrays, load_arrays, save_arrays

LEARNER = "ppo"
# rollout arrays written step by step while acting: stored up to the position
_FILLED = ("obs", "x", "c_prev", "trace_vec", "trace_mat", "actions", "logp", "values", "rewards", "boot",
           "terminated", "done")
_SCALARS = ("adam_steps", "episode_return", "logp_const", "obs_count", "reward_count", "reward_mean",
            "reward_var", "reward_ret")


def learner_kind(meta):
    """The learner a checkpoint's metadata holds: "ppo", or "streaming" (``controller.agent``'s
    checkpoints, which do not record it)."""
    return str(meta.get("learner", "streaming"))


def _arrays(agent, position):
    """The stored arrays by name (views), the rollout's cut to its first ``position`` steps."""
    cell, ro = agent.cell, agent.rollout
    out = {f"param.{k}": v for k, v in agent.params.items() if cell is None or k not in cell.params}
    if cell is not None:
        out.update({"cell.vec": cell.vec, "cell.mat": cell.mat, "cell.dx": cell.dx})
    for k in agent.params:
        out[f"adam_m.{k}"], out[f"adam_v.{k}"] = agent._m[k], agent._v[k]
    out["obs_norm.mean"], out["obs_norm.var"] = agent._obs_norm.mean, agent._obs_norm.var
    out["std"], out["rollout.noise"] = agent._std, ro.noise
    for name in _FILLED:
        out[f"rollout.{name}"] = getattr(ro, name)[:position]
    return out


def ppo_arrays(agent):
    """Every array of the agent's learning state by name (views, not copies): parameters, cell, Adam
    moments, normaliser statistics, std, the rollout's noise (T, a) and its filled steps (t, ...)."""
    return _arrays(agent, agent._t)


def learned_arrays(agent):
    """The arrays that hold learned state and must stay finite (views): ``ppo_arrays`` without the
    rollout (inputs and draws)."""
    return {k: v for k, v in _arrays(agent, 0).items() if not k.startswith("rollout.")}


def ppo_meta(agent):
    """JSON-serialisable rest of the state: learner kind, configuration and sizes (checked on load),
    rollout position, scalars, counters and the RNG states."""
    rs = agent._reward_scale
    scalars = (agent._adam_steps, agent._episode_return, agent._logp_const, agent._obs_norm.count,
               rs.count, rs.mean, rs.var, rs.ret)
    return {"learner": LEARNER, "ppo_config": dataclasses.asdict(agent.config), "seed": agent.seed,
            "n_obs": agent.n_obs, "n_actions": agent.n_actions, "position": agent._t,
            "pending": agent._pending, "scalars": dict(zip(_SCALARS, scalars)), "stats": dict(agent.stats),
            "rng": {"noise": agent._noise_rng.bit_generator.state,
                    "shuffle": agent._shuffle_rng.bit_generator.state}}


def save_ppo(path, agent, extra_meta=None):
    """Atomically write the complete learner state (copies of ``ppo_arrays``, ``ppo_meta``); the path."""
    meta = ppo_meta(agent)
    if extra_meta:
        meta["extra"] = extra_meta
    return save_arrays(path, {k: np.array(v, copy=True) for k, v in ppo_arrays(agent).items()}, meta)


def _differences(meta, agent):
    """'key: checkpoint has ..., agent has ...' for the configuration fields and sizes that differ."""
    expected, missing = ppo_meta(agent), "<missing>"
    saved, current = meta.get("ppo_config"), expected["ppo_config"]
    if not isinstance(saved, dict):
        return [f"ppo_config: checkpoint has {saved!r}"]
    names = sorted(k for k in saved.keys() | current.keys() if saved.get(k, missing) != current.get(k, missing))
    diffs = [f"ppo.{k}: checkpoint has {saved.get(k, missing)!r}, agent has {current.get(k, missing)!r}"
             for k in names]
    return diffs + [f"{k}: checkpoint has {meta.get(k)!r}, agent has {expected[k]!r}"
                    for k in ("n_obs", "n_actions") if meta.get(k) != expected[k]]


def load_ppo(arrays, meta, agent, where="checkpoint"):
    """Restore ``(arrays, meta)`` (``controller.checkpoint.load_arrays``) into an agent built with the same
    configuration and spaces, in place. ``where`` names the source in errors. Returns the saved
    ``extra`` metadata (or {}). CheckpointError, the agent untouched, on another learner or a mismatch."""
    kind = learner_kind(meta)
    if kind != LEARNER:
        raise CheckpointError(f"{where}: holds a {kind} learner, not a {LEARNER} one")
    diffs = _differences(meta, agent)
    if diffs:
        raise CheckpointError(f"{where}: does not match this ppo learner ({'; '.join(diffs)})")
    try:
        position, pending = int(meta["position"]), bool(meta["pending"])
        scalars = [meta["scalars"][k] for k in _SCALARS]
        stats, rng = dict(meta["stats"]), meta["rng"]
        states = rng["noise"], rng["shuffle"]
        for state in states:   # checked before anything is written
            np.random.default_rng().bit_generator.state = state
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{where}: ppo metadata incomplete ({type(err).__name__}: {err})") from None
    if not 0 <= position < agent.rollout.steps:
        raise CheckpointError(f"{where}: rollout position {position}, expected 0..{agent.rollout.steps - 1}")
    targets = _arrays(agent, position)
    check_arrays(where, arrays, targets)
    copy_arrays(arrays, targets)
    agent._t, agent._pending = position, pending
    rs = agent._reward_scale
    (agent._adam_steps, agent._episode_return, agent._logp_const, agent._obs_norm.count,
     rs.count, rs.mean, rs.var, rs.ret) = scalars
    agent._adam_steps = int(agent._adam_steps)
    agent.stats.clear()
    agent.stats.update(stats)
    agent._noise_rng.bit_generator.state, agent._shuffle_rng.bit_generator.state = states
    return meta.get("extra", {})


def read_ppo(path, agent):
    """``load_ppo`` from a checkpoint file (``CheckpointError`` naming it); returns its ``extra``."""
    arrays, meta = load_arrays(path)
    return load_ppo(arrays, meta, agent, str(path))

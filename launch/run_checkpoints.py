"""The checkpoints of a training run's folder: ``checkpoints/ckpt-<step>.npz``, the newest ``keep`` kept.

One checkpoint is one atomic, checksummed file (``controller.checkpoint``) holding the complete learner
(the arrays and metadata of its kind, ``launch.learners``: ``controller.agent``'s or
``controller.ppo_checkpoint``'s) and the run's own arrays and metadata (``meta["extra"]["run"]``:
counters, histograms, the env's state). Resuming takes the newest checkpoint that loads and matches; a
divergence guard rolls the learner back to the newest one that loads. ``agent`` below is a learner of
``launch.learners`` or an agent it wraps.
"""
from pathlib import Path

import numpy as np

from launch import results as R
from launch.train_config import TrainError


def _checkpoint_step(path):
    try:
        return int(path.stem.split("-")[1])
    except (IndexError, ValueError):
        return -1


def list_checkpoints(run_dir):
    """Checkpoint paths of a run folder, newest (highest step) first."""
    d = Path(run_dir) / R.CHECKPOINTS
    if not d.is_dir():
        return []
    return sorted((p for p in d.glob("ckpt-*.npz") if _checkpoint_step(p) >= 0), key=_checkpoint_step,
                  reverse=True)


def learner_finite(agent):
    """True when every parameter, trace and statistic array of the learner is finite."""
    from launch.learners import learner_of
    return learner_of(agent).finite()


def write_checkpoint(run_dir, step, agent, run_arrays, run_meta, keep):
    """Write ``checkpoints/ckpt-<step>.npz`` (10-digit step) atomically: copies of the learner's arrays
    plus ``run_arrays`` (name -> np.ndarray), the learner's metadata with ``run_meta`` (JSON-able) as
    ``extra["run"]``; then delete all but the newest ``keep``. Returns the path."""
    from controller.checkpoint import save_arrays
    from launch.learners import learner_of

    learner = learner_of(agent)
    arrays = {k: np.array(v, copy=True) for k, v in learner.arrays().items()}
    arrays.update(run_arrays)
    meta = learner.meta()
    meta["extra"] = {"run": run_meta}
    path = Path(run_dir) / R.CHECKPOINTS / f"ckpt-{step:010d}.npz"
    save_arrays(path, arrays, meta)
    for old in list_checkpoints(run_dir)[keep:]:
        old.unlink(missing_ok=True)
    return path


def load_newest_valid(run_dir, agent, env_id, env_kwargs, warn):
    """Load the learner, in place, from the newest checkpoint that passes its checks and was written
    for ``env_id`` / ``env_kwargs``; those skipped are reported through ``warn(line)`` and renamed
    ``*.npz.bad``. Returns (path, run_meta, arrays, number skipped). TrainError when none is valid
    (then nothing is renamed)."""
    from controller.checkpoint import CheckpointError, load_arrays
    from launch.learners import learner_of

    learner = learner_of(agent)
    run_dir = Path(run_dir)
    paths = list_checkpoints(run_dir)
    if not paths:
        raise TrainError(f"--resume {run_dir}: no checkpoints in {run_dir / R.CHECKPOINTS}")
    errors, skipped = [], []
    for path in paths:
        try:
            arrays, meta = load_arrays(path)
            run = learner.load(path, arrays, meta)["run"]
            if run.get("env_id") != env_id or run.get("env_kwargs") != env_kwargs:
                raise CheckpointError(f"{path}: written for env {run.get('env_id')!r} "
                                      f"{run.get('env_kwargs')}, this run has {env_id!r} {env_kwargs}")
            break
        except (CheckpointError, KeyError, TypeError) as err:
            errors.append(str(err))
            skipped.append(path)
            warn(f"warning: skipping checkpoint {path.name}: {err}")
    else:
        raise TrainError(f"--resume {run_dir}: no valid checkpoint; " + " | ".join(errors))
    for bad in skipped:  # set aside (kept for inspection) so that no later load tries them again
        bad.replace(bad.with_name(bad.name + ".bad"))
    return path, run, arrays, len(skipped)


def roll_back_learner(run_dir, agent, newest_good, warn):
    """Load the learner, in place, from ``newest_good`` (a path, or None) or else the newest checkpoint
    of the folder that loads; each one that does not is reported through ``warn(line)``. Returns the
    path used, None if none loads."""
    from controller.checkpoint import CheckpointError, load_arrays
    from launch.learners import learner_of

    learner = learner_of(agent)
    candidates = ([newest_good] if newest_good is not None else []) + list_checkpoints(run_dir)
    for path in candidates:
        try:
            learner.load(path, *load_arrays(path))
            return path
        except CheckpointError as err:
            warn(f"warning: rollback cannot use {path.name}: {err}")
    return None

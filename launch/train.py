"""`rtu-control train`: online learning in simulation, one transition at a time, crash-safe.

One run = one gymnasium env id, one streaming agent (``controller.agent.Agent``), one seed. Each control
tick: ``act`` (forward only), ``env.step``, ``learn`` (gymnasium order), timed with
``time.perf_counter_ns`` into preallocated log-bin histograms. ``pace: lockstep`` (default) runs as fast
as possible; ``pace: realtime`` sleeps to a fixed period per tick (``rate_hz``, or the env's ``dt``).

Results folder (``output``, default ``results/train/<env>-<cell>-seed<k>-<timestamp>``): see
``launch.results`` for the files. Checkpoints (``checkpoints/ckpt-<step>.npz``, the last
``keep_checkpoints`` kept) hold in one atomic, checksummed file the complete learner (``save_agent``'s
arrays and metadata) and the run's own state: step and episode counters, the current observation and
episode return/length, latency histograms, and the env's state (MuJoCo: the full integration state from
``mj_getState`` plus the body kinematics the reward reads; classic control: ``env.unwrapped.state``; both
with the env's ``np_random`` state and ``TimeLimit``'s elapsed steps). Other envs, or envs with stateful
wrappers, restart their episode on resume.

Checkpoints are written at step 0, every ``checkpoint_every`` steps, at the end and on SIGINT/SIGTERM
(caught: checkpoint, logs closed, exit status 0). ``--resume <run dir>`` loads the newest valid
checkpoint (a corrupt, truncated or mismatched one is reported and the previous one tried), cuts the logs
back to it and continues; in lock-step mode the continued run is bit-identical to an uninterrupted one.

Divergence guard: |δ| above ``divergence_delta`` (or non-finite) after a learning step, or non-finite
learner arrays at a check every ``check_every`` steps or before a checkpoint, roll the learner back to
the newest valid checkpoint and restart the episode; counted (``rollbacks``) and logged in metrics.

Modules: ``launch.train_config`` (TrainConfig), ``launch.trainer`` (the run), ``launch.runner`` (the
tick loop, shared with `bench learning` and `bench agent`), ``launch.run_checkpoints``,
``launch.env_state``, ``launch.train_progress`` and ``launch.train_records``; this one is the command
and re-exports their public names.
"""
import dataclasses
from pathlib import Path

from launch import results as R
from launch.env_state import capture_env_state, env_state_kind, restore_env_state
from launch.run_checkpoints import list_checkpoints
from launch.train_config import TrainConfig, TrainError, default_run_dir, load_train_config
from launch.train_records import format_summary
from launch.trainer import Trainer

__all__ = ["TrainConfig", "TrainError", "Trainer", "capture_env_state", "default_run_dir", "env_state_kind",
           "format_summary", "list_checkpoints", "load_train_config", "main_train", "restore_env_state"]


def _new_paths(run_dir):
    """run_dir and those of its ancestors that do not exist yet, innermost first."""
    made = []
    for path in (Path(run_dir), *Path(run_dir).parents):
        if path.exists():
            break
        made.append(path)
    return made


def _remove_new_run(run_dir, new_paths):
    """Undo a run that failed before its first step: its folder (or, when the folder existed empty
    before, what was written into it) and the empty ancestors it created."""
    import shutil

    run_dir = Path(run_dir)
    if run_dir in new_paths:
        shutil.rmtree(run_dir, ignore_errors=True)
    elif run_dir.is_dir():
        for child in run_dir.iterdir():
            shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink(missing_ok=True)
    for path in new_paths[1:]:
        try:
            path.rmdir()
        except OSError:   # not empty: something else was put there meanwhile
            break


def _start_new_run(cfg, run_dir, echo):
    """Trainer for a new run; a run that fails before its first step leaves no results folder, and a
    folder that cannot be written is a TrainError naming it."""
    new_paths = _new_paths(run_dir)
    existed_empty = run_dir.is_dir() and not any(run_dir.iterdir())
    try:
        return Trainer(cfg, run_dir, echo=echo)
    except BaseException as err:
        if new_paths or existed_empty:
            _remove_new_run(run_dir, new_paths)
        if isinstance(err, OSError):
            raise TrainError(f"output {run_dir}: cannot write the results folder ({err})") from None
        raise


def main_train(config_path, overrides, resume=None, echo=print):
    """The `rtu-control train` command: returns the summary dict. ConfigError/TrainError propagate."""
    if resume is not None:
        run_dir = Path(resume)
        cfg_file = run_dir / R.CONFIG
        if not cfg_file.exists():
            raise TrainError(f"--resume {run_dir}: no {R.CONFIG} there (not a training run folder)")
        if config_path is not None:
            raise TrainError("--resume takes the run's own config.yaml; use --set to change values")
        cfg = load_train_config(cfg_file, overrides)
        cfg = dataclasses.replace(cfg, output=str(run_dir))
        echo(f"rtu-control train: resuming {run_dir}")
        trainer = Trainer(cfg, run_dir, resume=True, echo=echo)
    else:
        cfg = load_train_config(config_path, overrides)
        if cfg.agent_from:
            from launch import agent_source
            path, meta = agent_source.resolve_checkpoint(cfg.agent_from, "agent_from")
            cfg = dataclasses.replace(cfg, agent=agent_source.agent_config_of(path, meta), agent_from=str(path))
            trained = agent_source.trained_task(meta)
            echo(f"rtu-control train: learner from {path}" + (f" (trained on {trained})" if trained else ""))
        run_dir = Path(cfg.output) if cfg.output else default_run_dir(cfg)
        learner = (f"ppo, cell {cfg.ppo.cell} ({cfg.ppo.n_units} units)" if cfg.learner == "ppo"
                   else f"cell {cfg.agent.cell} ({cfg.agent.n_units} units)")
        echo(f"rtu-control train: {cfg.env_id}, {learner}, "
             f"seed {cfg.seed}, {cfg.steps} steps, {cfg.pace} -> {run_dir}"
             + (f" (config {config_path})" if config_path else ""))
        trainer = _start_new_run(cfg, run_dir, echo)
    trainer._session_start_step = trainer.step
    summary = trainer.run()
    echo(format_summary(summary, run_dir))
    summary["run_dir"] = str(run_dir)
    return summary

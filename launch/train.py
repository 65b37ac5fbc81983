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
"""
import dataclasses
import json
import math
import os
import signal
import sys
import time
import typing
from pathlib import Path
from typing import Literal

import numpy as np

from controller.agent import AgentConfig
from controller.config import check, check_env_id, check_output_path, load_config, to_dict
from launch import results as R
from launch.envcheck import check_spaces, first_reset, make_env


class TrainError(RuntimeError):
    """The run cannot start or continue (bad resume folder, no valid checkpoint, repeated divergence)."""


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """What `rtu-control train` runs. Every field can be set in YAML or with --set key=value."""

    env_id: str = "HalfCheetah-P-v5"
    """gymnasium id (``import envs`` registers the -P/-V, CartPole-P-v1, CueRecall-v0, ... ids)"""
    env_kwargs: dict[str, typing.Any] = dataclasses.field(default_factory=dict)
    """keyword arguments for gymnasium.make, e.g. {delay: 10} (--set env_kwargs.delay=10)"""
    seed: int = 0
    """seed of the env's first reset and of the agent"""
    steps: int = 300_000
    """total env steps of the run (on --resume: the total to reach, counting the steps already done)"""
    pace: Literal["lockstep", "realtime"] = "lockstep"
    """lockstep: as fast as possible; realtime: one tick per period (sleep until the next deadline)"""
    rate_hz: float = 0.0
    """realtime: ticks per second; 0 = 1 / the env's dt"""
    checkpoint_every: int = 50_000
    """steps between periodic checkpoints (one is also written at step 0, at the end and on a signal)"""
    keep_checkpoints: int = 3
    """newest checkpoints kept on disk"""
    metrics_every: int = 10_000
    """steps between periodic metrics records"""
    progress: Literal["auto", "bar", "lines", "none"] = "auto"
    """auto: a live line (tqdm if installed) on a terminal, else a short line every progress_every steps"""
    progress_every: int = 0
    """steps between progress lines when stdout is not a terminal; 0 = steps / 10"""
    divergence_delta: float = 1.0e6
    """roll back when |δ| (agent.stats['last_delta']) exceeds this or is not finite"""
    check_every: int = 1000
    """steps between finiteness checks of the learner's arrays"""
    max_rollbacks: int = 100
    """stop the run with an error after this many rollbacks"""
    latency_budget_us: float = 2000.0
    """act + learn budget per tick (µs) marked on the latency plot (one tick at 500 Hz)"""
    moving_average: int = 20
    """episodes in the learning curve's moving average"""
    plots: bool = True
    """write learning_curve.png and latency.png at the end (needs matplotlib)"""
    output: str = ""
    """results folder; "" = results/train/<env>-<cell>-seed<k>-<timestamp>"""
    agent: AgentConfig = AgentConfig()
    """the learner (controller.agent.AgentConfig)"""
    critic_thread: bool = False
    """run the critic's learning pass on a helper thread, overlapped with the next act and env.step
    (controller.critic_thread: needs a spare core, which it keeps busy; checkpoints load across it)"""

    def __post_init__(self):
        check(self.env_id != "", "env_id", "a gymnasium id", self.env_id)
        check_env_id(self.env_id, "env_id")
        check(self.seed >= 0, "seed", "an integer >= 0", self.seed)
        check(self.steps >= 1, "steps", "an integer >= 1", self.steps)
        check(self.rate_hz >= 0 and math.isfinite(self.rate_hz), "rate_hz", "a finite number >= 0 (Hz)",
              self.rate_hz)
        check(self.checkpoint_every >= 1, "checkpoint_every", "an integer >= 1", self.checkpoint_every)
        check(self.keep_checkpoints >= 1, "keep_checkpoints", "an integer >= 1", self.keep_checkpoints)
        check(self.metrics_every >= 1, "metrics_every", "an integer >= 1", self.metrics_every)
        check(self.progress_every >= 0, "progress_every", "an integer >= 0", self.progress_every)
        check(self.divergence_delta > 0, "divergence_delta", "a number > 0", self.divergence_delta)
        check(self.check_every >= 1, "check_every", "an integer >= 1", self.check_every)
        check(self.max_rollbacks >= 0, "max_rollbacks", "an integer >= 0", self.max_rollbacks)
        check(self.latency_budget_us > 0 and math.isfinite(self.latency_budget_us), "latency_budget_us",
              "a finite number > 0 (µs)", self.latency_budget_us)
        check(self.moving_average >= 1, "moving_average", "an integer >= 1", self.moving_average)
        check_output_path(self.output, "output", "folder")


def load_train_config(path=None, overrides=()):
    """TrainConfig from an optional YAML file and dotted overrides (ConfigError naming file and key)."""
    return load_config(TrainConfig, path, overrides)


def default_run_dir(cfg, now=None):
    """results/train/<env>-<cell>-seed<k>-<YYYYmmdd-HHMMSS> (a numeric suffix if it exists)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    base = Path("results") / "train" / f"{cfg.env_id}-{cfg.agent.cell}-seed{cfg.seed}-{stamp}"
    path, k = base, 1
    while path.exists():
        k += 1
        path = base.with_name(f"{base.name}-{k}")
    return path


# ----------------------------------------------------------------------------- env state
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


def env_state_kind(env):
    """How this env's state is checkpointed: "mujoco", "classic" or "restart" (episode restarts)."""
    if any(type(w).__name__ not in _STATELESS_WRAPPERS for w in _wrapper_chain(env)):
        return "restart"
    u = env.unwrapped
    if hasattr(u, "model") and hasattr(u, "data") and type(u.data).__name__ == "MjData":
        return "mujoco"
    if type(u).__module__.startswith("gymnasium.envs.classic_control") and hasattr(u, "state"):
        return "classic"
    return "restart"


def capture_env_state(env):
    """(arrays, meta) describing the env's current state; see ``restore_env_state``."""
    u = env.unwrapped
    kind = env_state_kind(env)
    meta = {"kind": kind, "np_random": u.np_random.bit_generator.state}
    tl = _time_limit(env)
    meta["elapsed_steps"] = None if tl is None else tl._elapsed_steps
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
    """Put a freshly reset env back into a captured state. Returns True when the episode continues
    exactly, False when the kind is "restart" (or differs from this env's: then only np_random is
    restored and the caller restarts the episode). Raises TrainError naming ``where`` on a mismatch."""
    u = env.unwrapped
    try:
        u.np_random.bit_generator.state = meta["np_random"]
    except (KeyError, TypeError, ValueError) as err:
        raise TrainError(f"{where}: env np_random state cannot be restored ({err})") from None
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


# ----------------------------------------------------------------------------- progress
class _Progress:
    """Progress display: tqdm on a terminal when installed, else a live line (terminal) or a short
    line every ``every`` steps (not a terminal); nothing for mode "none"."""

    def __init__(self, mode, total, start, every, stream=None):
        self.stream = stream or sys.stdout
        tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.bar = None
        if mode == "auto":
            mode = "bar" if tty else "lines"
        if mode == "bar":
            try:
                from tqdm import tqdm
                self.bar = tqdm(total=total, initial=start, unit="step", dynamic_ncols=True,
                                file=self.stream)
            except ImportError:
                mode = "bar" if tty else "lines"
        self.mode = mode
        self.tty = tty
        self.every = every if every > 0 else max(total // 10, 1)
        self.last_step = start
        self.last_time = time.monotonic()
        self.total = total
        self.next_step = start + 256
        if self.mode == "lines":
            self.next_step = (start // self.every + 1) * self.every

    def update(self, step, line_fn):
        """Called every few hundred steps; line_fn() -> (steps_per_s, recent_return, p99_us)."""
        if self.mode == "none":
            self.next_step = self.total + 1
            return
        self.next_step = step + 256
        now = time.monotonic()
        if self.bar is not None:
            if now - self.last_time >= 0.5:
                sps, ret, p99 = line_fn()
                self.bar.update(step - self.last_step)
                self.bar.set_postfix_str(f"return {ret:.1f}  p99 {p99:.0f} µs", refresh=False)
                self.last_step, self.last_time = step, now
            return
        if self.mode == "bar":  # plain live line on a terminal
            if now - self.last_time >= 0.5:
                sps, ret, p99 = line_fn()
                self.stream.write(f"\r  step {step:>10,}/{self.total:,}  {sps:8.0f} steps/s  "
                                  f"return {ret:10.2f}  act+learn p99 {p99:7.0f} µs ")
                self.stream.flush()
                self.last_step, self.last_time = step, now
            return
        self.next_step = (step // self.every + 1) * self.every
        if step > self.last_step:
            sps, ret, p99 = line_fn()
            self.stream.write(f"  step {step}/{self.total}: {sps:.0f} steps/s, recent return {ret:.2f}, "
                              f"act+learn p99 {p99:.0f} us\n")
            self.stream.flush()
            self.last_step, self.last_time = step, now

    def close(self):
        if self.bar is not None:
            self.bar.close()
        elif self.mode == "bar":
            self.stream.write("\n")
            self.stream.flush()


# ----------------------------------------------------------------------------- the run
def _ckpt_step(path):
    try:
        return int(path.stem.split("-")[1])
    except (IndexError, ValueError):
        return -1


def list_checkpoints(run_dir):
    """Checkpoint paths of a run folder, newest (highest step) first."""
    d = Path(run_dir) / R.CHECKPOINTS
    if not d.is_dir():
        return []
    return sorted((p for p in d.glob("ckpt-*.npz") if _ckpt_step(p) >= 0), key=_ckpt_step, reverse=True)


class Trainer:
    """One training run. ``Trainer(cfg, run_dir, resume=False, echo=print)`` builds the env and the
    agent and either starts a new results folder or continues ``run_dir`` from its newest valid
    checkpoint; ``run()`` trains up to ``cfg.steps`` and returns the summary dict."""

    def __init__(self, cfg, run_dir, resume=False, echo=print):
        import gymnasium as gym

        import envs  # noqa: F401  (registers the ids)
        from controller.agent import Agent
        from controller.loop import LogHistogram
        from controller.warmup import describe_kernel_cache

        self.cfg = cfg
        self.dir = Path(run_dir)
        self.echo = echo
        self.env = make_env(cfg.env_id, cfg.env_kwargs)
        check_spaces(self.env, cfg.env_id)
        discrete = isinstance(self.env.action_space, gym.spaces.Discrete)
        echo("  " + describe_kernel_cache(cfg.agent.dtype, discrete,
                                          "critic_thread" if cfg.critic_thread else "gymnasium"))
        t_kernels = time.perf_counter()
        self.agent = Agent(self.env.observation_space, self.env.action_space, cfg.agent, seed=cfg.seed,
                           critic_thread=cfg.critic_thread)
        self.h_act, self.h_learn, self.h_tick = LogHistogram(), LogHistogram(), LogHistogram()
        self.h_env = LogHistogram()   # env.step, for the agent-vs-simulator comparison
        self.step = 0
        self.episodes = 0
        self.ep_return = 0.0
        self.ep_length = 0
        self.rollbacks = 0
        self.late_ticks = 0
        self.recent = []          # last episode returns (at most 100)
        self.wall_before = 0.0    # active seconds of earlier sessions of this run
        self.t_start = time.time()
        self.stop_reason = None
        self.env_kind = env_state_kind(self.env)
        self._warm_up(Agent)
        echo(f"  kernels ready in {time.perf_counter() - t_kernels:.1f} s")
        if resume:
            self._resume()
        else:
            self._start()

    # ------------------------------------------------------------------ folder
    def _write_config(self):
        import yaml
        data = to_dict(dataclasses.replace(self.cfg, output=str(self.dir)))
        R._rewrite(self.dir / R.CONFIG, "# rtu-control train: resolved config (launch/train.py, "
                   "TrainConfig)\n" + yaml.safe_dump(data, sort_keys=False))

    def _open_logs(self):
        self.metrics_file = open(self.dir / R.METRICS, "a")
        self.monitor_file = open(self.dir / R.MONITOR, "a")

    def _start(self):
        if self.dir.exists() and any(self.dir.iterdir()):
            raise TrainError(f"output {self.dir}: folder exists and is not empty (use --resume {self.dir} "
                             f"to continue that run, or choose another output)")
        # the first reset before the folder: an env that cannot reset leaves nothing behind
        self.obs, _ = first_reset(self.env, self.cfg.env_id, self.cfg.env_kwargs, self.cfg.seed)
        (self.dir / R.CHECKPOINTS).mkdir(parents=True, exist_ok=True)
        self._write_config()
        (self.dir / R.MONITOR).write_text(R.monitor_header(self.t_start, self.cfg.env_id))
        self._open_logs()
        self._log({"kind": "start", "step": 0, "env_id": self.cfg.env_id, "seed": self.cfg.seed,
                   "env_state": self.env_kind, "pid": os.getpid()})
        self.checkpoint()

    def _resume(self):
        from controller.agent import load_agent
        from controller.checkpoint import CheckpointError, load_arrays

        paths = list_checkpoints(self.dir)
        if not paths:
            raise TrainError(f"--resume {self.dir}: no checkpoints in {self.dir / R.CHECKPOINTS}")
        self.env.reset(seed=self.cfg.seed)  # builds the simulator; its state is overwritten below
        errors, skipped = [], []
        for path in paths:
            try:
                extra = load_agent(path, self.agent)
                arrays, _ = load_arrays(path)
                run = extra["run"]
                if run.get("env_id") != self.cfg.env_id or run.get("env_kwargs") != self.cfg.env_kwargs:
                    raise CheckpointError(f"{path}: written for env {run.get('env_id')!r} "
                                          f"{run.get('env_kwargs')}, this run has {self.cfg.env_id!r} "
                                          f"{self.cfg.env_kwargs}")
                break
            except (CheckpointError, KeyError, TypeError) as err:
                errors.append(str(err))
                skipped.append(path)
                self.echo(f"warning: skipping checkpoint {path.name}: {err}")
        else:
            raise TrainError(f"--resume {self.dir}: no valid checkpoint; " + " | ".join(errors))
        for bad in skipped:  # set aside (kept for inspection) so that no later load tries them again
            bad.replace(bad.with_name(bad.name + ".bad"))
        self.step, self.episodes = int(run["step"]), int(run["episodes"])
        self.ep_return, self.ep_length = float(run["ep_return"]), int(run["ep_length"])
        self.rollbacks, self.late_ticks = int(run["rollbacks"]), int(run.get("late_ticks", 0))
        self.recent = [float(v) for v in run["recent"]]
        self.wall_before = float(run["wall_s"])
        self.t_start = float(run["t_start"])
        for name, h in self._histograms():
            if name not in run["hist"]:   # checkpoints from before the env.step histogram
                continue
            hs = run["hist"][name]
            h.counts[...] = arrays[f"run.hist_{name}"]
            h.count, h.total, h.max, h.min = hs["count"], hs["total"], hs["max"], hs["min"]
        exact = restore_env_state(self.env, arrays, run["env"], str(path))
        if exact:
            self.obs = np.array(arrays["run.obs"], copy=True)
        else:  # the episode cannot be continued: start a new one on both sides
            self.agent.reset()
            self.obs, _ = self.env.reset()
            self.ep_return, self.ep_length = 0.0, 0
        (self.dir / R.CHECKPOINTS).mkdir(parents=True, exist_ok=True)
        R.truncate_after(self.dir, self.step, self.episodes)
        self._write_config()
        self._open_logs()
        self._last_good = path
        self._log({"kind": "resume", "step": self.step, "checkpoint": path.name, "episode_continues": exact,
                   "skipped_checkpoints": len(errors), "pid": os.getpid()})
        self.echo(f"resumed {self.dir} from {path.name} (step {self.step}, {self.episodes} episodes"
                  + ("" if exact else "; this env's episode restarts") + ")")

    def _warm_up(self, agent_cls):
        """Load every compiled kernel on a throwaway agent so that the first timed tick is not a
        compilation (the real agent, env and RNGs are untouched)."""
        spare = agent_cls(self.env.observation_space, self.env.action_space, self.cfg.agent, seed=self.cfg.seed,
                          critic_thread=self.cfg.critic_thread)
        obs = np.zeros(self.env.observation_space.shape, self.env.observation_space.dtype)
        for terminated in (False, False, True):
            spare.act(obs)
            spare.learn(0.0, obs, terminated, False)
        spare.close()

    def _log(self, record):
        record.setdefault("wall_s", round(self._wall(), 3))
        self.metrics_file.write(json.dumps(record) + "\n")
        self.metrics_file.flush()

    def _wall(self):
        t0 = getattr(self, "_session_t0", None)
        return self.wall_before + (time.monotonic() - t0 if t0 is not None else 0.0)

    # ------------------------------------------------------------------ checkpoints and guard
    def _histograms(self):
        return (("act", self.h_act), ("learn", self.h_learn), ("tick", self.h_tick), ("env", self.h_env))

    def learner_finite(self):
        """True when every parameter, trace and statistic array of the learner is finite."""
        from controller.agent import agent_arrays
        for name, arr in agent_arrays(self.agent).items():
            if name in ("noise", "action", "x", "x_next"):
                continue
            if not np.isfinite(arr).all():
                return False
        return math.isfinite(self.agent.stats.get("last_value", 0.0))

    def checkpoint(self):
        """Write checkpoints/ckpt-<step>.npz atomically (learner + run + env state), keep the newest
        ``keep_checkpoints``. A non-finite learner is rolled back instead of saved."""
        from controller.agent import agent_arrays, agent_meta
        from controller.checkpoint import save_arrays

        if not self.learner_finite():
            self.rollback("non-finite learner arrays at checkpoint")
            return None
        t0 = time.perf_counter()
        for f in (self.metrics_file, self.monitor_file):  # the logs reach the disk before the
            f.flush()                                     # checkpoint that counts their lines
            os.fsync(f.fileno())
        env_arrays, env_meta = capture_env_state(self.env)
        hist = {}
        arrays = {k: np.array(v, copy=True) for k, v in agent_arrays(self.agent).items()}
        for name, h in self._histograms():
            arrays[f"run.hist_{name}"] = h.counts.copy()
            hist[name] = {"count": h.count, "total": h.total, "max": h.max, "min": h.min}
        arrays["run.obs"] = np.array(self.obs, copy=True)
        arrays.update(env_arrays)
        meta = agent_meta(self.agent)
        meta["extra"] = {"run": {
            "step": self.step, "episodes": self.episodes, "ep_return": self.ep_return,
            "ep_length": self.ep_length, "rollbacks": self.rollbacks, "late_ticks": self.late_ticks,
            "recent": self.recent, "wall_s": self._wall(), "t_start": self.t_start, "hist": hist,
            "env": env_meta, "env_id": self.cfg.env_id, "env_kwargs": self.cfg.env_kwargs}}
        path = self.dir / R.CHECKPOINTS / f"ckpt-{self.step:010d}.npz"
        save_arrays(path, arrays, meta)
        self._last_good = path
        for old in list_checkpoints(self.dir)[self.cfg.keep_checkpoints:]:
            old.unlink(missing_ok=True)
        self._log({"kind": "checkpoint", "step": self.step, "file": path.name,
                   "seconds": round(time.perf_counter() - t0, 4)})
        return path

    def rollback(self, reason):
        """Divergence: restore the learner from the newest valid checkpoint, restart the episode."""
        from controller.agent import load_agent
        from controller.checkpoint import CheckpointError

        self.rollbacks += 1
        if self.rollbacks > self.cfg.max_rollbacks:
            raise TrainError(f"divergence at step {self.step} ({reason}): more than max_rollbacks="
                             f"{self.cfg.max_rollbacks} rollbacks; lower agent.alpha or raise "
                             f"divergence_delta")
        used = None
        for path in [self._last_good] + list_checkpoints(self.dir):
            try:
                load_agent(path, self.agent)
                used = path
                break
            except CheckpointError as err:
                self.echo(f"warning: rollback cannot use {path.name}: {err}")
        if used is None:
            raise TrainError(f"divergence at step {self.step} ({reason}) and no valid checkpoint to roll "
                             f"back to in {self.dir / R.CHECKPOINTS}")
        self.agent.reset()
        self._log({"kind": "rollback", "step": self.step, "reason": reason, "checkpoint": used.name,
                   "rollbacks": self.rollbacks, "partial_return": self.ep_return,
                   "partial_length": self.ep_length})
        self.echo(f"warning: step {self.step}: {reason}; learner rolled back to {used.name}, episode "
                  f"restarted ({self.rollbacks} rollbacks)")
        self.obs, _ = self.env.reset()
        self.ep_return, self.ep_length = 0.0, 0

    # ------------------------------------------------------------------ records
    def _recent_return(self, n=10):
        return float(np.mean(self.recent[-n:])) if self.recent else float("nan")

    def _periodic(self, sps):
        s = self.agent.stats
        self._log({"kind": "periodic", "step": self.step, "steps_per_s": round(sps, 1),
                   "episodes": self.episodes, "recent_return": R.finite_or_none(self._recent_return()),
                   "act_us": self.h_act.summary_us(), "learn_us": self.h_learn.summary_us(),
                   "tick_us": self.h_tick.summary_us(), "env_step_us": self.h_env.summary_us(),
                   "updates": s["updates"], "skipped": s["skipped"],
                   "refused": s["refused"], "non_finite_inputs": s["non_finite_inputs"],
                   "rollbacks": self.rollbacks, "late_ticks": self.late_ticks})

    def latency_record(self):
        out = {"units": "microseconds", "budget_us": self.cfg.latency_budget_us,
               "pace": self.cfg.pace}
        for name, h in (("act", self.h_act), ("learn", self.h_learn), ("act_learn", self.h_tick),
                        ("env_step", self.h_env)):
            summary = h.summary_us()
            summary["p90"] = h.quantile(0.90) / 1e3
            summary["p999"] = h.quantile(0.999) / 1e3
            summary["over_budget"] = int(h.counts[self._budget_bin():].sum()) if name == "act_learn" else None
            out[name] = summary
            out[name + "_histogram"] = R.histogram_record(h)
        return out

    def _budget_bin(self):
        ns = self.cfg.latency_budget_us * 1e3
        return min(int(math.ceil(math.log2(ns) * self.h_tick.PER_OCTAVE)), self.h_tick.BINS)

    # ------------------------------------------------------------------ the loop
    def _on_signal(self, signum, frame):
        self.stop_reason = signal.Signals(signum).name

    def run(self):
        """Train until cfg.steps (or a signal); write the final checkpoint, latency.json, summary.json
        and the plots; return the summary dict."""
        cfg = self.cfg
        old = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                old[sig] = signal.signal(sig, self._on_signal)
            except ValueError:  # not the main thread: no handlers (the caller stops us)
                pass
        progress = _Progress(cfg.progress, cfg.steps, self.step, cfg.progress_every)
        self._session_t0 = time.monotonic()
        try:
            self._loop(progress)
        finally:
            progress.close()
            for sig, handler in old.items():
                signal.signal(sig, handler)
        return self._finish()

    def _loop(self, progress):
        cfg = self.cfg
        env, agent = self.env, self.agent
        act, learn, env_step = agent.act, agent.learn, env.step
        rec_act, rec_learn, rec_tick = self.h_act.record, self.h_learn.record, self.h_tick.record
        rec_env = self.h_env.record
        stats = agent.stats
        clock_ns = time.perf_counter_ns
        bound = cfg.divergence_delta
        realtime = cfg.pace == "realtime"
        if realtime:
            from controller.clock import MonotonicClock
            clock = MonotonicClock()
            rate = cfg.rate_hz or 1.0 / float(getattr(env.unwrapped, "dt", 0.02))
            period = int(round(1e9 / rate))
            deadline = clock.now_ns() + period
        sps_t, sps_step = time.monotonic(), self.step
        obs = self.obs
        while self.step < cfg.steps and self.stop_reason is None:
            t0 = clock_ns()
            action = act(obs)
            t1 = clock_ns()
            obs, reward, terminated, truncated, _ = env_step(action)
            t2 = clock_ns()
            learn(reward, obs, terminated, truncated)
            t3 = clock_ns()
            rec_act(t1 - t0)
            rec_learn(t3 - t2)
            rec_tick(t1 - t0 + t3 - t2)
            rec_env(t2 - t1)
            self.step += 1
            self.ep_return += float(reward)
            self.ep_length += 1
            self.obs = obs
            if not abs(stats["last_delta"]) <= bound:
                self.rollback(f"|delta| = {abs(stats['last_delta']):.3g} > divergence_delta = {bound:g}")
                obs = self.obs
                continue
            if terminated or truncated:
                self.episodes += 1
                ret, length = self.ep_return, self.ep_length
                self.recent.append(ret)
                if len(self.recent) > 100:
                    del self.recent[0]
                self._log({"kind": "episode", "step": self.step, "episode": self.episodes, "return": ret,
                           "length": length, "terminated": bool(terminated)})
                self.monitor_file.write(f"{round(ret, 6)},{length},{round(time.time() - self.t_start, 6)}\n")
                self.monitor_file.flush()
                obs, _ = env.reset()
                self.obs = obs
                self.ep_return, self.ep_length = 0.0, 0
            step = self.step
            if step % cfg.check_every == 0 and not self.learner_finite():
                self.rollback("non-finite learner arrays")
                obs = self.obs
                continue
            if step % cfg.metrics_every == 0:
                now = time.monotonic()
                self._periodic((step - sps_step) / max(now - sps_t, 1e-9))
                sps_t, sps_step = now, step
            if step % cfg.checkpoint_every == 0:
                self.checkpoint()
                obs = self.obs  # a rollback inside checkpoint() resets the episode
            if step >= progress.next_step:
                progress.update(step, self._progress_line)
            if realtime:
                now = clock.now_ns()
                if now > deadline:
                    self.late_ticks += 1
                    deadline = now + period  # no catch-up burst after an overrun
                else:
                    clock.sleep_until(deadline)
                    deadline += period
        self.obs = obs
        if progress.mode != "lines" or self.step % progress.every:
            progress.update(self.step, self._progress_line)

    def _progress_line(self):
        wall = self._wall() - self.wall_before
        done = self.step - getattr(self, "_session_start_step", 0)
        return (done / wall if wall > 0 else 0.0, self._recent_return(), self.h_tick.quantile(0.99) / 1e3)

    def _finish(self):
        cfg = self.cfg
        path = self.checkpoint()
        lat = self.latency_record()
        (self.dir / R.LATENCY).write_text(json.dumps(lat, indent=1))
        s = self.agent.stats
        summary = {"env_id": cfg.env_id, "cell": cfg.agent.cell, "seed": cfg.seed, "steps": self.step,
                   "target_steps": cfg.steps, "episodes": self.episodes,
                   "stop_reason": self.stop_reason or "steps reached",
                   "recent_return": R.finite_or_none(self._recent_return()),
                   "first_returns": R.finite_or_none(float(np.mean([r for r, _, _ in
                                                                    R.read_monitor(self.dir)[1][:10]]))
                                                     if self.episodes else float("nan")),
                   "wall_s": round(self._wall(), 2), "updates": s["updates"], "skipped": s["skipped"],
                   "refused": s["refused"], "non_finite_inputs": s["non_finite_inputs"],
                   "rollbacks": self.rollbacks, "late_ticks": self.late_ticks,
                   "act_learn_us": lat["act_learn"], "env_step_us": lat["env_step"],
                   "critic_thread": cfg.critic_thread, "checkpoint": path.name if path else None,
                   "env_state": self.env_kind}
        (self.dir / R.SUMMARY).write_text(json.dumps(summary, indent=1))
        self._log({"kind": "end", "step": self.step, "reason": summary["stop_reason"],
                   "episodes": self.episodes, "rollbacks": self.rollbacks})
        self.metrics_file.close()
        self.monitor_file.close()
        self.env.close()
        self.agent.close()
        summary["plots"] = []
        if cfg.plots:
            from launch.plot import plot_run
            summary["plots"] = [str(p) for p in plot_run(self.dir, echo=self.echo)]
        return summary


def format_summary(summary, run_dir):
    lat = summary["act_learn_us"]
    first, last = summary["first_returns"], summary["recent_return"]
    fmt = lambda v: "n/a" if v is None else f"{v:.1f}"  # noqa: E731
    lines = [f"{summary['env_id']} {summary['cell']} seed {summary['seed']}: {summary['steps']} steps, "
             f"{summary['episodes']} episodes in {summary['wall_s']:.1f} s ({summary['stop_reason']})",
             f"  return: first 10 episodes {fmt(first)} -> last 10 episodes {fmt(last)}",
             f"  act+learn: p50 {lat['p50']:.0f} us, p99 {lat['p99']:.0f} us, max {lat['max']:.0f} us "
             f"(env.step p50 {summary['env_step_us']['p50']:.0f} us"
             f"{'; critic on a helper thread' if summary['critic_thread'] else ''}); "
             f"updates {summary['updates']}, refused {summary['refused']}, rollbacks {summary['rollbacks']}",
             f"  results in {run_dir}"]
    if summary["stop_reason"] != "steps reached":
        lines.append(f"  continue with: rtu-control train --resume {run_dir}")
    return "\n".join(lines)


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
        run_dir = Path(cfg.output) if cfg.output else default_run_dir(cfg)
        echo(f"rtu-control train: {cfg.env_id}, cell {cfg.agent.cell} ({cfg.agent.n_units} units), "
             f"seed {cfg.seed}, {cfg.steps} steps, {cfg.pace} -> {run_dir}"
             + (f" (config {config_path})" if config_path else ""))
        trainer = _start_new_run(cfg, run_dir, echo)
    trainer._session_start_step = trainer.step
    summary = trainer.run()
    echo(format_summary(summary, run_dir))
    summary["run_dir"] = str(run_dir)
    return summary

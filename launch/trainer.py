"""One `rtu-control train` run from start (or resume) to summary: ``Trainer``.

The trainer owns the env, the learner (``launch.learners``: the streaming agent or PPO, by
``cfg.learner``), the results folder's logs and the run's counters. Its ticks run in
``launch.runner.Runner``; through the runner's hooks it records latency, guards against divergence
(rolling the learner back), logs episodes and metrics, writes checkpoints (``launch.run_checkpoints``,
with the env's state from ``launch.env_state``) and paces. A batched learner (PPO) is also checked for
finiteness right after each update, and its periodic checkpoints wait for the next rollout boundary,
where its rollout is empty (``launch.learners``); the final and the signal checkpoints are written where
the run stops, with the rollout's filled part, so resuming is exact either way. At the end it
writes ``latency.json`` and ``summary.json`` (``launch.results``); ``logger: tensorboard`` adds event
files (``launch.tb_logger``).
"""
import dataclasses
import json
import os
import signal
import time
from pathlib import Path

import numpy as np

from controller.config import to_dict
from launch import results as R
from launch.env_state import capture_env_state, env_state_kind, restore_env_state
from launch.envcheck import check_spaces, first_reset, make_env
from launch.learners import build_learner
from launch.run_checkpoints import load_newest_valid, roll_back_learner, write_checkpoint
from launch.runner import Runner
from launch.tb_logger import TB_DIR, TensorBoardLogger, check_logger
from launch.train_config import TrainError
from launch.train_progress import TrainProgress
from launch.train_records import TickLatency, run_summary

RECENT_RETURNS = 100   # episode returns kept for the recent mean (and in checkpoints)


class Trainer:
    """One training run. ``Trainer(cfg, run_dir, resume=False, echo=print)`` builds the env and the
    agent and either starts a new results folder or continues ``run_dir`` from its newest valid
    checkpoint; ``run()`` trains up to ``cfg.steps`` and returns the summary dict."""

    def __init__(self, cfg, run_dir, resume=False, echo=print):
        import envs  # noqa: F401  (registers the ids)

        check_logger(cfg.logger)   # before the env and the folder: a missing tensorboardX leaves nothing
        self.cfg = cfg
        self.dir = Path(run_dir)
        self.echo = echo
        self.env = make_env(cfg.env_id, cfg.env_kwargs)
        check_spaces(self.env, cfg.env_id)
        t_kernels = time.perf_counter()
        self.learner = build_learner(cfg, self.env, echo)   # ConfigError naming learner if the env does not fit
        self.agent = self.learner.agent
        self.latency = TickLatency()
        self.runner = Runner(self.agent, self.env)
        self.rollbacks = self.late_ticks = 0
        self.recent = []          # the last RECENT_RETURNS episode returns
        self.wall_before = 0.0    # active seconds of earlier sessions of this run
        self.t_start = time.time()
        self.stop_reason = None
        self.env_kind = env_state_kind(self.env)
        self._last_good = None    # the newest checkpoint written or loaded by this process
        self._checkpoint_due = False   # a batched learner's periodic checkpoint waits for its boundary
        self.health = self.learner.health()
        self._changing = _changing_dynamics(self.env)
        self._segment = None      # the dynamics segment of the last logged episode
        self.learner.warm_up(self.env)
        echo(f"  {self.learner.describe()}; kernels ready in {time.perf_counter() - t_kernels:.1f} s")
        if resume:
            self._resume()
        else:
            self._start()

    @property
    def step(self):
        """Env steps done by the run (all sessions)."""
        return self.runner.step

    @property
    def episodes(self):
        """Episodes ended by the run (all sessions)."""
        return self.runner.episodes

    @property
    def obs(self):
        """The observation the next act gets."""
        return self.runner.obs

    # ------------------------------------------------------------------ folder
    def _write_config(self):
        import yaml
        data = to_dict(dataclasses.replace(self.cfg, output=str(self.dir)))
        R._rewrite(self.dir / R.CONFIG, "# rtu-control train: resolved config (launch/train_config.py, "
                   "TrainConfig)\n" + yaml.safe_dump(data, sort_keys=False))

    def _open_logs(self, purge_step=None):
        self.metrics_file = open(self.dir / R.METRICS, "a")
        self.monitor_file = open(self.dir / R.MONITOR, "a")
        self.tb = TensorBoardLogger(self.dir / TB_DIR, purge_step) if self.cfg.logger == "tensorboard" else None

    def _start(self):
        if self.dir.exists() and any(self.dir.iterdir()):
            raise TrainError(f"output {self.dir}: folder exists and is not empty (use --resume {self.dir} "
                             f"to continue that run, or choose another output)")
        # the first reset before the folder: an env that cannot reset leaves nothing behind
        self.runner.obs, _ = first_reset(self.env, self.cfg.env_id, self.cfg.env_kwargs, self.cfg.seed)
        if self.cfg.agent_from:   # TrainError when it does not fit this env
            self.learner.start_from(Path(self.cfg.agent_from))
        (self.dir / R.CHECKPOINTS).mkdir(parents=True, exist_ok=True)
        self._write_config()
        (self.dir / R.MONITOR).write_text(R.monitor_header(self.t_start, self.cfg.env_id))
        self._open_logs()
        self._log({"kind": "start", "step": 0, "env_id": self.cfg.env_id, "seed": self.cfg.seed,
                   "env_state": self.env_kind, "pid": os.getpid()})
        self.checkpoint()

    def _resume(self):
        path, run, arrays, skipped = load_newest_valid(self.dir, self.agent, self.cfg.env_id,
                                                       self.cfg.env_kwargs, self.echo)
        self.env.reset(seed=self.cfg.seed)  # builds the simulator; its state is overwritten below
        runner = self.runner
        runner.step, runner.episodes = int(run["step"]), int(run["episodes"])
        runner.ep_return, runner.ep_length = float(run["ep_return"]), int(run["ep_length"])
        self.rollbacks, self.late_ticks = int(run["rollbacks"]), int(run.get("late_ticks", 0))
        self._checkpoint_due = bool(run.get("checkpoint_due", False))
        self.recent = [float(v) for v in run["recent"]]
        self.wall_before = float(run["wall_s"])
        self.t_start = float(run["t_start"])
        self.latency.restore(arrays, run["hist"])
        exact = restore_env_state(self.env, arrays, run["env"], str(path))
        if exact:
            runner.obs = np.array(arrays["run.obs"], copy=True)
        else:  # the episode cannot be continued: start a new one on both sides
            self.agent.reset()
            runner.restart_episode()
        (self.dir / R.CHECKPOINTS).mkdir(parents=True, exist_ok=True)
        R.truncate_after(self.dir, self.step, self.episodes)
        episodes = R.read_metrics(self.dir, "episode")
        self._segment = episodes[-1].get("segment") if episodes else None   # its dynamics are logged
        self._write_config()
        self._open_logs(purge_step=self.step + 1)   # TensorBoard hides events after the checkpoint
        self._last_good = path
        self._log({"kind": "resume", "step": self.step, "checkpoint": path.name, "episode_continues": exact,
                   "skipped_checkpoints": skipped, "pid": os.getpid()})
        self.echo(f"resumed {self.dir} from {path.name} (step {self.step}, {self.episodes} episodes"
                  + ("" if exact else "; this env's episode restarts") + ")")

    def _log(self, record):
        record.setdefault("wall_s", round(self._wall(), 3))
        self.metrics_file.write(json.dumps(record) + "\n")
        self.metrics_file.flush()
        if self.tb is not None:
            self.tb.write(record)

    def _wall(self):
        t0 = getattr(self, "_session_t0", None)
        return self.wall_before + (time.monotonic() - t0 if t0 is not None else 0.0)

    # ------------------------------------------------------------------ checkpoints and guard
    def learner_finite(self):
        """True when every parameter, trace and statistic array of the learner is finite."""
        return self.learner.finite()

    def checkpoint(self):
        """Write checkpoints/ckpt-<step>.npz atomically (learner + run + env state), keep the newest
        ``keep_checkpoints``. A non-finite learner is rolled back instead of saved (returns None)."""
        if not self.learner.finite():
            self.rollback("non-finite learner arrays at checkpoint")
            return None
        t0 = time.perf_counter()
        for f in (self.metrics_file, self.monitor_file):  # the logs reach the disk before the
            f.flush()                                     # checkpoint that counts their lines
            os.fsync(f.fileno())
        env_arrays, env_meta = capture_env_state(self.env)
        arrays, hist = self.latency.state()
        runner = self.runner
        arrays["run.obs"] = np.array(runner.obs, copy=True)
        arrays.update(env_arrays)
        run = {"step": runner.step, "episodes": runner.episodes, "ep_return": runner.ep_return,
               "ep_length": runner.ep_length, "rollbacks": self.rollbacks, "late_ticks": self.late_ticks,
               "recent": self.recent, "wall_s": self._wall(), "t_start": self.t_start, "hist": hist,
               "env": env_meta, "env_id": self.cfg.env_id, "env_kwargs": self.cfg.env_kwargs,
               "checkpoint_due": self._checkpoint_due, "learner": self.learner.kind}
        path = write_checkpoint(self.dir, self.step, self.learner, arrays, run, self.cfg.keep_checkpoints)
        self._last_good = path
        self._log({"kind": "checkpoint", "step": self.step, "file": path.name,
                   "seconds": round(time.perf_counter() - t0, 4)})
        return path

    def rollback(self, reason):
        """Divergence: restore the learner from the newest valid checkpoint, restart the episode."""
        self.rollbacks += 1
        if self.rollbacks > self.cfg.max_rollbacks:
            raise TrainError(f"divergence at step {self.step} ({reason}): more than max_rollbacks="
                             f"{self.cfg.max_rollbacks} rollbacks; lower "
                             f"{'ppo.lr' if self.learner.kind == 'ppo' else 'agent.alpha or raise divergence_delta'}")
        used = roll_back_learner(self.dir, self.learner, self._last_good, self.echo)
        if used is None:
            raise TrainError(f"divergence at step {self.step} ({reason}) and no valid checkpoint to roll "
                             f"back to in {self.dir / R.CHECKPOINTS}")
        self.agent.reset()
        self._log({"kind": "rollback", "step": self.step, "reason": reason, "checkpoint": used.name,
                   "rollbacks": self.rollbacks, "partial_return": self.runner.ep_return,
                   "partial_length": self.runner.ep_length})
        self.echo(f"warning: step {self.step}: {reason}; learner rolled back to {used.name}, episode "
                  f"restarted ({self.rollbacks} rollbacks)")
        self.runner.restart_episode()

    # ------------------------------------------------------------------ records
    def _recent_return(self, n=10):
        return float(np.mean(self.recent[-n:])) if self.recent else float("nan")

    def _periodic(self, sps):
        s, lat = self.agent.stats, self.latency
        self._log({"kind": "periodic", "step": self.step, "steps_per_s": round(sps, 1),
                   "episodes": self.episodes, "recent_return": R.finite_or_none(self._recent_return()),
                   "act_us": lat.act.summary_us(), "learn_us": lat.learn.summary_us(),
                   "tick_us": lat.tick.summary_us(), "env_step_us": lat.env.summary_us(),
                   "updates": s["updates"], "skipped": s["skipped"],
                   "refused": s["refused"], "non_finite_inputs": s["non_finite_inputs"],
                   "rollbacks": self.rollbacks, "late_ticks": self.late_ticks,
                   "health": self.health.record()})

    def latency_record(self):
        """The content of latency.json (``TickLatency.latency_json``)."""
        return self.latency.latency_json(self.cfg.latency_budget_us, self.cfg.pace)

    # ------------------------------------------------------------------ the loop
    def _on_signal(self, signum, frame):
        self.stop_reason = signal.Signals(signum).name
        self.runner.stop()

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
        progress = TrainProgress(cfg.progress, cfg.steps, self.step, cfg.progress_every)
        self._session_t0 = time.monotonic()
        try:
            self._loop(progress)
        finally:
            progress.close()
            for sig, handler in old.items():
                signal.signal(sig, handler)
        return self._finish()

    def _loop(self, progress):
        """The runner's ticks up to cfg.steps, with train's hooks: latency and the |δ| guard after each
        learn, the episode's records at its end, then checks, metrics, checkpoints, progress, pacing."""
        cfg, runner, learner = self.cfg, self.runner, self.learner
        record, stats, bound = self.latency.record, learner.agent.stats, cfg.divergence_delta
        pace = _Pacer(cfg.rate_hz or 1.0 / float(getattr(self.env.unwrapped, "dt", 0.02))) \
            if cfg.pace == "realtime" else None
        speed = [time.monotonic(), runner.step]   # time and step of the last periodic record

        def on_tick(act_ns, env_ns, learn_ns):
            record(act_ns, env_ns, learn_ns)
            if abs(stats["last_delta"]) <= bound:   # False for NaN too
                return False
            self.rollback(f"|delta| = {abs(stats['last_delta']):.3g} > divergence_delta = {bound:g}")
            return True

        health, batched = self.health, learner.batched

        def after_tick():
            step = runner.step
            if step % health.sample_every == 0:
                health.sample()
            updated = batched and learner.at_boundary()   # a batch update ran in this tick's learn
            if (updated or step % cfg.check_every == 0) and not learner.finite():
                self.rollback("non-finite learner arrays")
                return
            if step % cfg.metrics_every == 0:
                now = time.monotonic()
                self._periodic((step - speed[1]) / max(now - speed[0], 1e-9))
                speed[:] = now, step
            if step % cfg.checkpoint_every == 0:
                self._checkpoint_due = True
            if self._checkpoint_due and (updated or not batched):
                self._checkpoint_due = False
                self.checkpoint()
            if step >= progress.next_step:
                progress.update(step, self._progress_line)
            if pace is not None and pace():
                self.late_ticks += 1

        runner.run(cfg.steps, on_tick, self._end_episode, after_tick)
        if progress.mode != "lines" or runner.step % progress.every:
            progress.update(runner.step, self._progress_line)

    def _end_episode(self, ret, length, terminated):
        """An episode ended (the runner counted it): recent returns, metrics.jsonl and monitor.csv."""
        self.recent.append(ret)
        if len(self.recent) > RECENT_RETURNS:
            del self.recent[0]
        record = {"kind": "episode", "step": self.runner.step, "episode": self.runner.episodes,
                  "return": ret, "length": length, "terminated": bool(terminated)}
        if self._changing is not None:     # the dynamics this episode ran under (changes come at resets)
            record["segment"] = self._changing.segment
            if self._changing.segment != self._segment:
                self._segment = self._changing.segment
                self._log({"kind": "dynamics", "step": self.runner.step, **self._changing.dynamics})
        self._log(record)
        self.monitor_file.write(R.monitor_row(ret, length, time.time() - self.t_start))
        self.monitor_file.flush()

    def _progress_line(self):
        wall = self._wall() - self.wall_before
        done = self.runner.step - getattr(self, "_session_start_step", 0)
        return (done / wall if wall > 0 else 0.0, self._recent_return(), self.latency.p99_us())

    def _finish(self):
        cfg = self.cfg
        path = self.checkpoint()
        lat = self.latency_record()
        (self.dir / R.LATENCY).write_text(json.dumps(lat, indent=1))
        summary = run_summary(cfg, self.agent.stats, lat, R.read_monitor(self.dir)[1], {
            "steps": self.step, "episodes": self.episodes, "stop_reason": self.stop_reason or "steps reached",
            "recent_return": self._recent_return(), "wall_s": round(self._wall(), 2), "rollbacks": self.rollbacks,
            "late_ticks": self.late_ticks, "checkpoint": path.name if path else None, "env_state": self.env_kind})
        (self.dir / R.SUMMARY).write_text(json.dumps(summary, indent=1))
        self._log({"kind": "end", "step": self.step, "reason": summary["stop_reason"],
                   "episodes": self.episodes, "rollbacks": self.rollbacks})
        self.metrics_file.close()
        self.monitor_file.close()
        if self.tb is not None:
            self.tb.close()
        self.env.close()
        self.learner.close()
        summary["plots"] = []
        if cfg.plots:
            from launch.plot import plot_run
            summary["plots"] = [str(p) for p in plot_run(self.dir, echo=self.echo)]
        return summary


def _changing_dynamics(env):
    """The env's envs.nonstationary.ChangingDynamics wrapper, or None."""
    while env is not None:
        if type(env).__name__ == "ChangingDynamics":
            return env
        env = getattr(env, "env", None)
    return None


class _Pacer:
    """``pace()`` sleeps (hybrid sleep-then-spin, ``controller.clock``) until the next deadline, one
    period of ``rate_hz`` after the last; returns True, without sleeping, when that deadline has passed
    (a late tick: the schedule restarts from now, no catch-up burst)."""

    def __init__(self, rate_hz):
        from controller.clock import MonotonicClock

        self.clock = MonotonicClock()
        self.period = int(round(1e9 / rate_hz))
        self.deadline = self.clock.now_ns() + self.period

    def __call__(self):
        now = self.clock.now_ns()
        if now > self.deadline:
            self.deadline = now + self.period
            return True
        self.clock.sleep_until(self.deadline)
        self.deadline += self.period
        return False

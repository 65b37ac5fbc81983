"""The results folder of one deploy run, its episode logs and its checkpoints: ``DeployRun``.

Each deploy with an ``output`` gets its own folder ``<output>/<task>-<mask>-<YYYYmmdd-HHMMSS>`` (``-2``,
``-3``... when that name exists), holding:

* ``config.yaml``: the resolved ``DeployConfig`` (with the agent config actually used);
* ``metrics.jsonl`` and ``monitor.csv``: as a training run's (``launch.results``): ``start`` /
  ``resume`` / ``episode`` / ``checkpoint`` / ``end`` records, ``step`` counting the loop's ticks over
  all sessions; episodes in Stable-Baselines3's Monitor format, so ``rtu-control plot`` reads them;
* ``loop_stats.json``: the loop's summary of the latest session; ``latency.json``: its sense->act,
  learn, wake-up jitter and tick-work summaries and histograms (log bins, µs) in the layout of a
  training run's, the period as the budget;
* ``checkpoints/ckpt-<ticks>.npz`` (agent policies only): the complete learner in the format of
  `train`'s checkpoints, the newest ``keep_checkpoints`` kept. One is written before the first tick,
  at episode ends at most every ``checkpoint_every`` seconds (while the robot holds its safe command,
  before its reset, so that writing never delays a command), and when the run stops. SIGKILL or a power
  loss loses the ticks after the newest one: ``rtu-control deploy --resume <folder>`` continues from it
  in a new episode, and ``train --set agent_from=<folder>`` or ``deploy --agent <folder>`` start new
  runs from it.
"""
import json
import os
import time
from pathlib import Path

from launch import results as R

RECENT_RETURNS = 100
LOOP_STATS = "loop_stats.json"


def new_run_dir(output, task_config, now=None):
    """A folder name under ``output`` that does not exist yet: <task>-<mask>-<timestamp>[-n]."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    base = Path(output) / f"{task_config.name}-{task_config.mask}-{stamp}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


class DeployRun:
    """Owns one deploy results folder. ``DeployRun(folder, env_id, agent, every, keep)`` opens it;
    ``start(config_text)`` or ``resume(echo)`` prepares it; ``on_episode_end`` is the loop's hook;
    ``finish(summary, loop)`` writes the session's statistics and the last checkpoint.

    agent: the ``controller.agent.Agent`` driving the robot, or None (a stand-in policy: no checkpoints).
    env_id: the task's gymnasium id, recorded in checkpoints (``launch.agent_source.task_id``)."""

    def __init__(self, folder, env_id, agent, checkpoint_every, keep_checkpoints, echo=print):
        self.dir = Path(folder)
        self.env_id = env_id
        self.agent = agent
        self.every = float(checkpoint_every)
        self.keep = int(keep_checkpoints)
        self.echo = echo
        self.ticks_before = 0     # loop ticks of earlier sessions
        self.episodes = 0         # episodes ended, all sessions
        self.recent = []
        self.sessions = 0
        self.t_start = time.time()
        self._last_ckpt = time.monotonic()
        self.metrics_file = self.monitor_file = None

    # ------------------------------------------------------------------ lifecycle
    def start(self, config_text):
        """A new folder: config.yaml, empty logs, the checkpoint of the learner it starts from."""
        self.dir.mkdir(parents=True, exist_ok=False)
        R._rewrite(self.dir / R.CONFIG, config_text)
        (self.dir / R.MONITOR).write_text(R.monitor_header(self.t_start, self.env_id))
        self._open_logs()
        self._log({"kind": "start", "step": 0, "env_id": self.env_id, "pid": os.getpid()})
        self.checkpoint(0)

    def resume(self):
        """Load the learner from the folder's newest valid checkpoint (a corrupt one is set aside as
        ``.npz.bad``), cut the logs back to it; the robot starts a new episode. TrainError if none."""
        from launch.run_checkpoints import load_newest_valid
        path, run, _, skipped = load_newest_valid(self.dir, self.agent, self.env_id, {}, self.echo)
        self.agent.reset()
        self.ticks_before = int(run["step"])
        self.episodes = int(run["episodes"])
        self.recent = [float(v) for v in run["recent"]]
        self.sessions = int(run.get("sessions", 0))
        self.t_start = float(run.get("t_start", self.t_start))
        R.truncate_after(self.dir, self.ticks_before, self.episodes)
        self._open_logs()
        self._log({"kind": "resume", "step": self.ticks_before, "checkpoint": path.name,
                   "skipped_checkpoints": skipped, "pid": os.getpid()})
        return path

    def _open_logs(self):
        self.metrics_file = open(self.dir / R.METRICS, "a")
        self.monitor_file = open(self.dir / R.MONITOR, "a")

    def _log(self, record):
        self.metrics_file.write(json.dumps(record) + "\n")
        self.metrics_file.flush()

    # ------------------------------------------------------------------ checkpoints
    def checkpoint(self, ticks):
        """Write checkpoints/ckpt-<ticks>.npz (ticks over all sessions) atomically; None without an
        agent. The logs reach the disk first, so a checkpoint never counts lines that are lost."""
        if self.agent is None:
            return None
        from launch.run_checkpoints import learner_finite, write_checkpoint
        if not learner_finite(self.agent):   # keep the last good one rather than save a diverged learner
            self._log({"kind": "checkpoint_skipped", "step": ticks, "reason": "non-finite learner arrays"})
            return None
        for f in (self.metrics_file, self.monitor_file):
            f.flush()
            os.fsync(f.fileno())
        run = {"step": ticks, "episodes": self.episodes, "recent": self.recent, "env_id": self.env_id,
               "env_kwargs": {}, "t_start": self.t_start, "sessions": self.sessions, "source": "deploy"}
        t0 = time.perf_counter()
        path = write_checkpoint(self.dir, ticks, self.agent, {}, run, self.keep)
        self._last_ckpt = time.monotonic()
        self._log({"kind": "checkpoint", "step": ticks, "file": path.name,
                   "seconds": round(time.perf_counter() - t0, 4)})
        return path

    def on_episode_end(self, loop, episode_return, steps, terminated):
        """ControlLoop hook: log the episode; checkpoint when ``checkpoint_every`` seconds have passed
        since the last one (the robot holds its safe command meanwhile)."""
        ticks = self.ticks_before + loop.stats.ticks + 1   # this tick is counted after the hook
        self.episodes += 1
        self.recent.append(float(episode_return))
        if len(self.recent) > RECENT_RETURNS:
            del self.recent[0]
        self._log({"kind": "episode", "step": ticks, "episode": self.episodes, "return": episode_return,
                   "length": steps, "terminated": bool(terminated)})
        self.monitor_file.write(R.monitor_row(episode_return, steps, time.time() - self.t_start))
        self.monitor_file.flush()
        if self.agent is not None and time.monotonic() - self._last_ckpt >= self.every:
            self.checkpoint(ticks)

    def finish(self, summary, loop):
        """The session ended (done, signal or fault): loop_stats.json, latency.json, the last checkpoint
        (the learner at the start of a new episode: the interrupted one cannot be continued)."""
        ticks = self.ticks_before + summary["ticks"]
        self.sessions += 1
        (self.dir / LOOP_STATS).write_text(json.dumps(summary, indent=1, default=float))
        s = loop.stats
        # train's latency.json layout (launch.train_records), so `rtu-control plot` draws it too
        latency = {"units": "microseconds", "budget_us": 1e6 / summary["rate_hz"],
                   "pace": f"deploy at {summary['rate_hz']:g} Hz"}
        for name, h in (("sense_act", s.sense_act), ("learn", s.learn), ("jitter", s.jitter), ("work", s.work)):
            latency[name] = h.summary_us()
            latency[name + "_histogram"] = R.histogram_record(h)
        (self.dir / R.LATENCY).write_text(json.dumps(latency, indent=1, default=float))
        if self.agent is not None:
            self.agent.reset()
            self.checkpoint(ticks)
        self._log({"kind": "end", "step": ticks, "reason": summary["stop_reason"], "fault": summary["fault"],
                   "episodes": self.episodes})
        self.close()

    def close(self):
        for f in (self.metrics_file, self.monitor_file):
            if f is not None and not f.closed:
                f.close()

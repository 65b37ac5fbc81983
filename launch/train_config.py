"""What one `rtu-control train` run is: ``TrainConfig`` (YAML -> frozen dataclass, validated once), its
default results folder, and ``TrainError`` (a run that cannot start or continue: exit status 2)."""
import dataclasses
import math
import time
import typing
from pathlib import Path
from typing import Literal

from controller.agent import AgentConfig
from controller.config import check, check_output_path, load_config
from controller.ppo_config import PPOConfig
from envs.errors import check_env_id


class TrainError(RuntimeError):
    """The run cannot start or continue (bad resume folder, no valid checkpoint, repeated divergence)."""


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """What `rtu-control train` runs. Every field can be set in YAML or with --set key=value."""

    env_id: str = "HalfCheetah-P-v5"        # gymnasium id (``import envs`` registers -P/-V, CueRecall-v0...)
    # keyword arguments of gymnasium.make, e.g. {delay: 10} (--set env_kwargs.delay=10)
    env_kwargs: dict[str, typing.Any] = dataclasses.field(default_factory=dict)
    seed: int = 0                           # seed of the env's first reset and of the agent
    steps: int = 300_000                    # total env steps (on --resume: the total to reach)
    pace: Literal["lockstep", "realtime"] = "lockstep"  # realtime: sleep to one tick per period
    rate_hz: float = 0.0                    # realtime ticks per second; 0 = 1 / the env's dt
    checkpoint_every: int = 50_000          # steps between checkpoints (also at step 0, the end, a signal)
    keep_checkpoints: int = 3               # newest checkpoints kept on disk
    metrics_every: int = 10_000             # steps between periodic metrics records
    progress: Literal["auto", "bar", "lines", "none"] = "auto"  # auto: live on a terminal, else lines
    progress_every: int = 0                 # steps between progress lines off a terminal; 0 = steps / 10
    divergence_delta: float = 1.0e6         # roll back when |δ| (stats['last_delta']) exceeds this or is NaN
    check_every: int = 1000                 # steps between finiteness checks of the learner's arrays
    max_rollbacks: int = 100                # stop the run with an error after this many rollbacks
    latency_budget_us: float = 2000.0       # act + learn budget per tick (µs) on latency.png (500 Hz)
    moving_average: int = 20                # episodes in the learning curve's moving average
    plots: bool = True                      # learning_curve.png and latency.png at the end (matplotlib)
    logger: Literal["files", "tensorboard"] = "files"  # tensorboard: also event files in <run>/tensorboard/
    output: str = ""                        # results folder; "" = results/train/<env>-<cell>-seed<k>-<time>
    # streaming: the streaming actor-critic (``agent``); ppo: PPO with RTRL (``ppo``; Box actions only)
    learner: Literal["streaming", "ppo"] = "streaming"
    agent: AgentConfig = AgentConfig()      # the streaming learner (controller.agent.AgentConfig)
    ppo: PPOConfig = PPOConfig()            # the ppo learner (controller.ppo_config.PPOConfig)
    # a checkpoint (or train/deploy results folder) the learner starts from; its agent config replaces
    # ``agent`` (launch.agent_source)
    agent_from: str = ""
    # the critic's learning pass on a helper thread, overlapped with the next act and env.step
    # (controller.critic_thread: needs a spare core, which it keeps busy; checkpoints load across it)
    critic_thread: bool = False

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
        if self.learner == "ppo":   # the streaming learner's options
            check(not self.critic_thread, "critic_thread", "false with learner: ppo (a streaming-learner option)",
                  self.critic_thread)
            check(not self.agent_from, "agent_from", "empty with learner: ppo (a ppo run starts from scratch)",
                  self.agent_from)

    @property
    def cell(self):
        """The recurrent cell of the learner the run trains (``agent.cell`` or ``ppo.cell``)."""
        return self.ppo.cell if self.learner == "ppo" else self.agent.cell


def load_train_config(path=None, overrides=()):
    """TrainConfig from an optional YAML file and dotted overrides (ConfigError naming file and key)."""
    return load_config(TrainConfig, path, overrides)


def default_run_dir(cfg, now=None):
    """results/train/<env>-[ppo-]<cell>-seed<k>-<YYYYmmdd-HHMMSS> (a numeric suffix if it exists)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    learner = "ppo-" if cfg.learner == "ppo" else ""
    base = Path("results") / "train" / f"{cfg.env_id}-{learner}{cfg.cell}-seed{cfg.seed}-{stamp}"
    path, k = base, 1
    while path.exists():
        k += 1
        path = base.with_name(f"{base.name}-{k}")
    return path

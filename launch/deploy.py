"""Deploy: one YAML -> adapter + safety + task + loop (+ policy), run, write the results.

``DeployConfig`` is the YAML layout of ``launch/configs/deploy_emulator.yaml``::

    adapter: udp            # registered adapter type: mock | sim | udp
    udp: {...}              # UdpConfig   (only the section of the chosen adapter is used)
    sim: {...}              # SimConfig
    mock: {...}             # MockConfig
    safety: {...}           # SafetyConfig
    task: {...}             # TaskConfig (name registered in hardware.tasks)
    loop: {...}             # LoopConfig (controller.loop)
    policy: {...}           # PolicyConfig: kind agent | fixed (the stand-in)
    agent: {...}            # AgentConfig (controller.agent) when policy.kind is agent
    agent_from: ""          # a checkpoint or train/deploy results folder to start the agent from
    learn: true             # false: a frozen policy (no updates; as loop.learn: never)
    checkpoint_every: 60.0  # s: least time between the checkpoints written at episode ends
    keep_checkpoints: 3
    output: results/deploy  # each run writes <output>/<task>-<mask>-<timestamp>/ ("" for nothing)
    progress_every: 5.0     # seconds between the progress lines main prints (0: none)

``run_deploy(config, policy=None)`` builds everything, runs the loop and returns its summary (its
``fault`` is "" unless the loop stopped on a fault; ``output`` names the run's folder); the policy is
the one ``policy.kind`` names (restored from ``agent_from`` when set, ``launch.agent_source``) unless
``policy`` (any ``controller.interfaces.Policy``) is passed. ``run_deploy(config, resume=FOLDER)``
continues a run folder from its newest checkpoint (``launch.deploy_run``). ``run(config)`` is the
command of ``rtu-control deploy`` on an already validated config: progress lines, a summary line, and
the exit status 0 when the run ended (done, or SIGINT / SIGTERM), 1 when it stopped on a fault (named
on stderr), 2 for an adapter, task, policy or checkpoint that cannot be used. ``main(argv)`` is
``python -m launch.deploy --config FILE --set key=value``: the same arguments, parsed once, then
``run``. Adapters are registered by type name in ``ADAPTERS`` (lerobot-style), each with its config
class.
"""
import dataclasses
import math
import sys
from pathlib import Path
from typing import Literal

from controller.agent import AgentConfig
from controller.config import ConfigError, check, check_output_path, load_config, run_command_line, to_dict
from controller.fixed_policy import FixedPolicy
from controller.loop import ControlLoop, LoopConfig
from hardware.mock import MockAdapter, MockConfig
from hardware.safety import SafetyConfig
from hardware.sim import SimAdapter, SimConfig
from hardware.tasks import TaskConfig, make_task
from hardware.udp import UdpAdapter, UdpConfig

# exit status of main: the run ended (done, or stopped by SIGINT / SIGTERM), it stopped on a fault
# (summary["fault"]), or it never started (a bad config, a robot description or adapter that cannot be built)
EXIT_OK, EXIT_FAULT, EXIT_BAD_INPUT = 0, 1, 2

ADAPTERS = {  # type name -> (adapter class, config section name)
    "mock": (MockAdapter, "mock"),
    "sim": (SimAdapter, "sim"),
    "udp": (UdpAdapter, "udp"),
}


@dataclasses.dataclass(frozen=True)
class PolicyConfig:
    """Which policy drives the loop: ``agent`` (controller.agent.Agent built from the ``agent``
    section) or ``fixed`` (the stand-in controller.fixed_policy.FixedPolicy: action = clip(gain · obs), with
    busy-waits emulating the act / learn cost)."""
    kind: Literal["fixed", "agent"] = "fixed"
    seed: int = 0                # agent seed
    gain: float = 0.0            # fixed: every entry of the (action_dim, obs_dim) gain matrix
    act_cost: float = 0.0        # seconds busy-waited in act()
    learn_cost: float = 0.0      # seconds busy-waited in update()

    def __post_init__(self):
        check(self.seed >= 0, "policy.seed", "an integer >= 0", self.seed)
        check(math.isfinite(self.gain), "policy.gain", "a finite number", self.gain)
        check(0 <= self.act_cost < math.inf, "policy.act_cost", "a finite number of seconds >= 0",
              self.act_cost)
        check(0 <= self.learn_cost < math.inf, "policy.learn_cost", "a finite number of seconds >= 0",
              self.learn_cost)


@dataclasses.dataclass(frozen=True)
class DeployConfig:
    adapter: Literal["mock", "sim", "udp"] = "udp"
    mock: MockConfig = MockConfig()
    sim: SimConfig = SimConfig()
    udp: UdpConfig = UdpConfig()
    safety: SafetyConfig = SafetyConfig()
    task: TaskConfig = TaskConfig(name="HalfCheetah")
    loop: LoopConfig = LoopConfig()
    policy: PolicyConfig = PolicyConfig()
    agent: AgentConfig = AgentConfig()
    agent_from: str = ""           # checkpoint or train/deploy results folder the agent starts from
    learn: bool = True             # false: frozen policy, no updates (as loop.learn: never)
    checkpoint_every: float = 60.0  # s: least time between the checkpoints written at episode ends
    keep_checkpoints: int = 3
    output: str = ""               # parent of the run's own folder <task>-<mask>-<timestamp> ("" for none)
    progress_every: float = 5.0    # seconds between progress lines of main (0: none)

    def __post_init__(self):
        check(0 <= self.checkpoint_every < math.inf, "checkpoint_every",
              "a finite number of seconds >= 0 (0: at every episode end)", self.checkpoint_every)
        check(self.keep_checkpoints >= 1, "keep_checkpoints", "an integer >= 1", self.keep_checkpoints)
        check(not self.agent_from or self.policy.kind == "agent", "agent_from",
              "\"\" unless policy.kind is agent (a checkpoint holds an agent)", self.agent_from)
        check(0 <= self.progress_every < math.inf, "progress_every",
              "a finite number of seconds >= 0 (0: no progress lines)", self.progress_every)
        period = 1.0 / self.loop.rate_hz
        for name in ("act_cost", "learn_cost"):  # a busy-wait of a whole period makes every tick late
            value = getattr(self.policy, name)
            check(value < period, f"policy.{name}",
                  f"seconds in [0, period) (period = 1 / loop.rate_hz = {period:g} s)", value)
        check_output_path(self.output, "output", "folder")


def make_adapter(config):
    """The adapter named by ``config.adapter``, built from its section and ``config.safety``."""
    cls, section = ADAPTERS[config.adapter]
    return cls(getattr(config, section), config.safety)


def make_policy(config, task, echo=None):
    """(policy, config) for the bound ``task`` (Box actions): the policy of ``config.policy.kind``, an
    agent restored from ``config.agent_from`` when set (then the returned config's ``agent`` section is
    the checkpoint's and ``agent_from`` the checkpoint file). echo (optional): told whether the agent's
    kernels load from numba's cache or compile, and how long that took."""
    if config.policy.kind != "agent":
        return make_stand_in(config, task), config
    import numpy as np
    from gymnasium import spaces

    from controller.agent import Agent
    from controller.warmup import describe_kernel_cache, warm_up_for_loop
    obs_space = spaces.Box(-np.inf, np.inf, (task.obs_dim,), np.float64)
    act_space = spaces.Box(np.asarray(task.action_low, np.float32),
                           np.asarray(task.action_high, np.float32), (task.action_dim,), np.float32)
    if config.agent_from:
        from launch import agent_source
        path, meta = agent_source.resolve_checkpoint(config.agent_from)
        agent_source.check_matches(path, meta, task, config.task)
        config = dataclasses.replace(config, agent=agent_source.agent_config_of(path, meta),
                                     agent_from=str(path))
        if echo is not None:
            echo(f"agent from {path} (trained on {agent_source.trained_task(meta) or 'an unrecorded task'})")
    if echo is not None:
        echo(describe_kernel_cache(config.agent.dtype, False, "loop"))
    if config.agent_from:
        agent = agent_source.load_learner(Path(config.agent_from), meta, obs_space, act_space)
    else:
        agent = Agent(obs_space, act_space, config.agent, seed=config.policy.seed)
    # every path the loop can take compiled before the first tick, on a twin: the agent stays as built
    seconds = warm_up_for_loop(config.agent, obs_space, act_space)
    if echo is not None:
        echo(f"kernels ready in {seconds:.1f} s")
    return agent, config


def make_stand_in(config, task):
    """FixedPolicy sized for the bound ``task``."""
    import numpy as np
    p = config.policy
    return FixedPolicy(task.obs_dim, task.action_dim,
                       gain=np.full((task.action_dim, task.obs_dim), p.gain),
                       low=task.action_low, high=task.action_high,
                       act_cost=p.act_cost, learn_cost=p.learn_cost)


def configure_adapter(adapter, config):
    """Acquire the adapter's resources (socket, simulator) before the loop starts; an OSError (address
    not local or in use, no permission) is a HardwareError naming the section to fix."""
    from hardware.base import HardwareError
    try:
        adapter.configure()
    except OSError as err:
        section = ADAPTERS[config.adapter][1]
        raise HardwareError(f"{section}: cannot configure the {config.adapter} adapter ({err}); check "
                            f"its addresses and ports") from None


def _open_run(config, task, policy, resume):
    """The DeployRun of this deploy (None without an output folder): a new timestamped folder, or the
    folder ``resume`` continued from its newest checkpoint."""
    import yaml

    from controller.agent import Agent
    from launch.agent_source import task_id
    from launch.deploy_run import DeployRun, new_run_dir
    agent = policy if isinstance(policy, Agent) else None
    folder = resume if resume is not None else (new_run_dir(config.output, config.task) if config.output
                                                else None)
    if folder is None:
        return None
    run = DeployRun(folder, task_id(config.task), agent, config.checkpoint_every, config.keep_checkpoints)
    if resume is not None:
        from launch.train_config import TrainError
        if agent is None:
            raise ConfigError(f"deploy --resume {resume}: the run's policy.kind is {config.policy.kind!r}; only "
                              f"an agent's run has a learner to resume")
        try:
            run.resume()
        except TrainError as err:
            raise ConfigError(str(err).replace("--resume", "deploy --resume")) from None
    else:
        run.start("# rtu-control deploy: resolved config (launch/deploy.py, DeployConfig)\n"
                  + yaml.safe_dump(to_dict(config), sort_keys=False))
    return run


def _add_process_figures(summary, loop):
    """summary["start_to_first_tick_s"]: process start to the loop's first tick (imports, config,
    kernels, adapter); summary["peak_rss_mb"]: peak resident memory. None where /proc is missing."""
    from launch.process_info import peak_rss_mb, process_age_s
    age = process_age_s()
    since_first = (loop.clock.now_ns() - loop.stats.first_tick_ns) / 1e9
    summary["start_to_first_tick_s"] = None if age is None or not loop.stats.ticks else round(age - since_first, 3)
    summary["peak_rss_mb"] = peak_rss_mb()


def run_deploy(config, policy=None, on_tick=None, echo=None, resume=None):
    """Build adapter, task, policy, loop; run; write the run's folder (``launch.deploy_run``) and
    return the loop summary (dict; ``output``: the folder, or ""). ``resume``: a deploy run folder to
    continue (its config.yaml is ``config``). The adapter is shut down on every exit path. echo: see
    make_policy."""
    adapter = make_adapter(config)
    task = make_task(config.task)
    run = None
    try:
        task.bind(adapter)
        if policy is None and resume is not None:   # the learner comes from the run's own checkpoints
            policy, _ = make_policy(dataclasses.replace(config, agent_from=""), task, echo)
        elif policy is None:
            policy, config = make_policy(config, task, echo)
        configure_adapter(adapter, config)
        run = _open_run(config, task, policy, Path(resume) if resume is not None else None)
        loop_config = config.loop if config.learn else dataclasses.replace(config.loop, learn="never")
        if run is not None and run.episodes:   # robot resets continue the seed sequence of the run
            loop_config = dataclasses.replace(loop_config, seed=loop_config.seed + run.episodes)
        loop = ControlLoop(adapter, task, policy, loop_config, on_tick=on_tick,
                           on_episode_end=run.on_episode_end if run is not None else None)
        summary = loop.run()
        _add_process_figures(summary, loop)
    except BaseException:
        if run is not None:
            run.close()
        raise
    finally:
        adapter.shutdown()
    summary["output"] = ""
    if run is not None:
        run.finish(summary, loop)
        summary["output"] = str(run.dir)
    return summary


class ProgressLines:
    """``on_tick`` hook printing one line every ``every`` seconds of the loop's clock: ticks, on-time
    fraction, unusable reads, episodes, last episode return. Between lines it costs one clock read
    and a comparison per tick; the formatting happens only on the ticks that print."""

    def __init__(self, every, stream=None):
        self.every_ns = int(every * 1e9)
        self.stream = stream if stream is not None else sys.stdout
        self.start_ns = None
        self.next_ns = 0

    def __call__(self, loop, k):
        now = loop.clock.now_ns()
        if self.start_ns is None:
            self.start_ns, self.next_ns = now, now + self.every_ns
        if now < self.next_ns:
            return
        self.next_ns = now + self.every_ns
        s = loop.stats
        last = f"{s.last_returns[-1]:.2f}" if s.last_returns else "n/a"
        self.stream.write(f"deploy: t {(now - self.start_ns) / 1e9:.1f} s, {s.ticks} ticks, on time "
                          f"{100 * s.on_time_fraction():.2f} %, unusable reads {s.unusable_reads}, "
                          f"episodes {s.episodes}, last return {last}\n")
        self.stream.flush()


def _recent(summary):
    """Mean return of the (at most 10) last episodes of the session."""
    returns = summary["last_returns"]
    return sum(returns) / len(returns)


def _fault_hint(cfg, summary):
    """A pointer for the commonest fault: a UDP robot that never sent a usable sample."""
    if cfg.adapter == "udp" and summary["acts"] == 0:
        return (f" (is the robot, or 'rtu-control emulator', running and sending to udp "
                f"{cfg.udp.host}:{cfg.udp.port}?)")
    return ""


def load_deploy_config(path=None, overrides=()):
    return load_config(DeployConfig, path, overrides)


def load_resume_config(folder, overrides=()):
    """The DeployConfig of a deploy run folder (its config.yaml) with ``overrides``; ConfigError when
    the folder holds no deploy run."""
    path = Path(folder) / "config.yaml"
    if not path.is_file():
        raise ConfigError(f"--resume {folder}: no config.yaml there (not a deploy run folder)")
    return load_config(DeployConfig, path, overrides)


def run(config, resume=None):
    """Run ``config`` (a DeployConfig) as ``rtu-control deploy`` does: progress lines and a summary on
    stdout; returns the exit status: 0 the run ended, 1 it stopped on a fault (named on stderr), 2 the
    adapter, task, policy or checkpoint could not be used. ``resume``: a run folder to continue."""
    from hardware.base import HardwareError
    try:
        progress = ProgressLines(config.progress_every) if config.progress_every else None
        summary = run_deploy(config, on_tick=progress, echo=lambda line: print(f"deploy: {line}", flush=True),
                             resume=resume)
    except (ConfigError, HardwareError) as err:  # e.g. channels this adapter lacks, safe values
        print(f"error: {type(err).__name__}: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    sa = summary["sense_act_us"]
    print(f"deploy: {summary['ticks']} ticks at {config.loop.rate_hz:g} Hz, stop: {summary['stop_reason']}, "
          f"on time {100 * summary['on_time_fraction']:.2f} %, sense->act p50 {sa['p50']:.0f} / p99 "
          f"{sa['p99']:.0f} us, updates {summary['updates']} (skipped {summary['skipped_updates']}), "
          f"unusable reads {summary['unusable_reads']}, episodes {summary['episodes']}"
          + (f", last 10 episodes' return {_recent(summary):.2f}" if summary.get("last_returns") else "")
          + (f"; process start to first tick {summary['start_to_first_tick_s']:.2f} s"
             if summary.get("start_to_first_tick_s") is not None else "")
          + (f", peak RSS {summary['peak_rss_mb']:.0f} MiB" if summary.get("peak_rss_mb") is not None else "")
          + (f"; results in {summary['output']}" if summary["output"] else ""))
    if summary["fault"]:
        print(f"deploy: stopped on a fault: {summary['fault']}{_fault_hint(config, summary)}",
              file=sys.stderr)
        return EXIT_FAULT
    return EXIT_OK


def main(argv=None):
    """``python -m launch.deploy [--config FILE] [--set key=value ...]``: :func:`run` on that config."""
    return run_command_line(DeployConfig, run, argv, "python -m launch.deploy", __doc__, "loop.duration=30")


if __name__ == "__main__":
    sys.exit(main())

"""The fixed-rate real-time control loop: absolute deadlines, act before learn, learn within budget.

Tick k is released at ``t0 + k * period`` (absolute deadlines: no drift accumulates). Per tick::

    sleep_until(release)                      hybrid sleep-then-spin (controller.clock)
    status = adapter.read(now, period, state) staleness / NaN guards inside the adapter
    reward, terminated = task.step(state, obs)
    action = policy.act(obs)                  forward only
    sent = adapter.write(now, period, cmd)    safety filter inside the adapter; sense->act ends here
    policy.update(...) or policy.skip(...)    update only if (deadline - margin - now) >= estimate
    policy.credit(applied action)             the action actually sent, in policy units

The deadline of tick k is the next release ``t0 + (k+1) * period``. Learning runs only when the time
left before the deadline (minus ``learn_margin``) holds the running estimate of the update time, a
streaming ``learn_quantile`` (p99) tracker: after each update ``est *= 1 + adapt·q`` if it took longer,
else ``est *= 1 - adapt·(1 - q)`` (no allocation; a single preemption outlier moves it by 5 % only).
Otherwise ``policy.skip`` runs, ``skipped_updates`` counts it and ``est *= learn_decay`` so that
learning is retried. Actuation never waits for
learning. A tick whose write completes after its deadline is a deadline miss. After an overrun the
release in progress runs at once (late, seen as jitter); releases that passed entirely are dropped
(``missed_releases``, also deadline misses): no catch-up burst.

Episodes: the first usable tick of an episode has no previous transition (no update/skip). On
termination or truncation the safe command is sent, the update (or skip) runs with the terminal flags,
the episode is reset (``adapter.reset_episode`` when ``task.reset_mode == "adapter"``; a robot
reset is not real-time work, so the schedule restarts after it and its duration is not a miss) and
``policy.reset()`` is called. An unusable read (STALE, INVALID, ESTOP, ERROR) sends the safe command
and interrupts the episode (no update; ``policy.reset()``; a new episode starts when samples return,
without resetting the robot). When no usable sample arrived ``startup_timeout`` seconds after the start
(no robot), or the adapter enters ERROR, the loop stops on a fault: ``summary()["fault"]`` names it ("" for a
run that ended otherwise: done, ``max_ticks``, a signal or ``request_stop``).

During the spin window before each release the loop calls ``adapter.poll()`` when the adapter has
one (the UDP adapter drains and validates its socket there), so the read at the release finds the
latest sample already decoded and the receive path warm.

Statistics are streamed into fixed-bin log histograms (:class:`LogHistogram`, preallocated numpy
counts, 16 bins per octave from 1 ns): sense->act latency, learn time, wake-up jitter, tick work time
(a robot reset excluded), robot reset time; p50/p99/max are read off at the end.

Real-time options (``LoopConfig``): SCHED_FIFO, CPU affinity, mlockall, gc.freeze; each that the OS
refuses falls back with one :class:`RealtimeWarning`. SIGINT/SIGTERM (main thread only) request a clean
stop; the safe command is sent and the adapter deactivated on every exit path, with atexit as a backstop.

The loop drives the interfaces of :mod:`controller.interfaces` (adapter, task, policy); ``obs`` and
``applied_action`` are float64 arrays owned by the loop and overwritten every tick.
"""
import atexit
import dataclasses
import gc
import math
import os
import signal
import threading
import warnings
from typing import Literal

import numpy as np

from controller.clock import FakeClock, MonotonicClock
from controller.config import ConfigError, check
from controller.interfaces import HELD, Policy, State, usable

NS = 1_000_000_000


class RealtimeWarning(RuntimeWarning):
    """A real-time option (SCHED_FIFO, affinity, mlockall, gc.freeze) was refused; the loop goes on."""


@dataclasses.dataclass(frozen=True)
class LoopConfig:
    """YAML section ``loop``. Times in seconds."""
    rate_hz: float = 100.0              # 20 Hz .. 1 kHz
    duration: float = 10.0              # seconds of ticks; 0 runs until stopped (signal, max_ticks)
    max_ticks: int = 0                  # 0 for no limit
    startup_timeout: float = 2.0        # no usable sample this long after the start: stop on a fault (0: wait)
    learn: Literal["budget", "always", "never"] = "budget"
    learn_margin: float = 50e-6         # kept free before the deadline when deciding to learn
    learn_quantile: float = 0.99        # the update-time estimate tracks this quantile
    learn_adapt: float = 0.05           # relative step of the quantile tracker
    learn_decay: float = 0.999          # each skipped update shrinks the estimate (so learning retries)
    learn_estimate_init: float = 0.0    # initial update-time estimate (0: the first update measures)
    spin: float = 200e-6                # spin window of the hybrid sleep (0: sleep only)
    free_run: bool = False              # no schedule: no sleep, no deadlines (lock-step simulators)
    poll_while_spinning: bool = True    # call adapter.poll() (if any) during the spin window
    sched_fifo: bool = False
    priority: int = 80                  # SCHED_FIFO priority 1..99
    cpu_affinity: tuple[int, ...] = ()  # pin the loop thread to these CPUs; () leaves it alone
    mlockall: bool = False
    gc_freeze: bool = True              # gc.freeze() + gc.disable() while the loop runs
    handle_signals: bool = True         # SIGINT/SIGTERM request a clean stop (main thread only)
    seed: int = 0                       # passed to adapter.reset_episode

    def __post_init__(self):
        check(20.0 <= self.rate_hz <= 1000.0, "loop.rate_hz", "a rate in [20, 1000] Hz", self.rate_hz)
        check(0 <= self.duration < math.inf, "loop.duration", "a finite number of seconds >= 0 (0: until "
              "stopped)", self.duration)
        check(self.max_ticks >= 0, "loop.max_ticks", "an integer >= 0", self.max_ticks)
        check(0 <= self.startup_timeout < math.inf, "loop.startup_timeout",
              "a finite number of seconds >= 0 (0: wait for the first sample forever)", self.startup_timeout)
        check(0 <= self.learn_margin < math.inf, "loop.learn_margin", "a finite number of seconds >= 0",
              self.learn_margin)
        check(0.0 < self.learn_decay <= 1.0, "loop.learn_decay", "a number in (0, 1]", self.learn_decay)
        check(0.5 <= self.learn_quantile < 1.0, "loop.learn_quantile", "a number in [0.5, 1)",
              self.learn_quantile)
        check(0.0 < self.learn_adapt <= 0.5, "loop.learn_adapt", "a number in (0, 0.5]", self.learn_adapt)
        check(0 <= self.learn_estimate_init < math.inf, "loop.learn_estimate_init",
              "a finite number of seconds >= 0", self.learn_estimate_init)
        check(0 <= self.spin < 1.0 / self.rate_hz, "loop.spin", "seconds in [0, period)", self.spin)
        check(1 <= self.priority <= 99, "loop.priority", "an integer in [1, 99]", self.priority)
        check(all(c >= 0 for c in self.cpu_affinity), "loop.cpu_affinity", "CPU indices >= 0",
              self.cpu_affinity)
        check(self.seed >= 0, "loop.seed", "an integer >= 0", self.seed)

    @property
    def period_ns(self):
        return int(round(NS / self.rate_hz))


# ----------------------------------------------------------------------------- statistics
class LogHistogram:
    """Streaming histogram of non-negative durations in ns: fixed log bins, preallocated.

    Bin i holds values in [2^(i/16), 2^((i+1)/16)) ns (bin 0 also holds values below 1 ns); 640 bins
    reach 2^40 ns ≈ 18 min. Quantiles are the bin's geometric centre (±2.2 % relative), except that no
    quantile is reported above the exact maximum. ``record`` allocates nothing beyond Python ints.
    """
    PER_OCTAVE = 16
    BINS = 640

    def __init__(self):
        self.counts = np.zeros(self.BINS, dtype=np.int64)
        self.count = 0
        self.total = 0
        self.max = 0
        self.min = None

    def record(self, value_ns):
        v = value_ns if value_ns > 0 else 0
        i = int(math.log2(v) * 16) if v >= 1 else 0
        if i >= 640:
            i = 639
        self.counts[i] += 1
        self.count += 1
        self.total += v
        if v > self.max:
            self.max = v
        if self.min is None or v < self.min:
            self.min = v

    def quantile(self, q):
        """Approximate q-quantile in ns (0 when empty)."""
        if self.count == 0:
            return 0.0
        if q >= 1.0:
            return float(self.max)
        rank = q * self.count
        cum = np.cumsum(self.counts)
        i = int(np.searchsorted(cum, max(rank, 1), side="left"))
        centre = 2.0 ** ((i + 0.5) / self.PER_OCTAVE)
        return float(min(max(centre, self.min), self.max))

    def summary_us(self):
        """{count, mean, p50, p99, max} in microseconds."""
        return {
            "count": self.count,
            "mean": (self.total / self.count / 1e3) if self.count else 0.0,
            "p50": self.quantile(0.50) / 1e3,
            "p99": self.quantile(0.99) / 1e3,
            "max": self.max / 1e3,
        }


class LoopStats:
    """Histograms and counters of one run. Histograms: ``sense_act`` (wake -> write returned),
    ``learn`` (update() duration), ``jitter`` (wake - release), ``work`` (wake -> end of the tick,
    minus a robot reset done in it: not real-time work), ``reset`` (``adapter.reset_episode`` durations)."""

    def __init__(self):
        self.sense_act = LogHistogram()
        self.learn = LogHistogram()
        self.jitter = LogHistogram()
        self.work = LogHistogram()
        self.reset = LogHistogram()
        self.ticks = 0               # ticks executed
        self.releases = 0            # ticks executed + releases dropped after overruns
        self.deadline_misses = 0     # write completed after the deadline, plus dropped releases
        self.missed_releases = 0
        self.overruns = 0            # tick work (incl. learning) ended after the deadline
        self.updates = 0
        self.skipped_updates = 0
        self.acts = 0
        self.safe_ticks = 0          # ticks that sent the safe command instead of acting
        self.unusable_reads = 0
        self.held_reads = 0
        self.episodes = 0
        self.resets = 0              # robot resets (the schedule restarts after each: not misses)
        self.interruptions = 0
        self.terminations = 0
        self.truncations = 0
        self.episode_return = 0.0
        self.last_returns = []
        self.elapsed_ns = 0          # first release -> end of the last tick (resets included)

    def on_time_fraction(self):
        return 1.0 - self.deadline_misses / self.releases if self.releases else 1.0

    def summary(self):
        keys = ("ticks", "releases", "deadline_misses", "missed_releases", "overruns", "updates",
                "skipped_updates", "acts", "safe_ticks", "unusable_reads", "held_reads", "episodes", "resets",
                "interruptions", "terminations", "truncations")
        out = {k: getattr(self, k) for k in keys}
        out["on_time_fraction"] = self.on_time_fraction()
        out["elapsed_s"] = self.elapsed_ns / NS
        out["sense_act_us"] = self.sense_act.summary_us()
        out["learn_us"] = self.learn.summary_us()
        out["jitter_us"] = self.jitter.summary_us()
        out["work_us"] = self.work.summary_us()
        out["reset_us"] = self.reset.summary_us()
        out["last_returns"] = list(self.last_returns[-10:])
        return out


# ----------------------------------------------------------------------------- stand-in policy
class FixedPolicy:
    """A stand-in policy implementing the Policy protocol: action = clip(gain @ obs + bias, low, high).

    obs_dim, action_dim: ints; ``gain`` float64 (action_dim, obs_dim) (default zeros); ``bias``
    (action_dim,); ``act_cost`` / ``learn_cost`` / ``skip_cost``: seconds of busy-waiting on ``clock``
    per call (emulates forward / learning cost; on a FakeClock it advances the fake time). ``discrete``:
    act returns a length-1 array holding the index argmax(gain @ obs + bias). Counts every call
    (``acts``, ``updates``, ``skips``, ``credits``, ``resets``); ``log`` (a list, when ``record=True``)
    keeps ("act"|"update"|"skip"|"credit"|"reset", args) tuples for protocol tests (allocates).
    """

    def __init__(self, obs_dim, action_dim, gain=None, bias=None, low=-1.0, high=1.0, act_cost=0.0,
                 learn_cost=0.0, skip_cost=0.0, clock=None, discrete=False, record=False):
        self.obs_dim = int(obs_dim)
        self.action_dim = int(action_dim)
        self.gain = np.zeros((action_dim, obs_dim)) if gain is None else np.array(gain, dtype=np.float64)
        self.bias = np.zeros(action_dim) if bias is None else np.array(bias, dtype=np.float64)
        if self.gain.shape != (action_dim, obs_dim):
            raise ValueError(f"gain: expected shape ({action_dim}, {obs_dim}), found {self.gain.shape}")
        self.low, self.high = low, high
        self.clock = clock if clock is not None else MonotonicClock()
        self.act_cost_ns = int(act_cost * NS)
        self.learn_cost_ns = int(learn_cost * NS)
        self.skip_cost_ns = int(skip_cost * NS)
        self.discrete = discrete
        self._z = np.zeros(action_dim)
        self._a = np.zeros(1 if discrete else action_dim)
        self.applied = np.zeros(1 if discrete else action_dim)
        self.acts = self.updates = self.skips = self.credits = self.resets = 0
        self.record = record
        self.log = []

    def act(self, obs):
        self.acts += 1
        np.matmul(self.gain, obs, out=self._z)
        self._z += self.bias
        if self.discrete:
            self._a[0] = float(np.argmax(self._z))
        else:
            np.clip(self._z, self.low, self.high, out=self._a)
        if self.act_cost_ns:
            self.clock.spin(self.act_cost_ns)
        if self.record:
            self.log.append(("act", obs.copy()))
        return self._a

    def update(self, reward, obs, terminated, truncated):
        self.updates += 1
        if self.learn_cost_ns:
            self.clock.spin(self.learn_cost_ns)
        if self.record:
            self.log.append(("update", (reward, obs.copy(), terminated, truncated)))

    def skip(self, reward, obs, terminated, truncated):
        self.skips += 1
        if self.skip_cost_ns:
            self.clock.spin(self.skip_cost_ns)
        if self.record:
            self.log.append(("skip", (reward, obs.copy(), terminated, truncated)))

    def credit(self, applied_action):
        self.credits += 1
        self.applied[:] = applied_action
        if self.record:
            self.log.append(("credit", applied_action.copy()))

    def reset(self):
        self.resets += 1
        if self.record:
            self.log.append(("reset", None))


# ----------------------------------------------------------------------------- real-time setup
def apply_realtime(config, warn=True):
    """Apply SCHED_FIFO / affinity / mlockall / gc.freeze as configured to the calling thread.

    Returns a dict {option: "applied" | "refused: <why>" | "off"}; each refusal emits one
    RealtimeWarning (when ``warn``) and the loop continues without it.
    """
    done = {}

    def refuse(name, why):
        done[name] = f"refused: {why}"
        if warn:
            warnings.warn(f"loop.{name}: not applied ({why}); continuing without it",
                          RealtimeWarning, stacklevel=3)

    if config.sched_fifo:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(config.priority))
            done["sched_fifo"] = "applied"
        except (OSError, AttributeError) as err:
            refuse("sched_fifo", f"{type(err).__name__}: {err} (needs CAP_SYS_NICE or rtprio limit)")
    else:
        done["sched_fifo"] = "off"
    if config.cpu_affinity:
        try:
            os.sched_setaffinity(0, set(config.cpu_affinity))
            done["cpu_affinity"] = "applied"
        except (OSError, AttributeError, ValueError) as err:
            refuse("cpu_affinity", f"{type(err).__name__}: {err}")
    else:
        done["cpu_affinity"] = "off"
    if config.mlockall:
        try:
            import ctypes
            libc = _libc()
            MCL_CURRENT, MCL_FUTURE = 1, 2
            if libc.mlockall(MCL_CURRENT | MCL_FUTURE) != 0:
                errno = ctypes.get_errno()
                raise OSError(errno, os.strerror(errno) + " (needs CAP_IPC_LOCK or memlock limit)")
            done["mlockall"] = "applied"
        except (OSError, AttributeError) as err:
            refuse("mlockall", f"{type(err).__name__}: {err}")
    else:
        done["mlockall"] = "off"
    if config.gc_freeze:
        gc.collect()
        gc.freeze()
        gc.disable()
        done["gc_freeze"] = "applied"
    else:
        done["gc_freeze"] = "off"
    return done


def undo_realtime(applied):
    """Re-enable the garbage collector after gc_freeze (scheduling and locks stay with the thread)."""
    if applied.get("gc_freeze") == "applied":
        gc.unfreeze()
        gc.enable()


def release_memory_lock():
    """munlockall(2): undo ``LoopConfig.mlockall`` for the whole process (MCL_FUTURE included).

    For in-process callers that ran a loop and go on with other work (benchmarks, tests); a deployed loop
    keeps its lock until the process exits. Returns True when the call succeeded.
    """
    try:
        return _libc().munlockall() == 0
    except (OSError, AttributeError):
        return False


def _libc():
    """The C library through ctypes, errno kept (mlockall / munlockall)."""
    import ctypes
    import ctypes.util
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


# ----------------------------------------------------------------------------- the loop
class ControlLoop:
    """Drives adapter + task + policy at ``config.rate_hz``. ``run()`` returns ``stats.summary()``.

    adapter: an :class:`~controller.interfaces.AdapterInterface` (brought to ACTIVE by run() if needed,
    left INACTIVE after); task: a :class:`~controller.interfaces.TaskInterface` (bound to the adapter
    here); policy: a :class:`~controller.interfaces.Policy`;
    clock: MonotonicClock (default, with ``config.spin``) or FakeClock (tests).
    ``on_tick(loop, k)`` (optional) is called at the end of each tick (tests, fault schedules).
    A ControlLoop runs once (its statistics and stop request are not reset); build a new one per run.
    """

    def __init__(self, adapter, task, policy, config=LoopConfig(), clock=None, on_tick=None):
        self.adapter = adapter
        self.task = task
        self.policy = policy
        self.config = config
        self.clock = clock if clock is not None else MonotonicClock(int(config.spin * NS))
        self.on_tick = on_tick
        self.period_ns = config.period_ns
        self.period = self.period_ns / NS
        task.bind(adapter)
        self.state = np.zeros(adapter.n_states)
        self.obs = np.zeros(task.obs_dim)
        self.command = np.zeros(adapter.n_commands)
        self.applied = np.zeros(task.action_dim)
        self.stats = LoopStats()
        self.stop_requested = False
        self.stop_reason = ""
        self.fault = ""              # why the loop stopped on a fault ("" when it did not)
        self.realtime = {}
        self._estimate_ns = config.learn_estimate_init * NS
        self._margin_ns = int(config.learn_margin * NS)
        self._up = 1.0 + config.learn_adapt * config.learn_quantile
        self._down = 1.0 - config.learn_adapt * (1.0 - config.learn_quantile)

    # ------------------------------------------------------------------ control
    def request_stop(self, reason="requested"):
        """Ask the loop to stop at the end of the current tick (thread- and signal-safe)."""
        self.stop_requested = True
        if not self.stop_reason:
            self.stop_reason = reason

    def stop_on_fault(self, reason):
        """Stop at the end of the current tick because of a fault; ``summary()["fault"]`` names it."""
        if not self.fault:
            self.fault = reason
        self.request_stop(reason)

    def _signal_handler(self, signum, frame):
        self.request_stop(f"signal {signal.Signals(signum).name}")

    def _safe_stop(self):
        """Send the safe command and deactivate, whatever happened (idempotent)."""
        if self.adapter.lifecycle is State.ACTIVE:
            try:
                self.adapter.deactivate(self.clock.now_ns() / NS)
            except Exception:  # noqa: BLE001 - best effort at exit; the adapter logs last_error
                pass

    # ------------------------------------------------------------------ learn decision
    def _learn_or_skip(self, reward, terminated, truncated, deadline_ns):
        policy = self.policy
        learn = self.config.learn
        if learn == "always" or (learn == "budget" and
                                 deadline_ns - self._margin_ns - self.clock.now_ns()
                                 >= self._estimate_ns):
            t0 = self.clock.now_ns()
            policy.update(reward, self.obs, terminated, truncated)
            dt = self.clock.now_ns() - t0
            self.stats.learn.record(dt)
            self.stats.updates += 1
            # multiplicative stochastic quantile tracker: one preemption outlier moves the estimate
            # by a factor (1 + adapt * q) only, while a shift of the typical cost is followed
            est = self._estimate_ns
            if est <= 0:
                self._estimate_ns = dt
            elif dt > est:
                self._estimate_ns = est * self._up
            else:
                self._estimate_ns = est * self._down
        else:
            policy.skip(reward, self.obs, terminated, truncated)
            self.stats.skipped_updates += 1
            self._estimate_ns *= self.config.learn_decay

    # ------------------------------------------------------------------ run
    def run(self):
        cfg = self.config
        adapter, task, policy, clock, stats = self.adapter, self.task, self.policy, self.clock, self.stats
        # real-time setup first: gc.collect() inside takes tens of ms, during which an active
        # adapter's sensor messages would queue up and arrive late at the first read
        fake = isinstance(clock, FakeClock)
        self.realtime = apply_realtime(cfg) if not fake else {}
        handlers = {}
        try:
            if adapter.lifecycle is State.UNCONFIGURED:
                adapter.configure()
            if adapter.lifecycle is State.INACTIVE:
                adapter.activate(clock.now_ns() / NS)
        except BaseException:
            undo_realtime(self.realtime)
            raise
        if cfg.handle_signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                handlers[sig] = signal.signal(sig, self._signal_handler)
        atexit.register(self._safe_stop)
        period_ns, period = self.period_ns, self.period
        max_ticks = cfg.max_ticks
        if cfg.duration > 0:
            by_time = int(round(cfg.duration * cfg.rate_hz))
            max_ticks = min(max_ticks, by_time) if max_ticks else by_time
        state, obs, command, applied = self.state, self.obs, self.command, self.applied
        max_steps = task.max_episode_steps
        reset_adapter = task.reset_mode == "adapter"
        has_prev = False          # a transition is pending (its update/skip has not run yet)
        in_episode = False
        steps = 0
        episode_return = 0.0
        episodes_started = 0
        reanchor = False
        free_run = cfg.free_run
        poll = getattr(adapter, "poll", None) if cfg.poll_while_spinning else None
        active = State.ACTIVE     # bound once: an enum class attribute lookup costs ~0.3 µs
        startup_ns = int(cfg.startup_timeout * NS)
        seen_usable = False       # a usable sample arrived since the start
        try:
            t0 = t_first = clock.now_ns()
            k = 0
            while not self.stop_requested and (max_ticks == 0 or stats.ticks < max_ticks):
                release = t0 + k * period_ns
                reset_ns = 0
                if free_run:        # no schedule: no deadline, no jitter, learning always fits
                    wake = clock.now_ns()
                    deadline = wake + (1 << 62)
                else:
                    deadline = release + period_ns
                    clock.sleep_until(release, poll)
                    wake = clock.now_ns()
                    stats.jitter.record(wake - release)
                now = wake / NS
                status = adapter.read(now, period, state)
                if usable(status):
                    seen_usable = True
                    if status == HELD:
                        stats.held_reads += 1
                    if not in_episode:
                        task.start_episode(state, obs)
                        in_episode = True
                        has_prev = False
                        steps = 0
                        episode_return = 0.0
                        episodes_started += 1
                        reward, terminated = 0.0, False
                    else:
                        reward, terminated = task.step(state, obs)
                        steps += 1
                        episode_return += reward
                    truncated = (not terminated) and max_steps > 0 and steps >= max_steps
                    if not (terminated or truncated):
                        action = policy.act(obs)
                        task.action_to_command(action, command)
                        sent = adapter.write(now, period, command)
                        t_act = clock.now_ns()
                        stats.sense_act.record(t_act - wake)
                        stats.acts += 1
                        if t_act > deadline:
                            stats.deadline_misses += 1
                        if has_prev:
                            self._learn_or_skip(reward, False, False, deadline)
                        task.command_to_action(sent, applied)
                        policy.credit(applied)
                        has_prev = True
                    else:
                        adapter.write_safe(now, period)
                        t_act = clock.now_ns()
                        stats.sense_act.record(t_act - wake)
                        stats.safe_ticks += 1
                        if t_act > deadline:
                            stats.deadline_misses += 1
                        if has_prev:
                            self._learn_or_skip(reward, terminated, truncated, deadline)
                        if terminated:
                            stats.terminations += 1
                        else:
                            stats.truncations += 1
                        stats.episodes += 1
                        stats.last_returns.append(episode_return)
                        if len(stats.last_returns) > 100:
                            del stats.last_returns[0]
                        if reset_adapter:
                            t_reset = clock.now_ns()
                            adapter.reset_episode(cfg.seed + episodes_started)
                            reset_ns = clock.now_ns() - t_reset
                            stats.reset.record(reset_ns)
                            stats.resets += 1
                            reanchor = True
                        policy.reset()
                        has_prev = False
                        in_episode = False
                else:
                    stats.unusable_reads += 1
                    if adapter.lifecycle is active:
                        adapter.write_safe(now, period)
                    t_act = clock.now_ns()
                    stats.sense_act.record(t_act - wake)
                    stats.safe_ticks += 1
                    if t_act > deadline:
                        stats.deadline_misses += 1
                    if in_episode:
                        stats.interruptions += 1
                        policy.reset()
                        has_prev = False
                        in_episode = False
                    elif not seen_usable and startup_ns and wake - t_first >= startup_ns:
                        self.stop_on_fault(f"no usable sample within loop.startup_timeout = "
                                           f"{cfg.startup_timeout:g} s ({stats.unusable_reads} unusable reads)")
                if adapter.lifecycle is not active:   # on_error during read or write
                    self.stop_on_fault(f"adapter error: {adapter.last_error}")
                stats.ticks += 1
                stats.releases += 1
                if self.on_tick is not None:
                    self.on_tick(self, k)
                end = clock.now_ns()
                stats.work.record(end - wake - reset_ns)
                k += 1
                if reanchor:
                    # a robot reset is not real-time work: restart the schedule, next release now
                    reanchor = False
                    t0 = end - k * period_ns
                elif end > deadline:
                    stats.overruns += 1
                    # the release now in progress runs at once (late); older ones are dropped
                    behind = (end - t0) // period_ns
                    if behind > k:
                        dropped = behind - k
                        stats.missed_releases += dropped
                        stats.deadline_misses += dropped
                        stats.releases += dropped
                        k = behind
            stats.elapsed_ns = clock.now_ns() - t_first
            if not self.stop_reason:
                self.stop_reason = "done"
        finally:
            undo_realtime(self.realtime)
            self._safe_stop()
            atexit.unregister(self._safe_stop)
            for sig, old in handlers.items():
                signal.signal(sig, old)
        return self.summary()

    def summary(self):
        out = self.stats.summary()
        out["stop_reason"] = self.stop_reason
        out["fault"] = self.fault
        out["rate_hz"] = self.config.rate_hz
        out["realtime"] = dict(self.realtime)
        out["safety"] = self.adapter.safety.counters()
        out["adapter"] = self.adapter.counters()
        return out


def make_loop_config(path=None, overrides=()):
    """LoopConfig from a YAML file whose top level is the loop section (or defaults)."""
    from controller.config import load_config
    return load_config(LoopConfig, path, overrides)


__all__ = ["ConfigError", "ControlLoop", "FixedPolicy", "LogHistogram", "LoopConfig", "LoopStats",
           "Policy", "RealtimeWarning", "apply_realtime"]

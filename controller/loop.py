"""The fixed-rate real-time control loop: absolute deadlines, act before learn, learn within budget.

Tick k is released at ``t0 + k * period`` (absolute deadlines: no drift accumulates). Per tick::

    sleep_until(release)                        hybrid sleep-then-spin (controller.clock)
    status = adapter.read(now, period, state)   staleness / NaN guards inside the adapter
    reward, terminated = task.step(state, obs, applied)     applied: the previous tick's action
    action = policy.act(obs)                    forward only
    task.action_to_command(action, command)
    sent = adapter.write(now, period, command)  safety filter inside the adapter; sense->act ends here
    policy.update(...) or policy.skip(...)      update only if (deadline - margin - now) >= estimate
    task.command_to_action(sent, applied)       the command actually sent, in policy units, once
    policy.credit(applied)

The deadline of tick k is the next release ``t0 + (k+1) * period``. Learning runs only when the time left
before the deadline (minus ``learn_margin``) holds the running estimate of the update time, a streaming
``learn_quantile`` (p99) tracker: after each update ``est *= 1 + adapt·q`` if it took longer, else
``est *= 1 - adapt·(1 - q)`` (no allocation; a single preemption outlier moves it by 5 % only).
Otherwise ``policy.skip`` runs, ``skipped_updates`` counts it and ``est *= learn_decay`` so that
learning is retried. Actuation never waits for learning. A tick whose write completes after its deadline
is a deadline miss. After an overrun the release in progress runs at once (late, seen as jitter);
releases that passed entirely are dropped (``missed_releases``, also deadline misses): no catch-up burst.

Episodes: with ``task.reset_mode == "adapter"`` the robot is reset (``adapter.reset_episode(seed)``)
before the first tick, so the first episode starts from a reset too, and the first release is half a
period later. The first usable tick of an episode has no previous transition (no update/skip). On
termination or truncation the safe command is sent, the update (or skip) runs with the terminal flags,
the episode is reset (``adapter.reset_episode`` when ``task.reset_mode == "adapter"``; a robot
reset is not real-time work, so the schedule restarts after it and its duration is not a miss; the
next release is half a period after the reset returned, so that the reads of a robot streaming samples
at the loop's rate fall mid-way between their arrivals) and ``policy.reset()`` is called. An unusable read (STALE, INVALID, ESTOP, ERROR) sends the safe command
and interrupts the episode (no update; ``policy.reset()``; a new episode starts when samples return,
without resetting the robot). When no usable sample arrived ``startup_timeout`` seconds after the start
(no robot), or the adapter enters ERROR, the loop stops on a fault: ``summary()["fault"]`` names it ("" for a
run that ended otherwise: done, ``max_ticks``, a signal or ``request_stop``).

During the spin window before each release the loop calls ``adapter.poll()`` when the adapter has
one (the UDP adapter drains and validates its socket there), so the read at the release finds the
latest sample already decoded and the receive path warm.

Statistics stream into fixed-bin log histograms (:mod:`controller.loop_stats`): sense->act latency,
learn time, wake-up jitter, tick work time (a robot reset excluded), robot reset time.

Real-time options (``LoopConfig``, applied by :mod:`controller.realtime`): SCHED_FIFO, CPU affinity,
mlockall, gc.freeze; each that the OS refuses falls back with one ``RealtimeWarning``. SIGINT/SIGTERM
(main thread only) request a clean stop; the safe command is sent and the adapter deactivated on every
exit path, with atexit as a backstop.

The loop drives the interfaces of :mod:`controller.interfaces` (adapter, task, policy). It owns the
float64 arrays ``state``, ``obs``, ``command`` and ``applied``, allocated once and overwritten every tick;
``applied`` is the one copy of the action actually applied (finite, within the task's action bounds):
the policy is credited with it and the task's next reward reads it.
"""
import atexit
import signal
import threading

import numpy as np

from controller.clock import NS, FakeClock, MonotonicClock
from controller.config import ConfigError
from controller.fixed_policy import FixedPolicy
from controller.interfaces import HELD, Policy, State, usable
from controller.loop_config import LoopConfig
from controller.loop_stats import LogHistogram, LoopStats
from controller.realtime import RealtimeWarning, apply_realtime, release_memory_lock, undo_realtime


class ControlLoop:
    """Drives adapter + task + policy at ``config.rate_hz``. ``run()`` returns ``stats.summary()``.

    adapter: an :class:`~controller.interfaces.AdapterInterface` (brought to ACTIVE by run() if needed,
    left INACTIVE after); task: a :class:`~controller.interfaces.TaskInterface` (bound to the adapter
    here); policy: a :class:`~controller.interfaces.Policy`;
    clock: MonotonicClock (default, with ``config.spin``) or FakeClock (tests).
    ``on_tick(loop, k)`` (optional) is called at the end of each tick (tests, fault schedules).
    ``on_episode_end(loop, episode_return, steps, terminated)`` (optional) is called when an episode
    ends, after the safe command and the episode's last update, before the robot's reset and
    ``policy.reset()``: the place for work that is not real-time (a checkpoint), done while the robot
    holds its safe command. Its time counts as reset time and the schedule restarts after it.
    A ControlLoop runs once (its statistics and stop request are not reset); build a new one per run.
    """

    def __init__(self, adapter, task, policy, config=LoopConfig(), clock=None, on_tick=None,
                 on_episode_end=None):
        self.adapter = adapter
        self.task = task
        self.policy = policy
        self.config = config
        self.clock = clock if clock is not None else MonotonicClock(int(config.spin * NS))
        self.on_tick = on_tick
        self.on_episode_end = on_episode_end
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

    def _reset_robot(self, seed):
        """adapter.reset_episode(seed), timed into the reset histogram and counted; returns its ns."""
        t0 = self.clock.now_ns()
        self.adapter.reset_episode(seed)
        dt = self.clock.now_ns() - t0
        self.stats.reset.record(dt)
        self.stats.resets += 1
        return dt

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
        active = State.ACTIVE     # bound once: an enum class attribute lookup is slow on the tick path
        startup_ns = int(cfg.startup_timeout * NS)
        seen_usable = False       # a usable sample arrived since the start
        try:
            if reset_adapter:   # every episode starts from a robot reset, the first one too
                self._reset_robot(cfg.seed)
            # after a reset, half a period on (as after every later reset)
            t0 = t_first = stats.first_tick_ns = clock.now_ns() + (
                period_ns >> 1 if reset_adapter and not free_run else 0)
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
                        reward, terminated = task.step(state, obs, applied)
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
                        if self.on_episode_end is not None:
                            t_hook = clock.now_ns()
                            self.on_episode_end(self, episode_return, steps, terminated)
                            reset_ns += clock.now_ns() - t_hook
                            reanchor = True
                        if reset_adapter:
                            reset_ns += self._reset_robot(cfg.seed + episodes_started)
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
                                           f"{cfg.startup_timeout:g} s ({stats.unusable_reads} unusable "
                                           f"reads)")
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
                    # half a period on: a robot streaming at the loop's rate sent its reset-done sample
                    # just now, so reads land mid-way between its samples, not racing their arrival
                    t0 = end - k * period_ns + (period_ns >> 1 if reset_adapter else 0)
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


# FixedPolicy, LogHistogram, LoopStats, Policy and the real-time helpers are re-exported: their
# public name has always been controller.loop.<name>
__all__ = ["ConfigError", "ControlLoop", "FixedPolicy", "LogHistogram", "LoopConfig", "LoopStats",
           "Policy", "RealtimeWarning", "apply_realtime", "make_loop_config", "release_memory_lock",
           "undo_realtime"]

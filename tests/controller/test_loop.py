"""controller.loop under a fake clock: deadlines, overrun accounting, the learn-budget skip policy, the
Policy call protocol, episodes, safety fall-backs, signals and statistics. Deterministic: time moves only
through the fake clock (policy costs spin it)."""
import math
import os
import signal

import numpy as np
import pytest

from controller.clock import FakeClock
from controller.config import ConfigError, load_config
from controller.loop import ControlLoop, FixedPolicy, LoopConfig
from hardware.base import State
from hardware.mock import MockAdapter, MockConfig
from hardware.safety import SafetyConfig
from hardware.tasks import TaskConfig, TrackTask

MS = 1_000_000


def make(rate=100.0, ticks=20, policy_kw=None, safety=SafetyConfig(), task=None, **loop_kw):
    clock = FakeClock()
    adapter = MockAdapter(MockConfig(joints=2, record=True), safety)
    # no robot resets unless a test asks for them: a reset moves the schedule by half a period
    task = task or TrackTask(TaskConfig(max_episode_steps=0, reset="none"))
    kw = dict(gain=-0.5 * np.eye(2), bias=[0.3, -0.2], clock=clock, record=True)
    kw.update(policy_kw or {})
    policy = FixedPolicy(2, 2, **kw)
    cfg = LoopConfig(rate_hz=rate, duration=0, max_ticks=ticks, handle_signals=False, **loop_kw)
    return ControlLoop(adapter, task, policy, cfg, clock=clock), adapter, policy, clock


def test_absolute_deadlines_no_drift():
    loop, adapter, policy, clock = make(rate=100.0, ticks=50)
    t0 = clock.now_ns()
    out = loop.run()
    assert out["ticks"] == 50 and out["deadline_misses"] == 0 and out["missed_releases"] == 0
    assert clock.now_ns() == t0 + 49 * 10 * MS          # the last release, exactly
    assert out["jitter_us"]["max"] == 0.0
    assert out["on_time_fraction"] == 1.0
    assert policy.acts == 50 and policy.updates == 49 and policy.credits == 50
    assert adapter.lifecycle is State.INACTIVE


def test_learning_skipped_when_budget_too_small_and_actuation_not_delayed():
    # act 6 ms + update 5 ms in a 10 ms period: the first update runs (estimate 0) and overruns by 1 ms;
    # from then on 10 - 6 - margin < 5 ms, so every update is skipped and counted.
    loop, adapter, policy, clock = make(rate=100.0, ticks=30,
                                        policy_kw=dict(act_cost=0.006, learn_cost=0.005),
                                        learn_decay=1.0)
    out = loop.run()
    assert policy.updates == 1 and out["updates"] == 1
    assert policy.skips == 28 and out["skipped_updates"] == 28
    assert out["overruns"] == 1 and out["missed_releases"] == 0
    assert out["deadline_misses"] == 0                  # every write landed inside its period
    assert out["sense_act_us"]["max"] <= 6000.0 * 1.001 + 1000.0  # act cost (+1 ms late start once)
    assert out["learn_us"]["max"] == pytest.approx(5000.0)


def test_estimate_decays_so_learning_is_retried():
    loop, _, policy, _ = make(rate=100.0, ticks=200, policy_kw=dict(act_cost=0.006, learn_cost=0.005),
                              learn_decay=0.98)
    loop.run()
    assert policy.updates > 1 and policy.skips > 1
    assert policy.updates + policy.skips == 199


def test_overrun_drops_whole_periods_and_counts_them():
    # learn="always" with a 25 ms update in a 10 ms period. Tick 0 (release 0) has no update; from
    # tick 1 (t = 10 ms) each tick lasts 25 ms and the release in progress runs at once, so the 9
    # updates end at 235 ms, inside release 23: releases 0..23 are 24, of which 10 ran and 14 dropped.
    loop, _, policy, clock = make(rate=100.0, ticks=10, policy_kw=dict(learn_cost=0.025), learn="always")
    t0 = clock.now_ns()
    out = loop.run()
    assert clock.now_ns() - t0 == 235 * MS
    assert out["ticks"] == 10 and policy.updates == 9
    assert out["overruns"] == 9
    assert out["releases"] == out["ticks"] + out["missed_releases"]
    assert out["missed_releases"] == 13           # releases 23 (in progress at the end) not counted
    assert out["deadline_misses"] == 13
    assert out["jitter_us"]["max"] == pytest.approx(5000.0)   # tick runs 5 ms into its period


def test_learn_never_and_free_run():
    loop, _, policy, clock = make(ticks=10, learn="never")
    loop.run()
    assert policy.updates == 0 and policy.skips == 9
    loop, _, policy, clock = make(ticks=10, free_run=True, policy_kw=dict(learn_cost=0.001))
    t0 = clock.now_ns()
    out = loop.run()
    assert clock.sleeps == 0 and clock.now_ns() - t0 == 9 * MS and out["deadline_misses"] == 0


class EndAt(TrackTask):
    """TrackTask that terminates at step ``n`` of each episode."""
    name = "end-at"

    def __init__(self, n, **kw):
        super().__init__(TaskConfig(**kw))
        self.n, self.k = n, 0

    def start_episode(self, state, obs):
        self.k = 0
        super().start_episode(state, obs)

    def step(self, state, obs, applied):
        self.k += 1
        r, _ = super().step(state, obs, applied)
        return r, self.k >= self.n


def test_policy_call_protocol_with_termination():
    loop, adapter, policy, _ = make(ticks=8, task=EndAt(3, max_episode_steps=0))
    out = loop.run()
    seq = [name for name, _ in policy.log]
    # episode: act credit | act update credit | act update credit | (terminal) update reset | ...
    ep = ["act", "credit", "act", "update", "credit", "act", "update", "credit", "update", "reset"]
    assert seq[:10] == ep and seq[10:20] == ep
    terminal = [args for name, args in policy.log if name == "update" and args[2]]
    assert len(terminal) == 2 and not any(args[3] for args in terminal)
    assert out["terminations"] == 2 and out["episodes"] == 2
    assert out["safe_ticks"] == 2


def test_truncation_resets_adapter_and_policy():
    loop, adapter, policy, _ = make(ticks=12, task=TrackTask(TaskConfig(max_episode_steps=4)))
    resets = []
    adapter.reset_episode = lambda seed=None: resets.append(seed) or True
    out = loop.run()
    truncated = [args for name, args in policy.log if name == "update" and args[3]]
    assert out["truncations"] == 2 and len(truncated) == 2 and policy.resets == 2
    assert resets == [0, 1, 2]          # before the first episode, then after each (seed + episode)


def test_stale_sensor_sends_safe_command_within_timeout():
    # 100 Hz, stale_timeout 45 ms: the mock goes silent at tick 10; STALE from the 5th silent read on
    safety = SafetyConfig(stale_timeout=0.045)
    loop, adapter, policy, _ = make(ticks=30, safety=safety)

    def go_silent(lp, k):
        if k == 9:
            adapter.silent = True
    loop.on_tick = go_silent
    out = loop.run()
    # last sample at tick 9 (90 ms); reads at 100..130 ms are HELD; at 140 ms the sample is 50 ms old
    # > 45 ms: STALE from tick 14 on, i.e. within stale_timeout + one period of the last sample
    assert adapter.safety.stale_events == 1
    assert out["unusable_reads"] == 30 - 14
    assert out["held_reads"] == 4 and out["interruptions"] == 1
    # the mock records every command: the safe (zero) command from tick 14 on (plus the one sent on
    # deactivate), never outside the limits; the tick before still acted
    writes = np.array(adapter.written)
    assert np.all(np.abs(writes) <= 1.0)
    assert np.all(writes[-17:] == 0.0) and np.any(writes[-18] != 0.0)
    assert policy.resets == 1


def test_nan_action_is_replaced_by_safe_command():
    loop, adapter, policy, _ = make(ticks=5, policy_kw=dict(bias=[np.nan, 0.0]))
    loop.run()
    assert adapter.safety.nan_commands == 5
    assert all(np.all(w == 0.0) for w in adapter.written)


def test_adapter_error_stops_loop_and_reaches_safe_state():
    loop, adapter, policy, _ = make(ticks=50, safety=SafetyConfig(max_consecutive_errors=3))

    def fail(lp, k):
        if k == 4:
            adapter.fail_reads = 100
    loop.on_tick = fail
    out = loop.run()
    assert adapter.lifecycle is State.ERROR
    assert out["stop_reason"].startswith("adapter error") and out["ticks"] == 8
    assert np.all(adapter.written[-1] == 0.0)


def test_write_errors_stop_loop_without_exception():
    loop, adapter, policy, _ = make(ticks=50, safety=SafetyConfig(max_consecutive_errors=3))

    def fail(lp, k):
        if k == 4:
            adapter.fail_writes = 100
    loop.on_tick = fail
    out = loop.run()
    assert adapter.lifecycle is State.ERROR and out["ticks"] == 8
    assert out["stop_reason"].startswith("adapter error") and "injected write failure" in out["stop_reason"]


def test_sigint_requests_clean_stop_and_sends_safe_command():
    loop, adapter, policy, _ = make(ticks=100)
    loop.config = LoopConfig(rate_hz=100, duration=0, max_ticks=100, handle_signals=True)
    previous = signal.getsignal(signal.SIGINT)

    def interrupt(lp, k):
        if k == 6:
            os.kill(os.getpid(), signal.SIGINT)
    loop.on_tick = interrupt
    out = loop.run()
    assert out["stop_reason"] == "signal SIGINT" and out["ticks"] == 7
    assert adapter.lifecycle is State.INACTIVE and np.all(adapter.written[-1] == 0.0)
    assert signal.getsignal(signal.SIGINT) is previous


def test_exception_in_policy_still_sends_safe_command():
    loop, adapter, policy, _ = make(ticks=20)

    def boom(lp, k):
        if k == 3:
            raise RuntimeError("policy exploded")
    loop.on_tick = boom
    with pytest.raises(RuntimeError, match="exploded"):
        loop.run()
    assert adapter.lifecycle is State.INACTIVE and np.all(adapter.written[-1] == 0.0)


def test_loop_config_validation(tmp_path):
    with pytest.raises(ConfigError, match="rate_hz"):
        LoopConfig(rate_hz=10)
    with pytest.raises(ConfigError, match="rate_hz"):
        LoopConfig(rate_hz=2000)
    p = tmp_path / "loop.yaml"
    p.write_text("rate_hz: 500\nlearn: sometimes\n")
    with pytest.raises(ConfigError, match="learn"):
        load_config(LoopConfig, p)
    assert load_config(LoopConfig, None, ["rate_hz=1000"]).period_ns == 1_000_000
    assert math.isclose(LoopConfig(rate_hz=500).period_ns, 2_000_000)


def test_ticks_do_not_grow_memory():
    """Statistics and buffers are preallocated: 5000 more ticks leave the heap where it was."""
    import tracemalloc
    loop, adapter, policy, _ = make(ticks=0, policy_kw=dict(record=False))
    adapter.config = MockConfig(joints=2, record=False)
    marks = {}

    def mark(lp, k):
        if k == 1000:
            marks["start"] = tracemalloc.get_traced_memory()[0]
        if k == 6000:
            marks["end"] = tracemalloc.get_traced_memory()[0]
            lp.request_stop("measured")
    loop.on_tick = mark
    tracemalloc.start()
    try:
        loop.run()
    finally:
        tracemalloc.stop()
    assert marks["end"] - marks["start"] < 4096, marks


def test_summary_names_the_fault_that_stopped_the_loop():
    loop, adapter, policy, _ = make(ticks=50, safety=SafetyConfig(max_consecutive_errors=3))

    def fail(lp, k):
        if k == 4:
            adapter.fail_reads = 100
    loop.on_tick = fail
    out = loop.run()
    assert out["fault"].startswith("adapter error") and "injected read failure" in out["fault"]
    assert out["stop_reason"] == out["fault"]


def test_summary_of_a_run_without_a_fault_has_an_empty_fault():
    loop, adapter, policy, _ = make(ticks=10)
    out = loop.run()
    assert out["fault"] == "" and out["stop_reason"] == "done"


def test_a_signal_stop_is_not_a_fault():
    loop, adapter, policy, _ = make(ticks=100)

    def stop(lp, k):
        if k == 3:
            lp.request_stop("signal SIGTERM")
    loop.on_tick = stop
    out = loop.run()
    assert out["fault"] == "" and out["stop_reason"] == "signal SIGTERM"


def test_no_usable_sample_within_the_startup_timeout_is_a_fault():
    loop, adapter, policy, clock = make(rate=100.0, ticks=200, startup_timeout=0.2)
    adapter.silent = True                       # no robot: not one sample
    out = loop.run()
    assert out["fault"].startswith("no usable sample within loop.startup_timeout = 0.2 s")
    assert out["stop_reason"] == out["fault"]
    assert 20 <= out["ticks"] <= 22 and out["unusable_reads"] == out["ticks"] and policy.acts == 0


def test_startup_timeout_0_waits_for_the_first_sample_forever():
    loop, adapter, policy, clock = make(rate=100.0, ticks=200, startup_timeout=0.0)
    adapter.silent = True
    out = loop.run()
    assert out["fault"] == "" and out["ticks"] == 200 and out["unusable_reads"] == 200


def test_startup_timeout_does_not_apply_once_a_sample_arrived():
    loop, adapter, policy, clock = make(rate=100.0, ticks=100, startup_timeout=0.1)

    def go_silent(lp, k):
        if k == 4:
            adapter.silent = True
    loop.on_tick = go_silent
    out = loop.run()
    assert out["fault"] == "" and out["ticks"] == 100 and out["unusable_reads"] > 50


@pytest.mark.parametrize("value", [-1.0, math.inf, math.nan])
def test_startup_timeout_is_validated(value):
    with pytest.raises(ConfigError, match="loop.startup_timeout: expected a finite number of seconds >= 0"):
        LoopConfig(startup_timeout=value)


def test_a_robot_reset_is_not_tick_work_and_is_recorded_on_its_own():
    loop, adapter, policy, clock = make(ticks=12, task=TrackTask(TaskConfig(max_episode_steps=4)))

    def slow_reset(seed=None):
        clock.advance(500 * MS)     # a robot that takes half a second to reset
        return True
    adapter.reset_episode = slow_reset
    out = loop.run()
    assert out["resets"] == 3           # before the first episode, and after each of the two that end
    assert out["work_us"]["max"] < 1000.0
    assert out["reset_us"]["count"] == 3 and out["reset_us"]["max"] == pytest.approx(500_000.0)


def test_after_a_robot_reset_the_next_release_is_half_a_period_on():
    """A robot streaming at the loop's rate sent its reset-done sample as the reset returned: the reads
    that follow fall mid-way between its samples (the release half a period after the reset)."""
    loop, adapter, policy, clock = make(rate=100.0, ticks=7, task=TrackTask(TaskConfig(max_episode_steps=4)))
    reset_end = []

    def reset(seed=None):
        clock.advance(3 * MS)
        reset_end.append(clock.now_ns())
        return True
    adapter.reset_episode = reset
    reads = []
    read = adapter.read

    def timed_read(now, period, state):
        reads.append(clock.now_ns())
        return read(now, period, state)
    adapter.read = timed_read
    loop.run()
    for end in reset_end:     # the reset before the first episode, and the one after it
        after = [t for t in reads if t > end]
        assert after[0] == end + 5 * MS and after[1] - after[0] == 10 * MS
    assert len(reset_end) == 2


def test_on_episode_end_runs_before_the_reset_with_the_episode_figures():
    calls = []
    loop, adapter, policy, clock = make(ticks=11, task=TrackTask(TaskConfig(max_episode_steps=4)))
    resets = []
    adapter.reset_episode = lambda seed=None: resets.append(len(calls)) or True
    loop.on_episode_end = lambda lp, ret, steps, terminated: calls.append((steps, terminated, lp.stats.episodes))
    out = loop.run()
    assert calls == [(4, False, 1), (4, False, 2)] and resets == [0, 1, 2] and out["episodes"] == 2

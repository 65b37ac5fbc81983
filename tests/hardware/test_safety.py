"""hardware.safety through the mock adapter: guards, clamps, rate limit, watchdogs, safe commands."""
import numpy as np
import pytest

from controller.config import ConfigError, load_config
from hardware.base import ReadStatus, State
from hardware.mock import MockAdapter, MockConfig
from hardware.safety import SafetyConfig


def mock(**safety):
    a = MockAdapter(MockConfig(joints=2, position_limit=1.0, record=True), SafetyConfig(**safety))
    a.configure()
    a.activate(now=0.0)
    return a


def test_clamp_and_rate_limit():
    a = mock(max_rate=10.0)                # 10 rad/s: 0.1 rad per 10 ms tick
    sent = a.write(0.01, 0.01, np.array([5.0, -0.05]))
    assert np.allclose(sent, [0.1, -0.05])
    assert a.safety.clamped == 1 and a.safety.rate_limited == 1
    for i in range(20):
        sent = a.write(0.02 + 0.01 * i, 0.01, np.array([5.0, -5.0]))
    assert np.allclose(sent, [1.0, -1.0])  # ramps to the clamped limit, never beyond
    assert all(np.all(np.abs(w) <= 1.0) for w in a.written)
    steps = np.abs(np.diff(np.array(a.written[1:]), axis=0))
    assert np.all(steps <= 0.1 + 1e-12)


@pytest.mark.parametrize("mode,expected", [("zero", [0.0, 0.0]), ("hold_position", [0.4, -0.3]),
                                           ("hold_last", [0.4, -0.3]), ("fixed", [0.2, 0.5])])
def test_safe_command_modes(mode, expected):
    kw = {"safe_values": (0.2, 0.5)} if mode == "fixed" else {}
    a = mock(safe_command=mode, **kw)
    out = np.zeros(4)
    a.write(0.01, 0.01, np.array([0.4, -0.3]))
    a.read(0.02, 0.01, out)                # the mock mirrors the command into the positions
    sent = a.write_safe(0.03, 0.01)
    assert np.allclose(sent, expected)
    a.deactivate(now=0.04)
    assert np.allclose(a.written[-1], expected)


def test_nan_observation_guard_and_consecutive_error_limit():
    a = mock(max_consecutive_errors=3)
    out = np.zeros(4)
    a.nan_reads = 2
    assert a.read(0.01, 0.01, out) == ReadStatus.INVALID
    assert a.read(0.02, 0.01, out) == ReadStatus.INVALID
    assert a.read(0.03, 0.01, out) == ReadStatus.OK      # resets the consecutive count
    assert a.safety.nan_states == 2 and a.safety.consecutive_errors == 0
    a.fail_reads = 3
    assert a.read(0.04, 0.01, out) == ReadStatus.ERROR
    assert a.read(0.05, 0.01, out) == ReadStatus.ERROR
    assert a.lifecycle is State.ACTIVE
    assert a.read(0.06, 0.01, out) == ReadStatus.ERROR
    assert a.lifecycle is State.ERROR and "3 consecutive errors" in a.last_error
    assert np.all(a.written[-1] == 0.0)


def test_write_failures_count_and_trip_error():
    a = mock(max_consecutive_errors=2)
    a.fail_writes = 2
    a.write(0.01, 0.01, np.array([0.1, 0.1]))
    assert a.lifecycle is State.ACTIVE and a.safety.errors == 1
    a.write(0.02, 0.01, np.array([0.1, 0.1]))
    assert a.lifecycle is State.ERROR


def test_staleness_by_sequence_and_by_timestamp():
    a = mock(stale_timeout=0.05)
    out = np.zeros(4)
    assert a.read(0.01, 0.01, out) == ReadStatus.OK
    a.silent = True
    assert a.read(0.05, 0.01, out) == ReadStatus.HELD
    assert a.read(0.07, 0.01, out) == ReadStatus.STALE     # 60 ms since the last new sample
    assert a.read(0.08, 0.01, out) == ReadStatus.STALE
    assert a.safety.stale_events == 1 and a.safety.stale_reads == 2
    a.silent = False
    assert a.read(0.09, 0.01, out) == ReadStatus.OK
    # a new sequence number with an old timestamp is stale too
    a._read = lambda now, period, out: (setattr(a, "_sample_seq", a._sample_seq + 1),
                                        setattr(a, "_sample_stamp", now - 0.2), ReadStatus.OK)[-1]
    assert a.read(0.10, 0.01, out) == ReadStatus.STALE
    assert a.safety.stale_events == 2


def test_command_watchdog_sends_safe_command_once_per_trip():
    a = mock(command_timeout=0.1)
    out = np.zeros(4)
    a.write(0.0, 0.01, np.array([0.5, 0.5]))
    n = len(a.written)
    a.read(0.05, 0.01, out)
    assert len(a.written) == n
    a.read(0.2, 0.01, out)                 # nothing written for 200 ms: the safe command goes out
    assert len(a.written) == n + 1 and np.all(a.written[-1] == 0.0)
    a.read(0.4, 0.01, out)
    assert a.safety.watchdog_trips == 1
    a.write(0.41, 0.01, np.array([0.5, 0.5]))
    a.read(0.6, 0.01, out)
    assert a.safety.watchdog_trips == 2


def test_safety_config_validation(tmp_path):
    with pytest.raises(ConfigError, match="safety.stale_timeout"):
        SafetyConfig(stale_timeout=0)
    with pytest.raises(ConfigError, match="safe_values"):
        MockAdapter(MockConfig(joints=2), SafetyConfig(safe_command="fixed", safe_values=(1.0,)))
    p = tmp_path / "s.yaml"
    p.write_text("safe_command: freeze\n")
    with pytest.raises(ConfigError, match="safe_command"):
        load_config(SafetyConfig, p)


def test_atexit_backstop_sends_safe_command():
    import subprocess
    import sys
    code = ("import numpy as np\n"
            "from hardware.mock import MockAdapter, MockConfig\n"
            "a = MockAdapter(MockConfig(record=True))\n"
            "import atexit\n"  # atexit runs last-in first-out: this report runs after the backstop
            "atexit.register(lambda: print('last', a.written[-1].tolist(), a.lifecycle.value))\n"
            "a.configure(); a.activate()\n"
            "a.write(0.0, 0.01, np.array([0.5, 0.5]))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "last [0.0, 0.0] inactive"


def test_loop_computes_no_command_from_a_rejected_sample():
    """Through the real loop: a NaN sample that the transport keeps in its buffer for the following
    ticks (as a UDP receiver does when no new packet arrives) never reaches the policy's act."""
    from controller.clock import FakeClock
    from controller.loop import ControlLoop, FixedPolicy, LoopConfig
    from hardware.tasks import TaskConfig, TrackTask

    clock = FakeClock()
    adapter = MockAdapter(MockConfig(joints=2, record=True), SafetyConfig(stale_timeout=0.2))
    real_read = adapter._read
    tick = {"k": 0}

    def transport(now, period, buf):
        k = tick["k"]
        tick["k"] += 1
        if k % 10 == 5:                     # a new sample with a NaN joint ...
            buf[:] = np.nan
            adapter._sample_seq += 1
            adapter._sample_stamp = now
            return ReadStatus.OK
        if 5 < k % 10 < 9:                  # ... then no news: the transport's buffer still holds it
            buf[:] = np.nan
            return ReadStatus.HELD
        return real_read(now, period, buf)

    adapter._read = transport
    policy = FixedPolicy(2, 2, gain=np.eye(2), clock=clock, record=True)
    loop = ControlLoop(adapter, TrackTask(TaskConfig(max_episode_steps=0)), policy,
                       LoopConfig(rate_hz=100.0, duration=1.0, handle_signals=False, gc_freeze=False),
                       clock=clock)
    out = loop.run()
    acted_on = [obs for kind, obs in policy.log if kind == "act"]
    assert len(acted_on) == out["acts"] > 50
    assert all(np.all(np.isfinite(obs)) for obs in acted_on)
    assert out["safety"]["nan_states"] == 10 and out["held_reads"] >= 30
    assert all(np.all(np.isfinite(c)) for c in adapter.written)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf, 1e300, -2e6])
def test_implausible_sample_values_are_rejected(value):
    a = mock(max_abs_state=1e6)
    out = np.zeros(4)
    assert a.read(0.01, 0.01, out) == ReadStatus.OK
    a.nan_reads = 0
    real = a._read

    def bad(now, period, buf):
        status = real(now, period, buf)
        buf[1] = value
        return status

    a._read = bad
    assert a.read(0.02, 0.01, out) == ReadStatus.INVALID
    assert np.all(np.isfinite(out)) and np.all(np.abs(out) <= 1e6)
    assert "state channel" in a.safety.last_rejection and a.safety.nan_states == 1


def test_max_abs_state_is_validated():
    with pytest.raises(ConfigError, match="max_abs_state"):
        load_config(SafetyConfig, None, ["max_abs_state=0"])


@pytest.mark.parametrize("key", ["stale_timeout", "command_timeout"])
def test_watchdog_timeouts_must_be_finite(key):
    with pytest.raises(ConfigError, match=f"safety.{key}: expected finite seconds > 0"):
        load_config(SafetyConfig, None, [f"{key}=.inf"])

"""controller.clock: the fake clock moves only when told; the real clock never returns early."""
import time

import pytest

from controller.clock import FakeClock, MonotonicClock


def test_fake_clock_moves_only_when_told():
    c = FakeClock(start_ns=5)
    assert c.now_ns() == 5 and c.now_ns() == 5
    c.sleep_until(100)
    assert c.now_ns() == 100
    c.sleep_until(50)               # a past deadline returns at once, time does not go back
    assert c.now_ns() == 100
    c.spin(7)
    c.advance(3)
    assert c.now_ns() == 110
    assert c.sleeps == 2


@pytest.mark.parametrize("spin_ns", [0, 200_000])
def test_monotonic_sleep_until_never_early_and_not_very_late(spin_ns):
    c = MonotonicClock(spin_ns=spin_ns)
    lateness = []
    for _ in range(20):
        target = c.now_ns() + 2_000_000
        c.sleep_until(target)
        got = time.monotonic_ns()
        assert got >= target
        lateness.append(got - target)
    lateness.sort()
    assert lateness[10] < 5_000_000   # median wake-up within 5 ms even on a loaded 2-core CI box


def test_monotonic_spin_and_past_deadline():
    c = MonotonicClock()
    t = c.now_ns()
    c.spin(300_000)
    assert c.now_ns() - t >= 300_000
    t = c.now_ns()
    c.sleep_until(t - 1_000_000)
    assert c.now_ns() - t < 50_000_000


def test_negative_spin_rejected():
    with pytest.raises(ValueError, match="spin_ns"):
        MonotonicClock(spin_ns=-1)

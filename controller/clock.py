"""Clocks for the real-time loop: a monotonic clock with hybrid sleep-then-spin, and a fake clock.

Both expose the same three methods, all in integer nanoseconds:

* ``now_ns()`` -> int: the current time (CLOCK_MONOTONIC for the real clock, shared by every process on
  the machine, so the emulator's timestamps are comparable on loopback);
* ``sleep_until(t_ns, idle=None)``: return at (not before) absolute time ``t_ns``; the real clock sleeps
  with the OS until ``spin_ns`` before the deadline (``time.sleep`` wakes late by 50-100 µs on a stock
  kernel), then spins on the clock to the deadline, calling ``idle()`` (if given, e.g. an adapter's
  ``poll``: it must return within a few µs) on every turn of the spin; returns at once when ``t_ns``
  has passed. The fake clock ignores ``idle``;
* ``spin(duration_ns)``: busy-wait ``duration_ns`` (stand-in learning cost in tests and benchmarks).

The fake clock advances only when told: ``sleep_until`` jumps to the deadline, ``spin`` and
``advance`` add to it. Loop tests are therefore deterministic.
"""
import time

NS = 1_000_000_000   # nanoseconds per second


class MonotonicClock:
    """CLOCK_MONOTONIC in ns, hybrid sleep-then-spin with a ``spin_ns`` spin window (default 200 µs)."""

    def __init__(self, spin_ns=200_000):
        if spin_ns < 0:
            raise ValueError(f"spin_ns: expected >= 0, found {spin_ns}")
        self.spin_ns = int(spin_ns)
        self.now_ns = time.monotonic_ns

    def sleep_until(self, t_ns, idle=None):
        now = time.monotonic_ns
        remaining = t_ns - now()
        if remaining > self.spin_ns:
            time.sleep((remaining - self.spin_ns) * 1e-9)
        if idle is None:
            while now() < t_ns:
                pass
        else:
            while now() < t_ns:
                idle()

    def spin(self, duration_ns):
        now = time.monotonic_ns
        end = now() + duration_ns
        while now() < end:
            pass


class FakeClock:
    """A clock that moves only when told. ``t`` is the current time in ns (int)."""

    def __init__(self, start_ns=1_000_000_000):
        self.t = int(start_ns)
        self.sleeps = 0

    def now_ns(self):
        return self.t

    def sleep_until(self, t_ns, idle=None):
        self.sleeps += 1
        if t_ns > self.t:
            self.t = int(t_ns)

    def spin(self, duration_ns):
        self.t += int(duration_ns)

    def advance(self, duration_ns):
        self.t += int(duration_ns)

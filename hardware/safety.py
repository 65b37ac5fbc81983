"""The safety filter: between the agent and every write, and between every read and the agent.

Every :class:`hardware.base.Adapter` owns one :class:`SafetyFilter` built from its channels and a
:class:`SafetyConfig`. The adapter calls it on every read and write; nothing bypasses it.

Commands (``filter``), in this order:

1. latched e-stop or ERROR state -> the safe command;
2. NaN/inf guard: any non-finite entry -> the safe command (counted in ``nan_commands``);
3. clamp to each command channel's ``[lower, upper]`` (counted in ``clamped``);
4. rate limit: ``|cmd - last_sent| <= max_rate * period`` per channel (units per second; counted in
   ``rate_limited``).

Observations (``check_state``): the NaN/inf guard, which also rejects values larger in magnitude than
``max_abs_state`` (``nan_states``, status INVALID, counted as an error; ``last_rejection`` says why); the
staleness watchdog: the sample sequence number must advance and the sample timestamp must be newer than
``stale_timeout`` seconds, otherwise the status is STALE (``stale_events`` counts entries into the stale
state); the consecutive-error limit: ``max_consecutive_errors`` errors in a row (invalid samples and read
failures in a row, or write failures in a row) make the adapter call ``on_error``.

Command watchdog (``command_watchdog``): when nothing was written for ``command_timeout`` seconds the
adapter sends the safe command on its own at the next read (``watchdog_trips``).

The safe command (``safe_command``): ``zero``; ``hold_position`` (position channels get the latest
measured value of the state channel they name, other channels zero); ``hold_last`` (the last command
sent); ``fixed`` (``safe_values``). It is always clamped to the limits and never rate limited. It is
sent on activate, deactivate, on_error, e-stop, staleness, SIGINT/SIGTERM and at exit.

All state is preallocated; ``filter`` and ``safe_command`` write into one float64 buffer ``sent``
(shape (n_commands,)) and return it.
"""
import dataclasses
import math
from typing import Literal

import numpy as np
from numba import njit

from controller.config import ConfigError, check
from controller.interfaces import ERROR, ESTOP, HELD, INVALID, OK, STALE

NONFINITE = 1
CLAMPED = 2
RATE_LIMITED = 4


@dataclasses.dataclass(frozen=True)
class SafetyConfig:
    """Safety filter settings (YAML section ``safety``). Times in seconds; rates in command units/s."""
    safe_command: Literal["zero", "hold_position", "hold_last", "fixed"] = "zero"
    safe_values: tuple[float, ...] = ()       # the safe command when safe_command is "fixed"
    max_rate: float = math.inf                # per-channel rate limit, command units per second
    command_timeout: float = 0.1              # no write for this long -> safe command at the next read
    stale_timeout: float = 0.05               # sample not refreshed for this long -> STALE
    max_consecutive_errors: int = 10          # errors in a row -> on_error
    max_abs_state: float = 1e6                # a sample value larger in magnitude is rejected (INVALID)

    def __post_init__(self):
        check(self.max_rate > 0, "safety.max_rate", "a number > 0 (inf for no limit)", self.max_rate)
        check(0 < self.command_timeout < math.inf, "safety.command_timeout", "finite seconds > 0",
              self.command_timeout)
        check(0 < self.stale_timeout < math.inf, "safety.stale_timeout", "finite seconds > 0",
              self.stale_timeout)
        check(self.max_consecutive_errors >= 1, "safety.max_consecutive_errors", "an integer >= 1",
              self.max_consecutive_errors)
        check(self.max_abs_state > 0, "safety.max_abs_state", "a number > 0 (SI units)", self.max_abs_state)
        check(all(math.isfinite(v) for v in self.safe_values), "safety.safe_values",
              "finite numbers", self.safe_values)


@njit(cache=True, error_model="numpy")
def filter_command(command, lower, upper, last, max_step, out):
    """Clamp and rate-limit ``command`` into ``out``; return flags (NONFINITE | CLAMPED | RATE_LIMITED).

    command, lower, upper, last (the previous command sent), out: float64 (n,); max_step: float64 (the
    largest change per tick, inf for none). When a non-finite entry is found ``out`` is not written and
    NONFINITE is returned alone. No fastmath: the finiteness test must be exact (design.md §6 item 5).
    """
    n = command.shape[0]
    for i in range(n):
        if not np.isfinite(command[i]):
            return NONFINITE
    flags = 0
    for i in range(n):
        v = command[i]
        if v < lower[i]:
            v = lower[i]
            flags |= CLAMPED
        elif v > upper[i]:
            v = upper[i]
            flags |= CLAMPED
        d = v - last[i]
        if d > max_step[i]:
            v = last[i] + max_step[i]
            flags |= RATE_LIMITED
        elif d < -max_step[i]:
            v = last[i] - max_step[i]
            flags |= RATE_LIMITED
        out[i] = v
    return flags


@njit(cache=True, error_model="numpy")
def first_implausible(x, bound):
    """Index of the first entry of the float64 array x that is NaN, inf or larger than ``bound`` in
    magnitude, or -1 when there is none. No fastmath: the test must be exact (design.md §6 item 5)."""
    for i in range(x.shape[0]):
        if not np.isfinite(x[i]) or abs(x[i]) > bound:
            return i
    return -1


def warm_up():
    """Compile (or load from numba's cache) the filter kernels before the first tick."""
    x = np.zeros(1)
    filter_command(x, x - 1.0, x + 1.0, x, np.full(1, np.inf), np.zeros(1))
    first_implausible(x, 1.0)


class SafetyFilter:
    """Preallocated safety state for one adapter (see the module docstring for the rules).

    Counters (ints): ``nan_commands``, ``nan_states``, ``clamped``, ``rate_limited``,
    ``watchdog_trips``, ``stale_events``, ``stale_reads``, ``estops``, ``safe_commands``, ``errors``,
    ``consecutive_errors``. ``sent`` is the float64 (n_commands,) buffer of the last command sent.
    """

    def __init__(self, command_channels, state_channels, config):
        self.config = config
        n = len(command_channels)
        self.n = n
        self.lower = np.array([c.lower for c in command_channels], dtype=np.float64)
        self.upper = np.array([c.upper for c in command_channels], dtype=np.float64)
        self.sent = np.zeros(n)
        self._last = np.zeros(n)
        self._max_step = np.full(n, math.inf)
        self._fixed = np.zeros(n)
        if config.safe_command == "fixed":
            check(len(config.safe_values) == n, "safety.safe_values",
                  f"{n} values (one per command channel)", config.safe_values)
            self._fixed[:] = config.safe_values
        state_index = {c.name: i for i, c in enumerate(state_channels)}
        self._hold_src = np.full(n, -1, dtype=np.int64)
        for i, c in enumerate(command_channels):
            if c.kind == "position" and c.state:
                if c.state not in state_index:
                    raise ConfigError(f"command channel {c.name}: expected its state channel "
                                      f"{c.state!r} among the state channels, found none")
                self._hold_src[i] = state_index[c.state]
        if config.safe_command == "hold_position" and not np.any(self._hold_src >= 0):
            raise ConfigError("safety.safe_command: expected position command channels with a "
                              "measured state for hold_position, found none")
        self._zero_or_fixed = self._fixed.copy()
        self._state_names = tuple(c.name for c in state_channels)
        self.last_rejection = ""    # why the latest rejected sample was rejected
        self.estopped = False
        self.estop_reason = ""
        self._stale = False
        self._last_seq = None
        self._last_new_time = -math.inf
        self._last_write_time = -math.inf
        self._watchdog_tripped = False
        self.reset_counters()
        warm_up()

    def reset_counters(self):
        self.nan_commands = 0
        self.nan_states = 0
        self.clamped = 0
        self.rate_limited = 0
        self.watchdog_trips = 0
        self.stale_events = 0
        self.stale_reads = 0
        self.estops = 0
        self.safe_commands = 0
        self.errors = 0
        self.consecutive_errors = 0
        self._read_streak = 0
        self._write_streak = 0

    def counters(self):
        """A dict of every counter (allocates: call off the hot path)."""
        names = ("nan_commands", "nan_states", "clamped", "rate_limited", "watchdog_trips",
                 "stale_events", "stale_reads", "estops", "safe_commands", "errors",
                 "consecutive_errors")
        return {k: getattr(self, k) for k in names}

    def reset(self, now):
        """Start of activation: watchdog timers restart at ``now``; the e-stop latch is kept."""
        self._stale = False
        self._last_new_time = now
        self._last_write_time = now
        self._watchdog_tripped = False
        self.consecutive_errors = 0
        self._read_streak = 0
        self._write_streak = 0

    # ------------------------------------------------------------------ e-stop
    def estop(self, reason="e-stop"):
        """Latch the e-stop: every following write sends the safe command until ``reset_estop()``."""
        if not self.estopped:
            self.estops += 1
        self.estopped = True
        self.estop_reason = str(reason)

    def reset_estop(self):
        """Explicitly release the latched e-stop."""
        self.estopped = False
        self.estop_reason = ""

    # ------------------------------------------------------------------ errors
    def note_error(self, kind="read"):
        """Count a transport or data error; reads and writes keep separate streaks."""
        self.errors += 1
        if kind == "write":
            self._write_streak += 1
        else:
            self._read_streak += 1
        self.consecutive_errors = max(self._read_streak, self._write_streak)

    def note_write_ok(self):
        if self._write_streak:
            self._write_streak = 0
            self.consecutive_errors = self._read_streak

    def _read_ok(self):
        if self._read_streak:
            self._read_streak = 0
            self.consecutive_errors = self._write_streak

    def error_limit_reached(self):
        return self.consecutive_errors >= self.config.max_consecutive_errors

    # ------------------------------------------------------------------ observations
    def check_state(self, now, raw_status, out, seq, stamp):
        """The ReadStatus of a read after the guards.

        raw_status: what the adapter's transport reported (OK, HELD or ERROR); out: the sample
        (float64, not modified); seq: the sample's sequence number; stamp: its time in seconds on the
        loop clock.
        """
        if raw_status == ERROR:
            self.note_error()
            status = ERROR
        elif raw_status == OK and seq != self._last_seq:
            bad = first_implausible(out, self.config.max_abs_state)
            if bad >= 0:
                self.nan_states += 1
                self.note_error()
                name = self._state_names[bad] if bad < len(self._state_names) else f"#{bad}"
                self.last_rejection = (f"sample {seq}: state channel {name} is {out[bad]} (expected a "
                                       f"finite value within ±{self.config.max_abs_state:g})")
                return INVALID
            self._last_seq = seq
            self._last_new_time = now
            self._read_ok()
            status = OK
        else:
            status = HELD  # no new sample (or the sequence did not advance)
        if now - self._last_new_time > self.config.stale_timeout or \
                now - stamp > self.config.stale_timeout:
            if not self._stale:
                self._stale = True
                self.stale_events += 1
            self.stale_reads += 1
            if status != ERROR:
                status = STALE
        else:
            self._stale = False
        if self.estopped:
            return ESTOP
        return status

    @property
    def stale(self):
        return self._stale

    # ------------------------------------------------------------------ commands
    def filter(self, now, period, command, last_state):
        """The command to send for ``command`` (float64 (n,)); returns ``self.sent`` (overwritten)."""
        if self.estopped:
            return self.safe_command(now, last_state)
        if self.config.max_rate != math.inf and period > 0:
            self._max_step[:] = self.config.max_rate * period
        else:
            self._max_step[:] = math.inf
        flags = filter_command(command, self.lower, self.upper, self._last, self._max_step, self.sent)
        if flags & NONFINITE:
            self.nan_commands += 1
            return self.safe_command(now, last_state)
        if flags & CLAMPED:
            self.clamped += 1
        if flags & RATE_LIMITED:
            self.rate_limited += 1
        self._last[:] = self.sent
        self._last_write_time = now
        self._watchdog_tripped = False
        return self.sent

    def safe_command(self, now, last_state):
        """Fill ``self.sent`` with the safe command (clamped, not rate limited) and return it."""
        mode = self.config.safe_command
        if mode == "hold_last":
            self.sent[:] = self._last
        else:
            self.sent[:] = self._zero_or_fixed
            if mode == "hold_position":
                for i in range(self.n):
                    j = self._hold_src[i]
                    if j >= 0:
                        self.sent[i] = last_state[j]
        np.clip(self.sent, self.lower, self.upper, out=self.sent)
        self._last[:] = self.sent
        self._last_write_time = now
        self.safe_commands += 1
        return self.sent

    def command_watchdog(self, now):
        """True when nothing was written for ``command_timeout`` s (counts each trip once)."""
        if now - self._last_write_time > self.config.command_timeout:
            if not self._watchdog_tripped:
                self._watchdog_tripped = True
                self.watchdog_trips += 1
            return True
        return False

    def within_limits(self, command, tol=0.0):
        """True when every entry of ``command`` lies in [lower - tol, upper + tol] (for tests)."""
        c = np.asarray(command, dtype=np.float64)
        return bool(np.all(np.isfinite(c)) and np.all(c >= self.lower - tol) and
                    np.all(c <= self.upper + tol))

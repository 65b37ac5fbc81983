"""The hardware adapter contract (ros2_control-style lifecycle, lerobot-style declared channels).

:class:`Adapter` implements ``controller.interfaces.AdapterInterface``, the interface the loop drives;
``ReadStatus``, ``State`` and ``usable`` are defined there and re-exported here.

Lifecycle (each state's meaning)::

    UNCONFIGURED --configure--> INACTIVE --activate--> ACTIVE
         ^                        |  ^                   |
         +--------cleanup---------+  +----deactivate-----+
    any state --on_error(reason)--> ERROR --cleanup--> UNCONFIGURED
    any state --shutdown--> FINALIZED

* ``UNCONFIGURED``: the object exists, its channels are declared (readable), nothing is connected:
  no socket, no simulator, no buffers beyond the channel tables.
* ``INACTIVE``: resources are acquired (socket bound, model loaded, buffers allocated) and states can be
  read, but no command reaches the actuators.
* ``ACTIVE``: commands are written. On entry the safety filter is reset and the safe command is sent;
  while ACTIVE an atexit hook deactivates the adapter (safe command) if the interpreter exits.
* ``ERROR``: a fault was reported (``on_error``): the safe command was sent (best effort) and nothing
  more is written until ``cleanup`` (then ``configure`` and ``activate`` again).
* ``FINALIZED``: released for good; every transition out of it is illegal.

Any other transition raises :class:`LifecycleError` naming the transition, the state found and the
states it is legal from.

Channels are :class:`Channel` records (name, SI unit, limits, kind), declared at construction so a
task or the loop can bind to them before anything is connected.

The hot path is ``read(now, period, out)`` (fills the caller-owned float64 array ``out`` of shape
``(len(state_channels),)`` in place and returns a :class:`ReadStatus`) and ``write(now, period,
command)`` (passes ``command`` of shape ``(len(command_channels),)`` through the adapter's
:class:`~hardware.safety.SafetyFilter` and returns the command actually sent: a preallocated array that
the next ``write`` overwrites). ``now`` and ``period`` are seconds (float) on the loop's monotonic clock.

Subclasses implement the hooks ``_on_configure``, ``_on_activate``, ``_on_deactivate``, ``_on_cleanup``,
``_on_shutdown``, ``_on_error``, ``_read`` and ``_write``. Hardware owners are never copied (copy,
deepcopy and pickle raise TypeError): two objects driving one robot is a bug.
"""
import atexit
import dataclasses
import math
import time

import numpy as np

from controller.config import ConfigError, check
from controller.interfaces import ERROR, HELD, INVALID, OK, STALE, ReadStatus, State, usable
from hardware.safety import SafetyConfig, SafetyFilter


class HardwareError(RuntimeError):
    """Base class of the errors raised by the hardware layer."""


class LifecycleError(HardwareError):
    """An illegal lifecycle transition, or read/write in a state that does not allow it."""


class ChannelError(HardwareError):
    """A channel name, count, unit or array shape does not match what the adapter declares."""


class ProtocolError(HardwareError):
    """A wire-protocol message could not be built or parsed (see hardware.protocol)."""


KINDS = ("position", "velocity", "effort", "sensor")


@dataclasses.dataclass(frozen=True)
class Channel:
    """One named scalar channel. Units are SI: m, rad, m/s, rad/s, N, N*m, s; "1" for dimensionless.

    ``lower``/``upper`` are the limits the safety filter clamps commands to (±inf for states without
    limits). ``kind`` is position, velocity, effort or sensor. For a position command channel,
    ``state`` names the state channel that measures it (used by the ``hold_position`` safe command).
    """
    name: str
    unit: str
    lower: float = -math.inf
    upper: float = math.inf
    kind: str = "sensor"
    state: str = ""

    def __post_init__(self):
        check(isinstance(self.name, str) and self.name != "", "channel.name", "a non-empty string",
              self.name)
        check(self.kind in KINDS, f"channel {self.name}.kind", f"one of {', '.join(KINDS)}", self.kind)
        check(self.lower <= self.upper, f"channel {self.name}.lower",
              f"<= upper ({self.upper})", self.lower)


_ACTIVE, _INACTIVE = State.ACTIVE, State.INACTIVE   # tick path: an enum class attribute lookup is slow

_TRANSITIONS = {  # transition -> (legal source states, target state)
    "configure": ((State.UNCONFIGURED,), State.INACTIVE),
    "activate": ((State.INACTIVE,), State.ACTIVE),
    "deactivate": ((State.ACTIVE,), State.INACTIVE),
    "cleanup": ((State.INACTIVE, State.ERROR), State.UNCONFIGURED),
}


class Adapter:
    """Base class of every hardware adapter. See the module docstring for the contract.

    Attributes readable in every state: ``state_channels``, ``command_channels`` (tuples of
    :class:`Channel`), ``state_names``, ``command_names``, ``n_states``, ``n_commands``, ``lifecycle``
    (:class:`State`), ``safety`` (the :class:`SafetyFilter`), ``last_error`` (str); ``counters()``
    returns a dict of adapter-specific counts (allocates: off the hot path).

    Subclass ``_read`` must set ``self._sample_seq`` (int, advances with every new sample) and
    ``self._sample_stamp`` (float seconds on the loop clock when the sample was taken, or ``now`` of
    the read that received it) for the staleness watchdog.
    """
    kind = "base"

    def __init__(self, state_channels, command_channels, safety=None):
        self.state_channels = tuple(state_channels)
        self.command_channels = tuple(command_channels)
        for group, chans in (("state", self.state_channels), ("command", self.command_channels)):
            names = [c.name for c in chans]
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                raise ChannelError(f"{group} channels: expected unique names, found {dup[0]!r} twice")
        self.state_names = tuple(c.name for c in self.state_channels)
        self.command_names = tuple(c.name for c in self.command_channels)
        self.n_states = len(self.state_channels)
        self.n_commands = len(self.command_channels)
        self.safety = SafetyFilter(self.command_channels, self.state_channels,
                                   safety if safety is not None else SafetyConfig())
        self.lifecycle = State.UNCONFIGURED
        self.last_error = ""
        self._counters = {}
        self._sample_seq = 0
        self._sample_stamp = -math.inf
        self._last_state = np.zeros(self.n_states)      # the newest accepted sample (held, hold_position)
        self._have_sample = False                       # a sample was accepted since activation
        self._state_shape = (self.n_states,)
        self._command_shape = (self.n_commands,)

    # ------------------------------------------------------------------ lifecycle
    def _transition(self, name):
        sources, target = _TRANSITIONS[name]
        if self.lifecycle not in sources:
            raise LifecycleError(
                f"{type(self).__name__}.{name}(): expected state "
                f"{' or '.join(s.value for s in sources)}, found {self.lifecycle.value}")
        return target

    def configure(self):
        """UNCONFIGURED -> INACTIVE: acquire resources (connect, load, allocate)."""
        target = self._transition("configure")
        self._on_configure()
        self.lifecycle = target
        return self

    def activate(self, now=None):
        """INACTIVE -> ACTIVE: reset the safety filter, then send the safe command."""
        target = self._transition("activate")
        self._on_activate()
        self.safety.reset(self._clock_now(now))
        self._have_sample = False
        self.lifecycle = target
        self.write_safe(self._clock_now(now), 0.0)
        atexit.register(self._at_exit)
        return self

    def deactivate(self, now=None):
        """ACTIVE -> INACTIVE: send the safe command, then stop commanding."""
        target = self._transition("deactivate")
        atexit.unregister(self._at_exit)
        try:
            self.write_safe(self._clock_now(now), 0.0)
        finally:
            self._on_deactivate()
            self.lifecycle = target
        return self

    def cleanup(self):
        """INACTIVE or ERROR -> UNCONFIGURED: release resources."""
        target = self._transition("cleanup")
        self._on_cleanup()
        self.lifecycle = target
        return self

    def shutdown(self):
        """Any state -> FINALIZED (safe command first if ACTIVE). Idempotent once FINALIZED."""
        if self.lifecycle is State.FINALIZED:
            return self
        if self.lifecycle is State.ACTIVE:
            try:
                self.deactivate()
            except Exception:  # noqa: BLE001 - shutting down: release whatever remains
                pass
        if self.lifecycle in (State.INACTIVE, State.ERROR):
            self._on_cleanup()
        self._on_shutdown()
        self.lifecycle = State.FINALIZED
        return self

    def on_error(self, reason):
        """Any state but FINALIZED -> ERROR: send the safe command (best effort), record ``reason``."""
        if self.lifecycle is State.FINALIZED:
            raise LifecycleError(f"{type(self).__name__}.on_error(): expected a state other than "
                                 f"finalized, found finalized (reason: {reason})")
        self.last_error = str(reason)
        was_active = self.lifecycle is State.ACTIVE
        atexit.unregister(self._at_exit)
        self.lifecycle = State.ERROR
        if was_active:
            try:
                self._send_safe(self._clock_now(None), 0.0)
            except Exception:  # noqa: BLE001 - the transport may be what failed
                pass
        self._on_error(reason)
        return self

    def _at_exit(self):
        """atexit backstop: an adapter still ACTIVE when the interpreter exits sends the safe command."""
        if self.lifecycle is State.ACTIVE:
            try:
                self.deactivate()
            except Exception:  # noqa: BLE001 - interpreter shutdown: nothing else to do
                pass

    # ------------------------------------------------------------------ context manager, copies
    def __enter__(self):
        if self.lifecycle is State.UNCONFIGURED:
            self.configure()
        if self.lifecycle is State.INACTIVE:
            self.activate()
        return self

    def __exit__(self, *exc):
        if self.lifecycle is State.ACTIVE:
            self.deactivate()
        if self.lifecycle in (State.INACTIVE, State.ERROR):
            self.cleanup()
        return False

    def __copy__(self):
        raise TypeError(f"{type(self).__name__}: hardware adapters cannot be copied "
                        "(two owners of one robot); pass the object itself")

    def __deepcopy__(self, memo):
        raise TypeError(f"{type(self).__name__}: hardware adapters cannot be deep-copied "
                        "(two owners of one robot); pass the object itself")

    def __reduce_ex__(self, protocol):
        raise TypeError(f"{type(self).__name__}: hardware adapters cannot be pickled")

    # ------------------------------------------------------------------ hot path
    def read(self, now, period, out):
        """Fill ``out`` (float64, shape (n_states,), written in place) and return a ReadStatus.

        Runs the staleness watchdog, the NaN/inf guard and the consecutive-error limit (which calls
        ``on_error`` and returns ERROR). Legal in INACTIVE and ACTIVE. Only a sample that passed every
        guard is ever handed on: when the status is not OK, ``out`` is overwritten with the newest
        accepted sample, so a rejected one (NaN, inf) can neither be held nor linger in ``out``, and
        HELD before any accepted sample is reported as STALE.
        """
        if self.lifecycle is not _ACTIVE and self.lifecycle is not _INACTIVE:
            raise LifecycleError(f"{type(self).__name__}.read(): expected state active or inactive, "
                                 f"found {self.lifecycle.value}")
        if out.shape != self._state_shape or out.dtype != np.float64:
            check_array(f"{type(self).__name__}.read(out)", out, self.n_states)
        try:
            raw = self._read(now, period, out)
        except OSError as err:
            raw = ERROR
            self.last_error = f"read: {err}"
        status = self.safety.check_state(now, raw, out, self._sample_seq, self._sample_stamp)
        if status == OK:
            self._last_state[:] = out
            self._have_sample = True
        else:
            # the adapter's own buffer may hold the rejected sample: hand on only the accepted one
            out[:] = self._last_state
            if status == HELD and not self._have_sample:
                status = STALE
        if status == INVALID:
            self.last_error = self.safety.last_rejection
        if self.safety.error_limit_reached():
            self.on_error(f"{self.safety.consecutive_errors} consecutive errors "
                          f"(limit {self.safety.config.max_consecutive_errors}); last: {self.last_error}")
            return ERROR
        if self.lifecycle is _ACTIVE and self.safety.command_watchdog(now):
            self._send_safe(now, period)
        return status

    def write(self, now, period, command):
        """Filter ``command`` (float64, shape (n_commands,), in command units) and send it.

        Returns the command actually sent (a preallocated array, overwritten by the next write).
        """
        if self.lifecycle is not _ACTIVE:
            raise LifecycleError(f"{type(self).__name__}.write(): expected state active, "
                                 f"found {self.lifecycle.value}")
        if command.shape != self._command_shape or command.dtype != np.float64:
            check_array(f"{type(self).__name__}.write(command)", command, self.n_commands)
        sent = self.safety.filter(now, period, command, self._last_state)
        return self._emit(now, period, sent)

    def write_safe(self, now, period):
        """Send the safe command (bypasses the rate limit); returns it. Legal in ACTIVE only."""
        if self.lifecycle is not _ACTIVE:
            raise LifecycleError(f"{type(self).__name__}.write_safe(): expected state active, "
                                 f"found {self.lifecycle.value}")
        return self._send_safe(now, period)

    def counters(self):
        """Adapter-specific counters (a new dict; call off the hot path)."""
        return dict(self._counters)

    def reset_episode(self, seed=None):
        """Bring the robot to the start of a new episode, if the adapter can (sim, emulator).

        Returns True when a reset was performed, False when the robot cannot be reset by software.
        """
        return False

    # ------------------------------------------------------------------ internals
    def _send_safe(self, now, period):
        sent = self.safety.safe_command(now, self._last_state)
        return self._emit(now, period, sent)

    def _emit(self, now, period, sent):
        try:
            self._write(now, period, sent)
            self.safety.note_write_ok()
        except OSError as err:
            self.last_error = f"write: {err}"
            self.safety.note_error("write")
            if self.safety.error_limit_reached() and self.lifecycle is _ACTIVE:
                self.on_error(f"{self.safety.consecutive_errors} consecutive errors; last: {err}")
        return sent

    def _clock_now(self, now):
        if now is not None:
            return now
        return time.monotonic_ns() * 1e-9

    # hooks -------------------------------------------------------------
    def _on_configure(self):
        pass

    def _on_activate(self):
        pass

    def _on_deactivate(self):
        pass

    def _on_cleanup(self):
        pass

    def _on_shutdown(self):
        pass

    def _on_error(self, reason):
        pass

    def _read(self, now, period, out):
        raise NotImplementedError

    def _write(self, now, period, command):
        raise NotImplementedError


def check_array(name, array, size):
    """Raise ChannelError unless array is a float64 1-D array of length size."""
    if not isinstance(array, np.ndarray) or array.dtype != np.float64 or array.shape != (size,):
        found = (f"{type(array).__name__}" if not isinstance(array, np.ndarray)
                 else f"{array.dtype} array of shape {array.shape}")
        raise ChannelError(f"{name}: expected a float64 array of shape ({size},), found {found}")


__all__ = ["Adapter", "Channel", "ChannelError", "ConfigError", "HardwareError", "LifecycleError",
           "ProtocolError", "ReadStatus", "State", "check_array", "usable"]

"""What the real-time loop drives, declared on the controller's side (design.md §2.2).

As ros2_control's controller manager depends on hardware interfaces, ``controller.loop`` depends on the
protocols below and ``hardware/`` implements them (``hardware.base.Adapter``, ``hardware.tasks.Task``);
``controller.agent.Agent`` and ``controller.fixed_policy.FixedPolicy`` implement :class:`Policy`.
Nothing in ``controller/`` imports ``hardware/``.

* :class:`ReadStatus` and :func:`usable`: what a read returns and which statuses may be acted upon.
* :class:`State`: the adapter lifecycle (design.md §2.3).
* :class:`AdapterInterface`, :class:`TaskInterface`, :class:`Policy`: the calls the loop makes, with
  the arrays each one is given (all float64, owned by the loop, overwritten every tick).
"""
import enum
from typing import Protocol, runtime_checkable

import numpy as np


class State(enum.Enum):
    """Adapter lifecycle state (design.md §2.3)."""
    UNCONFIGURED = "unconfigured"
    INACTIVE = "inactive"
    ACTIVE = "active"
    ERROR = "error"
    FINALIZED = "finalized"


class ReadStatus(enum.IntEnum):
    """What ``read`` returns. ``usable(status)`` is True for OK and HELD.

    Whatever the status, ``out`` never holds a rejected sample: unless the status is OK it holds the
    newest *accepted* sample (zeros before the first one since activation).
    """
    OK = 0          # a new sample was accepted and written into out
    HELD = 1        # no new sample since the last read; out holds the newest accepted one (still fresh)
    STALE = 2       # no fresh sample within safety.stale_timeout, or none accepted since activation
    INVALID = 3     # the sample contains NaN, inf or a value beyond safety.max_abs_state (an error)
    ESTOP = 4       # the latched e-stop is engaged (safety.reset_estop() to clear)
    ERROR = 5       # the transport failed (counted as an error)


# module-level names for the tick path, where an enum class attribute lookup is much slower
OK, HELD, STALE, INVALID, ESTOP, ERROR = ReadStatus


def usable(status):
    """True when the observation in ``out`` may be acted upon (OK or HELD)."""
    return status <= HELD


@runtime_checkable
class Counted(Protocol):
    def counters(self) -> dict: ...


@runtime_checkable
class AdapterInterface(Protocol):
    """A robot behind a lifecycle (hardware.base.Adapter implements it; hardware.md §1).

    ``read`` fills the loop's float64 ``out`` (n_states,) and returns a :class:`ReadStatus`; ``write``
    sends a float64 (n_commands,) command through the safety filter and returns the command actually
    sent (the adapter's buffer, overwritten by the next write). ``now`` and ``period`` are seconds on the
    loop's monotonic clock. An adapter may also offer ``poll()``: the loop calls it while it spins
    before a release.
    """
    lifecycle: State
    n_states: int
    n_commands: int
    last_error: str
    safety: Counted

    def configure(self): ...
    def activate(self, now=None): ...
    def deactivate(self, now=None): ...
    def read(self, now: float, period: float, out: np.ndarray) -> ReadStatus: ...
    def write(self, now: float, period: float, command: np.ndarray) -> np.ndarray: ...
    def write_safe(self, now: float, period: float) -> np.ndarray: ...
    def reset_episode(self, seed=None) -> bool: ...
    def counters(self) -> dict: ...


@runtime_checkable
class TaskInterface(Protocol):
    """Sensor channels -> observation, reward and termination; policy actions <-> commands.

    ``bind(adapter)`` once (sets the sizes and bounds); then per tick, with the loop's arrays:
    ``start_episode(state, obs)`` on the first usable sample of an episode, else
    ``reward, terminated = step(state, obs, applied)``, where ``applied`` is the action applied during
    the transition that ended in ``state``; ``action_to_command(action, command)`` and
    ``command_to_action(sent, applied)`` convert in place, the latter once per tick into the loop's
    ``applied`` (finite, within [action_low, action_high]).
    ``reset_mode`` is ``"adapter"`` (the loop asks the adapter to reset the robot) or ``"none"``.
    """
    obs_dim: int
    action_dim: int
    action_low: np.ndarray
    action_high: np.ndarray
    max_episode_steps: int
    reset_mode: str

    def bind(self, adapter: AdapterInterface) -> None: ...
    def start_episode(self, state: np.ndarray, obs: np.ndarray) -> None: ...
    def step(self, state: np.ndarray, obs: np.ndarray, applied: np.ndarray) -> tuple[float, bool]: ...
    def action_to_command(self, action: np.ndarray, command: np.ndarray) -> None: ...
    def command_to_action(self, command: np.ndarray, action: np.ndarray) -> None: ...


@runtime_checkable
class Policy(Protocol):
    """The learner the loop drives, in real-time order (design.md §2.1, §4.2)::

        act(obs) -> action        forward only; the action is read before the next act
        update(reward, obs, terminated, truncated)   learning for the transition ending in obs
        skip(reward, obs, terminated, truncated)     instead of update when the tick has no budget left
        credit(applied_action)    the action actually sent this tick, in policy units
        reset()                   a new episode starts at the next act

    ``obs`` and ``applied_action`` are float64 arrays owned by the loop and overwritten every tick: a
    policy that keeps them must copy. ``applied_action`` is C-contiguous, of shape (action_dim,), finite
    and within the task's [action_low, action_high] (the bounds the policy's action space was built from).
    """
    def act(self, obs: np.ndarray) -> np.ndarray: ...
    def update(self, reward: float, obs: np.ndarray, terminated: bool, truncated: bool) -> None: ...
    def skip(self, reward: float, obs: np.ndarray, terminated: bool, truncated: bool) -> None: ...
    def credit(self, applied_action: np.ndarray) -> None: ...
    def reset(self) -> None: ...


__all__ = ["AdapterInterface", "Counted", "ERROR", "ESTOP", "HELD", "INVALID", "OK", "Policy", "ReadStatus",
           "STALE", "State", "TaskInterface", "usable"]

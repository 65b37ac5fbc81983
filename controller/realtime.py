"""Real-time OS options of the loop: SCHED_FIFO, CPU affinity, mlockall, gc.freeze (design.md §2.5).

Each option the OS refuses falls back with one :class:`RealtimeWarning`; the loop goes on without it.
"""
import gc
import os
import warnings


class RealtimeWarning(RuntimeWarning):
    """A real-time option (SCHED_FIFO, affinity, mlockall, gc.freeze) was refused; the loop goes on."""


def _sched_fifo(config):
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(config.priority))


def _cpu_affinity(config):
    os.sched_setaffinity(0, set(config.cpu_affinity))


def _mlockall(config):
    import ctypes
    MCL_CURRENT, MCL_FUTURE = 1, 2
    if _libc().mlockall(MCL_CURRENT | MCL_FUTURE) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))


def _gc_freeze(config):
    gc.collect()
    gc.freeze()
    gc.disable()


_OPTIONS = (  # LoopConfig field, what applies it, what a refusal usually lacks
    ("sched_fifo", _sched_fifo, " (needs CAP_SYS_NICE or rtprio limit)"),
    ("cpu_affinity", _cpu_affinity, ""),
    ("mlockall", _mlockall, " (needs CAP_IPC_LOCK or memlock limit)"),
    ("gc_freeze", _gc_freeze, ""),
)


def apply_realtime(config, warn=True):
    """Apply SCHED_FIFO / affinity / mlockall / gc.freeze as configured to the calling thread.

    Returns a dict {option: "applied" | "refused: <why>" | "off"}; each refusal emits one
    RealtimeWarning (when ``warn``) and the loop continues without it.
    """
    done = {}
    for name, apply, needs in _OPTIONS:
        if not getattr(config, name):
            done[name] = "off"
            continue
        try:
            apply(config)
            done[name] = "applied"
        except (OSError, AttributeError, ValueError) as err:
            why = f"{type(err).__name__}: {err}{needs}"
            done[name] = f"refused: {why}"
            if warn:
                warnings.warn(f"loop.{name}: not applied ({why}); continuing without it",
                              RealtimeWarning, stacklevel=2)
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


__all__ = ["RealtimeWarning", "apply_realtime", "release_memory_lock", "undo_realtime"]

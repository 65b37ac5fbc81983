"""controller.realtime: each real-time option the OS refuses falls back with exactly one warning."""
import os

from controller.loop import LoopConfig
from controller.realtime import RealtimeWarning, apply_realtime, release_memory_lock, undo_realtime


def test_realtime_options_fall_back_with_one_warning_each():
    import warnings
    affinity = os.sched_getaffinity(0)
    cfg = LoopConfig(sched_fifo=True, mlockall=True, cpu_affinity=(0,), gc_freeze=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        done = apply_realtime(cfg)
    undo_realtime(done)
    try:  # leave the test process with normal scheduling and memory
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    except OSError:
        pass
    os.sched_setaffinity(0, affinity)
    if done["mlockall"] == "applied":
        assert release_memory_lock()
    refused = sorted(k for k, v in done.items() if v.startswith("refused"))
    warned = sorted(str(w.message).split(":")[0].removeprefix("loop.") for w in caught
                    if issubclass(w.category, RealtimeWarning))
    assert warned == refused                     # exactly one warning per refused option
    assert done["gc_freeze"] == "applied" and done["cpu_affinity"] == "applied"
    assert all(v == "applied" or v.startswith("refused") for v in done.values())

"""Shared pytest setup: seeded generators and small helpers used across the test tree, and a guard that
no test leaves the process pinned, with raised scheduling (later tests, e.g. the critic-thread ones,
would then silently run on one CPU) or with its memory locked (mlockall)."""
import os

import numpy as np
import pytest


def pytest_collection_finish(session):
    """A test module may define ``start_background(items)``: once the selection is final it is called
    with the module's selected items, so that a slow subprocess they need (a cold numba compile) runs on
    the second core while the serial test run goes on, instead of after it."""
    by_module = {}
    for item in session.items:
        if getattr(item, "module", None) is not None:
            by_module.setdefault(item.module, []).append(item)
    for module, items in by_module.items():
        start = getattr(module, "start_background", None)
        if callable(start):
            start(items)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def locked_memory_kb():
    """VmLck of this process from /proc/self/status, kB (0 where /proc has no such line)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmLck:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


@pytest.fixture(autouse=True)
def _process_keeps_its_cpus_and_scheduling():
    affinity, policy = os.sched_getaffinity(0), os.sched_getscheduler(0)
    locked = locked_memory_kb()
    yield
    leaked = []
    if locked_memory_kb() > locked:
        leaked.append(f"locked memory {locked} kB -> {locked_memory_kb()} kB (mlockall not undone)")
        from controller.loop import release_memory_lock
        release_memory_lock()
    if os.sched_getaffinity(0) != affinity:
        leaked.append(f"CPU affinity {sorted(affinity)} -> {sorted(os.sched_getaffinity(0))}")
        os.sched_setaffinity(0, affinity)
    if os.sched_getscheduler(0) != policy:
        leaked.append(f"scheduling policy {policy} -> {os.sched_getscheduler(0)}")
        try:
            os.sched_setscheduler(0, policy, os.sched_param(0))
        except OSError:
            pass
    assert not leaked, "the test left the process changed: " + "; ".join(leaked)

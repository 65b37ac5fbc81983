"""Shared pytest setup: seeded generators and small helpers used across the test tree, and a guard that
no test leaves the process pinned or with raised scheduling (later tests, e.g. the critic-thread ones,
would then silently run on one CPU)."""
import os

import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(autouse=True)
def _process_keeps_its_cpus_and_scheduling():
    affinity, policy = os.sched_getaffinity(0), os.sched_getscheduler(0)
    yield
    leaked = []
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

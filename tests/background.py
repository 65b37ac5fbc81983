"""Slow subprocess work of the selected tests (cold numba compiles into caches of their own), started as
soon as the session's tests are collected and run one job at a time on a daemon thread. On two cores it
then overlaps the serial test run instead of adding to it; a test collects its job's result with
``wait()``. A job that was never started (its module's ``start_background`` did not select it) runs in
the waiting test itself.
"""
import queue
import threading


class Job:
    """``fn()`` run once, in the background or by the first ``wait()``; its result or exception kept."""

    def __init__(self, name, fn):
        self.name, self.fn = name, fn
        self.done = threading.Event()
        self.claimed = False
        self.result = self.error = None

    def run(self):
        try:
            self.result = self.fn()
        except BaseException as err:   # handed to the test that waits for it
            self.error = err
        finally:
            self.done.set()

    def wait(self):
        if not self.claimed:
            self.claimed = True
            self.run()
        self.done.wait()
        if self.error is not None:
            raise self.error
        return self.result


_QUEUE = queue.Queue()
_WORKER = []


def _drain():
    while True:
        _QUEUE.get().run()


def submit(job):
    """Queue ``job`` for the background thread (once)."""
    if job.claimed:
        return
    job.claimed = True
    _QUEUE.put(job)
    if not _WORKER:
        _WORKER.append(threading.Thread(target=_drain, name="background-tests", daemon=True))
        _WORKER[0].start()


def submit_if_selected(items, test_name, job):
    """Queue ``job`` if a selected item is the test function ``test_name`` (any parametrisation)."""
    if any(getattr(item, "originalname", item.name) == test_name for item in items):
        submit(job)

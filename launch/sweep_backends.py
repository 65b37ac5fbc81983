"""Where a sweep's trials run: ``LocalPool`` (this machine) and ``RayPool`` (a Ray cluster).

Both run ``launch.sweep_trials.run_trial`` on plain-dict specs and report each outcome through
``on_outcome(outcome)`` as it arrives; ``stop()`` (safe from a signal handler) ends the run early: the
running trials get SIGTERM (train checkpoints and exits), the queued ones never start.

Ray core tasks, not Ray Tune: the trials are a fixed list of complete `train` runs that keep their own
results folders, checkpoints and resume; Tune's search, schedulers and its own trial folders and
checkpointing would duplicate what `train` and the sweep already do. One task = one trial = one CPU
(``num_cpus=1``), no automatic retry (a failed trial is recorded; re-running the sweep retries it).
On a cluster every node needs the same installation and the sweep folder on a shared filesystem.
"""
import signal
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed

from launch.sweep_trials import run_trial


class LocalPool:
    """Up to ``workers`` trials at once on this machine, each its own process (a thread here only waits
    for its child)."""

    def __init__(self, workers):
        self.workers = workers
        self._children = set()
        self._lock = threading.Lock()
        self.stopping = False

    def _started(self, proc):
        with self._lock:
            self._children.add(proc)
            if self.stopping:           # stop() came between the launch and this registration
                proc.send_signal(signal.SIGTERM)

    def _run(self, spec):
        if self.stopping:
            return None
        box = []

        def started(proc):
            box.append(proc)
            self._started(proc)
        try:
            return run_trial(spec, on_start=started)
        finally:
            with self._lock:
                self._children.difference_update(box)

    def run(self, specs, on_outcome):
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="trial") as pool:
            futures = [pool.submit(self._run, spec) for spec in specs]
            for fut in as_completed(futures):
                outcome = fut.result()
                if outcome is not None:
                    on_outcome(outcome)

    def stop(self):
        self.stopping = True
        with self._lock:
            for proc in list(self._children):
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)


class RayPool:
    """The trials as Ray tasks (``ray.init(address=...)``: "" uses RAY_ADDRESS or starts a local
    instance with this machine's cores, "auto" joins a running cluster)."""

    def __init__(self, address=""):
        try:
            import ray
        except ImportError:
            raise RuntimeError("backend ray: Ray is not installed (pip install 'rtu-control[sweep]')") from None
        self.ray = ray
        self.address = address
        self._pending = []
        self.stopping = False

    def run(self, specs, on_outcome):
        ray = self.ray
        started_here = not ray.is_initialized()
        if started_here:
            ray.init(address=self.address or None, include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
        try:
            task = ray.remote(num_cpus=1, max_retries=0)(run_trial)
            by_ref = {task.remote(spec): spec for spec in specs}
            self._pending = list(by_ref)
            while self._pending:
                done, self._pending = ray.wait(self._pending, num_returns=1)
                for ref in done:
                    try:
                        outcome = ray.get(ref)
                    except Exception as err:  # the task itself died (worker crash, cancellation)
                        outcome = {"id": by_ref[ref]["id"], "state": "failed", "exit": None,
                                   "reason": f"Ray task failed: {type(err).__name__}: {str(err)[:200]}",
                                   "wall_s": None, "started": None}
                    on_outcome(outcome)
        finally:
            if started_here:
                ray.shutdown()

    def stop(self):
        self.stopping = True
        for ref in list(self._pending):
            try:
                self.ray.cancel(ref, force=True)    # kills the worker; its trial gets SIGTERM (parent death)
            except Exception:  # already finished or gone
                pass

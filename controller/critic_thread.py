"""The critic on a helper thread (``Agent(..., critic_thread=True)``).

In the gymnasium-order ``learn``, once δ is known the critic's learning pass (ObGD step, RTRL traces,
gradient into its eligibility traces: ``agent_step.net_apply``, ~15 µs at the paper size) does not feed
the next action: only the next ``critic_observe`` needs it. ``CriticThread`` keeps the critic on a second
core and serves two requests: *observe* (normalise s′ and run the critic's forward; the caller waits
for V(s′), ~4 µs) and the *learning pass*, handed over before the actor's credit so that it runs while
the calling thread does the actor's credit and step, returns, acts and steps the env; the next ``learn``
waits for it (``wait``) before touching the critic. Running the observe there too keeps the critic's
arrays in the helper core's cache (on the main thread, ~200 KB of them crossed between the cores every
tick).

The helper is a Python thread that enters one numba function (``controller.kernels.worker.serve``) with
the GIL released and stays there, polling an int64 control array with acquire loads
(``controller.kernels.sync``); hand-overs cost well under a microsecond. It keeps one core busy while
the agent learns; only after ~1e8 polls without a request (tens of ms) does it sleep between polls. So
use it with a core to spare (not with as many processes as cores, e.g. ``bench learning`` with 2 workers
on 2 cores); ``Agent`` refuses it with a warning when fewer than 2 CPUs are usable.

The computation is the same kernels as without the thread, on the same arrays, in the same order
relative to every other access of the critic: results differ from the single-threaded agent at most in
the rounding that inlining into a different caller can change (tests/controller/test_critic_thread.py).
"""
import os
import threading
import time
import weakref

import numba
import numpy as np

from controller.buffers import aligned_zeros
from controller.kernels import worker
from controller.kernels.agent_step import ARGS_SIZE, CTL_SIZE


def usable_cpus():
    """CPUs this process may run on (its affinity mask; os.cpu_count() where that is unknown)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


START_TIMEOUT_S = 600.0  # the helper's first start may compile the whole critic pass


class CriticThread:
    """Owns the helper thread of one critic network and the hand-over arrays. make_state: a callable
    returning the critic's NetState, called on the helper thread (``Network.private_state``).

    ``ctl`` (int64, (8,)) and ``args`` (float64, (8,)): see ``controller.kernels.agent_step``. The
    caller submits a pass through ``agent_step.credit_and_apply`` given ``ctl`` and ``args`` (or
    ``submit``), records the returned request number with ``submitted(request)``, and calls ``wait()``
    before any other access to the critic's arrays. ``close()`` stops the thread (also at garbage collection).
    """

    def __init__(self, make_state, obs_stats, x_next, n_obs, name="rtu-critic"):
        # Each on cache lines of its own: the helper polls ctl, and any other array sharing its line
        # would bounce between the cores at every write.
        self.ctl = aligned_zeros(CTL_SIZE, np.int64)
        self.args = aligned_zeros(ARGS_SIZE, np.float64)
        self.obs = aligned_zeros(n_obs, np.float64)   # the helper's copy of the observation to evaluate
        self._request = 0
        self.pending = False
        self.passes = 0
        self._thread = threading.Thread(target=_serve, args=(make_state, self.ctl, self.args, self.obs,
                                                             obs_stats, x_next), name=name, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not worker.is_ready(self.ctl):
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("CriticThread: the helper thread did not start")
            time.sleep(0.001)
        worker.wait_done(self.ctl, 0)                 # compiled now, not at the first learn
        worker.stop.compile((numba.typeof(self.ctl),))  # nor at shutdown
        self._finalizer = weakref.finalize(self, _stop, self._thread, self.ctl)

    def submit(self, step, cell_step, accumulate):
        """Hand the pass ``net_apply(critic, step, cell_step, accumulate)`` to the helper."""
        self.wait()
        self.submitted(worker.submit(self.ctl, self.args, step, cell_step, accumulate))

    def observe(self, obs, normalize):
        """``critic_observe`` of obs (float64 (n_obs,)) on the helper, waited for: returns (first
        non-finite index or -1, V(obs)). The observation statistics are read, not updated."""
        self.wait()
        bad, value = worker.observe(self.ctl, self.args, obs, self.obs, normalize)
        self._request += 1
        return bad, value

    def submitted(self, request):
        """Record that pass number ``request`` was handed over (by a kernel)."""
        self._request = int(request)
        self.pending = True
        self.passes += 1

    def wait(self):
        """Return once the helper has finished every pass handed over; its writes are then visible."""
        if self.pending:
            worker.wait_done(self.ctl, self._request)
            self.pending = False

    @property
    def alive(self):
        return self._thread.is_alive()

    def close(self):
        """Finish the pending pass and stop the thread (idempotent)."""
        self.wait()
        self._finalizer()


def _serve(make_state, ctl, args, obs, obs_stats, x_next):
    """The helper thread: build its own NetState (``Network.private_state``: allocated by this thread, so
    no cache line of it is shared with the main thread), then serve requests until stopped."""
    worker.serve(make_state(), ctl, args, obs, obs_stats, x_next)


def _stop(thread, ctl):
    worker.stop(ctl)
    thread.join()

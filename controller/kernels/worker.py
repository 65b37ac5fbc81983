"""The critic helper thread's loop and hand-over kernels (``controller.critic_thread``).

Control array ``ctl`` (int64, (8,), one cache line): [REQUEST, DONE, READY, unused...]. The main thread
writes a request's arguments into ``args`` (float64, (8,); layout ``agent_step.ARG_*``: the operation,
OP_APPLY with step, cell step and then_accumulate as 0/1, or OP_OBSERVE with the normalise flag;
OP_OBSERVE's results V and the bad-index come back in it), then releases REQUEST = previous + 1; the
helper acquires it, runs the operation on the critic and releases DONE = REQUEST. REQUEST < 0 stops the
helper. Every hand-over is an acquire/release pair (``controller.kernels.sync``), so the arrays written
before it are seen complete after it.
"""
from numba import njit

from controller.kernels.agent_step import (
    ARG_ACCUMULATE, ARG_BAD, ARG_CELL_STEP, ARG_NORMALIZE, ARG_OP, ARG_RESULT, ARG_STEP, CTL_DONE,
    CTL_READY, CTL_REQUEST, OP_OBSERVE, critic_observe, net_apply, request_critic_pass,
)
from controller.kernels.jit import JIT_OPTIONS
from controller.kernels.sync import load_acquire, sleep_us, store_release

IDLE_POLLS = 100_000_000  # polls (~0.3-1 ns each: tens of ms) without a request before the helper sleeps
IDLE_SLEEP_US = 50    # then it sleeps this long between polls

threaded = njit(nogil=True, **JIT_OPTIONS)


@threaded
def serve(s, ctl, args, obs, stats, x):
    """The helper thread's whole life: run each requested operation on the critic's NetState s until a
    negative request. OP_APPLY: the critic's learning pass (``net_apply``). OP_OBSERVE: normalise obs
    (the caller's copy of the next observation) with the shared statistics into x and run the critic's
    forward (``critic_observe``), V and the bad-index into args. Between requests it polls; after
    IDLE_POLLS polls without one (a few ms: the agent is not learning every tick) it sleeps
    IDLE_SLEEP_US between polls, so an idle agent leaves the core free. Returns the last request done."""
    store_release(ctl, CTL_READY, 1)
    done = load_acquire(ctl, CTL_DONE)
    spins = 0
    while True:
        request = load_acquire(ctl, CTL_REQUEST)
        if request == done:
            spins += 1
            if spins >= IDLE_POLLS:
                sleep_us(IDLE_SLEEP_US)
            continue
        if request < 0:
            return done
        spins = 0
        if args[ARG_OP] == OP_OBSERVE:
            bad, value = critic_observe(s, obs, stats, x, args[ARG_NORMALIZE] != 0.0, False)
            args[ARG_BAD] = bad
            args[ARG_RESULT] = value
        else:
            net_apply(s, args[ARG_STEP], args[ARG_CELL_STEP], args[ARG_ACCUMULATE] != 0.0)
        done = request
        store_release(ctl, CTL_DONE, done)


@threaded
def submit(ctl, args, step, cell_step, accumulate):
    """Hand one critic pass (``net_apply(critic, step, cell_step, accumulate)``) to the helper.
    Returns its request number (wait for it with ``wait_done``)."""
    return request_critic_pass(ctl, args, step, cell_step, accumulate)


@threaded
def stop(ctl):
    """Ask the helper to return (after the pass it is running, if any)."""
    store_release(ctl, CTL_REQUEST, -1)


@threaded
def observe(ctl, args, obs, obs_copy, normalize):
    """Run ``critic_observe`` of obs on the helper (where the critic's arrays stay in its core's cache)
    and wait for it: copies obs into the helper's buffer obs_copy, hands over OP_OBSERVE, polls until
    done. Returns (first non-finite index of obs or -1, V(obs))."""
    for i in range(obs.shape[0]):
        obs_copy[i] = obs[i]
    args[ARG_OP] = OP_OBSERVE
    args[ARG_NORMALIZE] = 1.0 if normalize else 0.0
    request = load_acquire(ctl, CTL_REQUEST) + 1
    store_release(ctl, CTL_REQUEST, request)
    wait_done(ctl, request)
    return int(args[ARG_BAD]), args[ARG_RESULT]


@threaded
def wait_done(ctl, request):
    """Poll until the helper has finished pass ``request`` (a pass is ~15 µs at the paper size, so
    this thread spins rather than sleeps); afterwards every array it wrote is visible here. Returns the
    number of polls."""
    polls = 0
    while load_acquire(ctl, CTL_DONE) < request:
        polls += 1
    return polls


@threaded
def is_ready(ctl):
    """1 once the helper runs its loop (its code is compiled or loaded from the cache), else 0."""
    return load_acquire(ctl, CTL_READY)

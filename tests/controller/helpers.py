"""Helpers for the cell tests: copy parameters between cells and the reference twins."""
import numpy as np


def params_of(cell, dtype=np.float64):
    """Copies of the cell's parameters in their public (n, d) orientation, as C-contiguous arrays."""
    return {k: np.array(v, dtype=dtype, order="C") for k, v in cell.params.items()}


def load_params(cell, params):
    """Write params (same keys) into the cell's live arrays."""
    for k, v in params.items():
        cell.params[k][...] = v


def rel_err(a, b):
    """max |a - b| / max(|b|, tiny): one number for 'agree to this relative precision'."""
    a = np.asarray(a)
    b = np.asarray(b)  # real or complex; float32 inputs are promoted by the subtraction below
    if b.dtype == np.float32:
        b = b.astype(np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def assert_ticks_allocate_no_array(agent, n_obs, ticks=300, warm_up=50):
    """After ``warm_up`` act+learn ticks, ``ticks`` more keep traced memory within a few KiB of the start,
    at peak and at the end (one parameter-sized temporary would add tens of KiB). Closes the agent."""
    import tracemalloc

    rng = np.random.default_rng(0)
    obs = [rng.standard_normal(n_obs) for _ in range(8)]
    for t in range(warm_up):
        agent.act(obs[t % 8])
        agent.learn(0.1, obs[(t + 1) % 8], False, False)
    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for t in range(ticks):
            agent.act(obs[t % 8])
            agent.learn(0.1, obs[(t + 1) % 8], False, False)
        end, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    agent.close()
    assert peak - start < 8 * 1024, (start, peak)
    assert end - start < 4 * 1024, (start, end)

"""controller.loop_stats: the log histogram's quantiles against NumPy's on a lognormal sample."""
import numpy as np
import pytest

from controller.loop_stats import LogHistogram


def test_log_histogram_quantiles():
    h = LogHistogram()
    rng = np.random.default_rng(0)
    values = rng.lognormal(mean=10.0, sigma=1.0, size=20_000).astype(np.int64)
    for v in values:
        h.record(int(v))
    for q in (0.5, 0.99):
        assert h.quantile(q) == pytest.approx(np.quantile(values, q), rel=0.05)
    assert h.max == values.max() and h.count == values.size
    h.record(0)
    h.record(10**15)
    assert h.quantile(1.0) == 10**15

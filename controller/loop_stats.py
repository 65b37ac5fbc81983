"""Statistics of a loop run: fixed-bin log histograms of durations and the run's counters.

Everything is preallocated: ``LogHistogram.record`` and the counters allocate nothing per tick beyond
Python ints; quantiles and summaries (which allocate) are read off at the end.
"""
import math

import numpy as np

from controller.clock import NS


class LogHistogram:
    """Streaming histogram of non-negative durations in ns: fixed log bins, preallocated.

    Bin i holds values in [2^(i/16), 2^((i+1)/16)) ns (bin 0 also holds values below 1 ns); 640 bins
    reach 2^40 ns ≈ 18 min. Quantiles are the bin's geometric centre (±2.2 % relative), except that no
    quantile is reported above the exact maximum. ``record`` allocates nothing beyond Python ints.
    """
    PER_OCTAVE = 16
    BINS = 640

    def __init__(self):
        self.counts = np.zeros(self.BINS, dtype=np.int64)
        self.count = 0
        self.total = 0
        self.max = 0
        self.min = None

    def record(self, value_ns):
        v = value_ns if value_ns > 0 else 0
        i = int(math.log2(v) * 16) if v >= 1 else 0
        if i >= 640:
            i = 639
        self.counts[i] += 1
        self.count += 1
        self.total += v
        if v > self.max:
            self.max = v
        if self.min is None or v < self.min:
            self.min = v

    def quantile(self, q):
        """Approximate q-quantile in ns (0 when empty)."""
        if self.count == 0:
            return 0.0
        if q >= 1.0:
            return float(self.max)
        rank = q * self.count
        cum = np.cumsum(self.counts)
        i = int(np.searchsorted(cum, max(rank, 1), side="left"))
        centre = 2.0 ** ((i + 0.5) / self.PER_OCTAVE)
        return float(min(max(centre, self.min), self.max))

    def summary_us(self):
        """{count, mean, p50, p99, max} in microseconds."""
        return {
            "count": self.count,
            "mean": (self.total / self.count / 1e3) if self.count else 0.0,
            "p50": self.quantile(0.50) / 1e3,
            "p99": self.quantile(0.99) / 1e3,
            "max": self.max / 1e3,
        }


class LoopStats:
    """Histograms and counters of one run. Histograms: ``sense_act`` (wake -> write returned),
    ``learn`` (update() duration), ``jitter`` (wake - release), ``work`` (wake -> end of the tick,
    minus a robot reset done in it: not real-time work), ``reset`` (``adapter.reset_episode`` durations)."""

    def __init__(self):
        self.sense_act = LogHistogram()
        self.learn = LogHistogram()
        self.jitter = LogHistogram()
        self.work = LogHistogram()
        self.reset = LogHistogram()
        self.ticks = 0               # ticks executed
        self.first_tick_ns = 0       # clock time of the first tick's start (the loop's clock)
        self.releases = 0            # ticks executed + releases dropped after overruns
        self.deadline_misses = 0     # write completed after the deadline, plus dropped releases
        self.missed_releases = 0
        self.overruns = 0            # tick work (incl. learning) ended after the deadline
        self.updates = 0
        self.skipped_updates = 0
        self.acts = 0
        self.safe_ticks = 0          # ticks that sent the safe command instead of acting
        self.unusable_reads = 0
        self.held_reads = 0
        self.episodes = 0
        self.resets = 0              # robot resets (the schedule restarts after each: not misses)
        self.interruptions = 0
        self.terminations = 0
        self.truncations = 0
        self.episode_return = 0.0
        self.last_returns = []
        self.elapsed_ns = 0          # first release -> end of the last tick (resets included)

    def on_time_fraction(self):
        return 1.0 - self.deadline_misses / self.releases if self.releases else 1.0

    def summary(self):
        keys = ("ticks", "releases", "deadline_misses", "missed_releases", "overruns", "updates",
                "skipped_updates", "acts", "safe_ticks", "unusable_reads", "held_reads", "episodes", "resets",
                "interruptions", "terminations", "truncations")
        out = {k: getattr(self, k) for k in keys}
        out["on_time_fraction"] = self.on_time_fraction()
        out["elapsed_s"] = self.elapsed_ns / NS
        out["sense_act_us"] = self.sense_act.summary_us()
        out["learn_us"] = self.learn.summary_us()
        out["jitter_us"] = self.jitter.summary_us()
        out["work_us"] = self.work.summary_us()
        out["reset_us"] = self.reset.summary_us()
        out["last_returns"] = list(self.last_returns[-10:])
        return out


__all__ = ["LogHistogram", "LoopStats"]

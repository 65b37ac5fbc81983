"""``LoopConfig``: the YAML section ``loop`` of the fixed-rate control loop (``controller.loop``),
validated once. Times in seconds."""
import dataclasses
import math
from typing import Literal

from controller.clock import NS
from controller.config import check


@dataclasses.dataclass(frozen=True)
class LoopConfig:
    """YAML section ``loop``. Times in seconds."""
    rate_hz: float = 100.0              # 20 Hz .. 1 kHz
    duration: float = 10.0              # seconds of ticks; 0 runs until stopped (signal, max_ticks)
    max_ticks: int = 0                  # 0 for no limit
    startup_timeout: float = 2.0        # no usable sample this long after the start: a fault (0: wait)
    learn: Literal["budget", "always", "never"] = "budget"
    learn_margin: float = 50e-6         # kept free before the deadline when deciding to learn
    learn_quantile: float = 0.99        # the update-time estimate tracks this quantile
    learn_adapt: float = 0.05           # relative step of the quantile tracker
    learn_decay: float = 0.999          # each skipped update shrinks the estimate (so learning retries)
    learn_estimate_init: float = 0.0    # initial update-time estimate (0: the first update measures)
    spin: float = 200e-6                # spin window of the hybrid sleep (0: sleep only)
    free_run: bool = False              # no schedule: no sleep, no deadlines (lock-step simulators)
    poll_while_spinning: bool = True    # call adapter.poll() (if any) during the spin window
    sched_fifo: bool = False
    priority: int = 80                  # SCHED_FIFO priority 1..99
    cpu_affinity: tuple[int, ...] = ()  # pin the loop thread to these CPUs; () leaves it alone
    mlockall: bool = False
    gc_freeze: bool = True              # gc.freeze() + gc.disable() while the loop runs
    handle_signals: bool = True         # SIGINT/SIGTERM request a clean stop (main thread only)
    seed: int = 0                       # passed to adapter.reset_episode

    def __post_init__(self):
        check(20.0 <= self.rate_hz <= 1000.0, "loop.rate_hz", "a rate in [20, 1000] Hz", self.rate_hz)
        check(0 <= self.duration < math.inf, "loop.duration", "a finite number of seconds >= 0 (0: until "
              "stopped)", self.duration)
        check(self.max_ticks >= 0, "loop.max_ticks", "an integer >= 0", self.max_ticks)
        check(0 <= self.startup_timeout < math.inf, "loop.startup_timeout",
              "a finite number of seconds >= 0 (0: wait for the first sample forever)", self.startup_timeout)
        check(0 <= self.learn_margin < math.inf, "loop.learn_margin", "a finite number of seconds >= 0",
              self.learn_margin)
        check(0.0 < self.learn_decay <= 1.0, "loop.learn_decay", "a number in (0, 1]", self.learn_decay)
        check(0.5 <= self.learn_quantile < 1.0, "loop.learn_quantile", "a number in [0.5, 1)",
              self.learn_quantile)
        check(0.0 < self.learn_adapt <= 0.5, "loop.learn_adapt", "a number in (0, 0.5]", self.learn_adapt)
        check(0 <= self.learn_estimate_init < math.inf, "loop.learn_estimate_init",
              "a finite number of seconds >= 0", self.learn_estimate_init)
        check(0 <= self.spin < 1.0 / self.rate_hz, "loop.spin", "seconds in [0, period)", self.spin)
        check(1 <= self.priority <= 99, "loop.priority", "an integer in [1, 99]", self.priority)
        check(all(c >= 0 for c in self.cpu_affinity), "loop.cpu_affinity", "CPU indices >= 0",
              self.cpu_affinity)
        check(self.seed >= 0, "loop.seed", "an integer >= 0", self.seed)

    @property
    def period_ns(self):
        return int(round(NS / self.rate_hz))

"""Mock hardware for CI (ros2_control's mock components): commands are mirrored into states.

``MockAdapter(MockConfig(joints=2))`` declares, per joint ``j<i>``:

* state channels ``j<i>/position`` (rad) and ``j<i>/velocity`` (rad/s);
* command channel ``j<i>/position`` (rad, limits ``±position_limit``, kind position, measured by the
  state channel of the same name).

Each read returns a new sample: position = the last command sent, velocity = its change over
``period`` (0 when period is 0). Fault knobs for tests (plain attributes): ``silent`` (no new samples:
the staleness watchdog fires), ``nan_reads`` (that many next samples contain NaN), ``fail_reads`` /
``fail_writes`` (that many next transport calls raise OSError). ``record`` keeps a copy of every command
sent in ``written`` (allocates; tests only).
"""
import dataclasses

import numpy as np

from controller.config import check
from controller.interfaces import HELD, OK
from hardware.base import Adapter, Channel
from hardware.safety import SafetyConfig


@dataclasses.dataclass(frozen=True)
class MockConfig:
    """YAML section ``mock``."""
    joints: int = 2
    position_limit: float = 1.0     # rad
    record: bool = False            # keep every command sent in adapter.written (tests)

    def __post_init__(self):
        check(self.joints >= 1, "mock.joints", "an integer >= 1", self.joints)
        check(self.position_limit > 0, "mock.position_limit", "rad > 0", self.position_limit)


class MockAdapter(Adapter):
    kind = "mock"

    def __init__(self, config=MockConfig(), safety=SafetyConfig()):
        self.config = config
        lim = config.position_limit
        states, commands = [], []
        for i in range(config.joints):
            states.append(Channel(f"j{i}/position", "rad", -lim, lim, "position"))
            states.append(Channel(f"j{i}/velocity", "rad/s", kind="velocity"))
            commands.append(Channel(f"j{i}/position", "rad", -lim, lim, "position",
                                    state=f"j{i}/position"))
        super().__init__(states, commands, safety)
        self.silent = False
        self.nan_reads = 0
        self.fail_reads = 0
        self.fail_writes = 0
        self.written = []
        self._pos = None
        self._prev = None
        self._counters = {"reads": 0, "writes": 0}

    def _on_configure(self):
        self._pos = np.zeros(self.config.joints)
        self._prev = np.zeros(self.config.joints)

    def _on_cleanup(self):
        self._pos = None
        self._prev = None

    def _read(self, now, period, out):
        self._counters["reads"] += 1
        if self.fail_reads > 0:
            self.fail_reads -= 1
            raise OSError("mock: injected read failure")
        if self.silent:
            return HELD
        out[0::2] = self._pos
        if period > 0:
            out[1::2] = (self._pos - self._prev) / period
        else:
            out[1::2] = 0.0
        self._prev[:] = self._pos
        if self.nan_reads > 0:
            self.nan_reads -= 1
            out[0] = np.nan
        self._sample_seq += 1
        self._sample_stamp = now
        return OK

    def _write(self, now, period, command):
        self._counters["writes"] += 1
        if self.fail_writes > 0:
            self.fail_writes -= 1
            raise OSError("mock: injected write failure")
        self._pos[:] = command
        if self.config.record:
            self.written.append(command.copy())

    def reset_episode(self, seed=None):
        if self._pos is not None:
            self._pos[:] = 0.0
            self._prev[:] = 0.0
        return True

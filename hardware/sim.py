"""Sim adapter: a MuJoCo robot in-process, built from a gymnasium id or an MJCF file.

Channels are those of hardware.mjrobot (``time``, ``qpos/*``, ``qvel/*``; commands ``ctrl/*`` in N·m
or N). Two pacings:

* ``lockstep`` (default): each ``write`` with ``period > 0`` applies the command and advances one
  control step (the env's ``frame_skip`` physics steps, as gymnasium's ``step``); ``read`` samples the
  state. Writes with ``period == 0`` (the safe command sent on activate / deactivate) apply the command
  without advancing time. With the loop's ``free_run`` this runs as fast as possible and reproduces
  gymnasium's transitions exactly (same seed, same actions).
* ``realtime``: physics advances with wall-clock time: each ``read`` first steps the simulation up to
  ``now`` (at most ``max_catchup`` seconds at once) under the latest command, then samples it.

UNCONFIGURED holds no simulator (the model is loaded once at construction for the channel tables, then
dropped); configure loads it and resets it with ``seed``.
"""
import dataclasses
import math
from typing import Literal

from controller.config import check
from controller.interfaces import OK
from hardware.base import Adapter
from hardware.mjrobot import MjRobot, check_robot_source
from hardware.safety import SafetyConfig


@dataclasses.dataclass(frozen=True)
class SimConfig:
    """YAML section ``sim``."""
    env_id: str = "HalfCheetah-v5"
    mjcf: str = ""
    pace: Literal["lockstep", "realtime"] = "lockstep"
    seed: int = 0
    max_catchup: float = 0.1         # realtime: most simulated seconds advanced by one read

    def __post_init__(self):
        check_robot_source(self.env_id, self.mjcf, "sim.")
        check(self.seed >= 0, "sim.seed", "an integer >= 0", self.seed)
        check(0 < self.max_catchup < math.inf, "sim.max_catchup", "a finite number of seconds > 0",
              self.max_catchup)


class SimAdapter(Adapter):
    kind = "sim"

    def __init__(self, config=SimConfig(), safety=SafetyConfig()):
        self.config = config
        probe = MjRobot(env_id=config.env_id or None, mjcf=config.mjcf or None)
        super().__init__(probe.state_channels, probe.command_channels, safety)
        self.dt = probe.dt
        probe.close()
        self.robot = None
        self._steps = 0
        self._physics_steps = 0
        self._t_start = None
        self._counters = {"steps": 0, "resets": 0}

    def _make(self):
        return MjRobot(env_id=self.config.env_id or None, mjcf=self.config.mjcf or None)

    def _on_configure(self):
        self.robot = self._make()
        self.robot.reset(seed=self.config.seed)
        self._steps = 0
        self._physics_steps = 0
        self._t_start = None

    def _on_cleanup(self):
        if self.robot is not None:
            self.robot.close()
            self.robot = None

    def _on_shutdown(self):
        self._on_cleanup()

    def _read(self, now, period, out):
        robot = self.robot
        if self.config.pace == "realtime":
            if self._t_start is None:
                self._t_start = now
            ts = robot.model.opt.timestep
            target = int(math.floor((now - self._t_start) / ts))
            n = min(target - self._physics_steps, int(self.config.max_catchup / ts))
            if n > 0:
                robot.step(n)
                self._physics_steps = target
                self._steps += 1
        robot.sample(out)
        self._sample_seq = self._steps
        self._sample_stamp = now
        return OK

    def _write(self, now, period, command):
        self.robot.apply(command)
        if self.config.pace == "lockstep" and period > 0:
            self.robot.step()
            self._steps += 1
            self._counters["steps"] += 1

    def reset_episode(self, seed=None):
        if self.robot is None:
            return False
        self.robot.reset(seed=seed)
        self._steps += 1
        self._physics_steps = 0
        self._t_start = None
        self._counters["resets"] += 1
        return True

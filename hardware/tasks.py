"""Tasks for robots: sensor channels -> observation, reward, termination, episode reset.

A task is registered by name (``@register_task("name")``) and chosen in YAML (``task.name``). The loop
uses it as follows, with ``state`` the float64 array an adapter's ``read`` filled::

    task.bind(adapter)                       # once: check channel names/units, build index arrays
    task.start_episode(state)                # the first usable sample of an episode
    reward, terminated = task.step(state, obs)   # every later tick: obs (float64 (obs_dim,)) written in place
    task.action_to_command(action, command)  # policy units -> command units (SI), in place
    task.command_to_action(sent, applied)    # the command actually sent -> policy units, in place

``reward`` is for the transition that ended in ``state`` and uses the action last applied (recorded
by ``command_to_action``). Truncation is the loop's business (``max_episode_steps``). ``reset`` says
how an episode starts: ``"adapter"`` asks the adapter to reset the robot (simulator, emulator),
``"none"`` continues from wherever the robot is (a real robot without a reset procedure).

The MuJoCo tasks (``HalfCheetah``, ``Hopper``, ``InvertedPendulum``) reproduce gymnasium's v5 reward
and termination from sensor channels named ``qpos/<joint>`` and ``qvel/<joint>`` plus ``time`` (s),
with command channels ``ctrl/<actuator>`` in N·m (gear × control) mapped to the policy's [-1, 1]
controls. ``mask="P"`` (default) keeps positions/angles only (velocities dropped, not zeroed), ``"V"``
velocities only, ``"full"`` both: the same layouts as the ``<Name>-P-v5`` ids of ``envs``.
"""
import dataclasses
import math
from typing import Literal

import numpy as np

from controller.config import ConfigError, check
from hardware.base import ChannelError

TASKS = {}


def register_task(name):
    """Class decorator: register a Task subclass under ``name``."""
    def deco(cls):
        if name in TASKS:
            raise ValueError(f"task {name!r} is already registered by {TASKS[name].__name__}")
        cls.name = name
        TASKS[name] = cls
        return cls
    return deco


@dataclasses.dataclass(frozen=True)
class TaskConfig:
    """YAML section ``task``."""
    name: str = "track"
    mask: Literal["P", "V", "full"] = "P"
    max_episode_steps: int = 1000          # truncation; 0 for none
    reset: Literal["adapter", "none"] = "adapter"

    def __post_init__(self):
        check(self.name in TASKS, "task.name", f"one of {', '.join(sorted(TASKS))}", self.name)
        check(self.max_episode_steps >= 0, "task.max_episode_steps", "an integer >= 0",
              self.max_episode_steps)


def make_task(config):
    """The Task registered as ``config.name``, built from ``config`` (a TaskConfig)."""
    return TASKS[config.name](config)


def _index(names, wanted, what):
    idx = {n: i for i, n in enumerate(names)}
    missing = [w for w in wanted if w not in idx]
    if missing:
        raise ChannelError(f"{what}: expected channel {missing[0]!r} in the adapter's channels, "
                           f"found {', '.join(names)}")
    return np.array([idx[w] for w in wanted], dtype=np.int64)


class Task:
    """Base class. Subclasses set obs_dim/action_dim in ``bind`` and implement the methods below."""
    name = "base"

    def __init__(self, config=None):
        config = config if config is not None else TaskConfig(name=self.name)
        self.config = config
        self.max_episode_steps = config.max_episode_steps
        self.reset_mode = config.reset
        self.obs_dim = 0
        self.action_dim = 0
        self.action_low = None
        self.action_high = None

    def bind(self, adapter):
        raise NotImplementedError

    def start_episode(self, state, obs):
        """First sample of an episode: write the observation into obs (float64 (obs_dim,))."""
        raise NotImplementedError

    def step(self, state, obs):
        """Write obs; return (reward: float, terminated: bool) for the transition ending in state."""
        raise NotImplementedError

    def action_to_command(self, action, command):
        raise NotImplementedError

    def command_to_action(self, command, action):
        raise NotImplementedError


@register_task("track")
class TrackTask(Task):
    """Position regulation for position-commanded joints (the mock adapter): obs = joint positions
    (rad), action in [-1, 1] scaled to each command channel's limits, reward = -sum(position²),
    never terminates."""

    def bind(self, adapter):
        cmds = adapter.command_channels
        for c in cmds:
            if c.kind != "position" or not c.state:
                raise ChannelError(f"task track: expected position command channels with a measured "
                                   f"state, found {c.name!r} of kind {c.kind}")
            if not (math.isfinite(c.lower) and math.isfinite(c.upper)):
                raise ChannelError(f"task track: expected finite limits on {c.name!r}, found "
                                   f"[{c.lower}, {c.upper}]")
        self._pos = _index(adapter.state_names, [c.state for c in cmds], "task track")
        self._lo = np.array([c.lower for c in cmds])
        self._hi = np.array([c.upper for c in cmds])
        self._mid = 0.5 * (self._lo + self._hi)
        self._half = 0.5 * (self._hi - self._lo)
        self.obs_dim = self.action_dim = len(cmds)
        self.action_low = -np.ones(self.action_dim)
        self.action_high = np.ones(self.action_dim)

    def start_episode(self, state, obs):
        np.take(state, self._pos, out=obs)

    def step(self, state, obs):
        np.take(state, self._pos, out=obs)
        return -float(np.dot(obs, obs)), False

    def action_to_command(self, action, command):
        np.multiply(action, self._half, out=command)
        command += self._mid

    def command_to_action(self, command, action):
        np.subtract(command, self._mid, out=action)
        action /= self._half


class MjTask(Task):
    """Common part of the MuJoCo tasks: binds ``time``, ``qpos/*``, ``qvel/*`` and ``ctrl/*`` channels.

    Class attributes: ``joints`` (qpos names in the robot's order, all hinge/slide), ``exclude``
    (positions left out of the observation, as gymnasium's exclude_current_positions), ``action_bound``
    (gymnasium's action space is [-bound, bound]; command = action × (upper / bound), i.e. × gear),
    ``velocity_clip`` (gymnasium clips observed velocities, e.g. Hopper ±10; None for none).
    """
    joints = ()
    exclude = ()
    action_bound = 1.0
    velocity_clip = None

    def bind(self, adapter):
        names = adapter.state_names
        self._t = int(_index(names, ["time"], f"task {self.name}")[0])
        self._qpos = _index(names, [f"qpos/{j}" for j in self.joints], f"task {self.name}")
        self._qvel = _index(names, [f"qvel/{j}" for j in self.joints], f"task {self.name}")
        keep_pos = np.array([i for i, j in enumerate(self.joints) if j not in self.exclude],
                            dtype=np.int64)
        pos_idx = self._qpos[keep_pos]
        mask = self.config.mask
        if mask == "P":
            self._obs_idx = pos_idx
        elif mask == "V":
            self._obs_idx = self._qvel.copy()
        else:
            self._obs_idx = np.concatenate([pos_idx, self._qvel])
        self._n_pos = 0 if mask == "V" else pos_idx.size
        self._vel_slice = slice(self._n_pos, self._obs_idx.size)
        cmds = adapter.command_channels
        for c in cmds:
            if not (c.name.startswith("ctrl/") and np.isfinite(c.upper) and c.upper > 0):
                raise ChannelError(f"task {self.name}: expected ctrl/<actuator> command channels with "
                                   f"finite limits, found {c.name!r} [{c.lower}, {c.upper}]")
        self._scale = np.array([c.upper / self.action_bound for c in cmds])
        self.obs_dim = int(self._obs_idx.size)
        self.action_dim = len(cmds)
        self.action_low = np.full(self.action_dim, -self.action_bound)
        self.action_high = np.full(self.action_dim, self.action_bound)
        self.applied = np.zeros(self.action_dim)   # the action last sent, in policy units
        self._prev_x = 0.0
        self._prev_t = 0.0

    def _observe(self, state, obs):
        np.take(state, self._obs_idx, out=obs)
        if self.velocity_clip is not None and self._n_pos < obs.size:
            v = obs[self._vel_slice]
            np.clip(v, -self.velocity_clip, self.velocity_clip, out=v)

    def start_episode(self, state, obs):
        self._observe(state, obs)
        self.applied[:] = 0.0
        self._prev_x = state[self._qpos[0]]
        self._prev_t = state[self._t]

    def _x_velocity(self, state):
        """(x - x_prev) / (t - t_prev) on the robot's clock (gymnasium: over dt); 0 if no time passed."""
        x, t = state[self._qpos[0]], state[self._t]
        dt = t - self._prev_t
        v = (x - self._prev_x) / dt if dt > 0 else 0.0
        self._prev_x, self._prev_t = x, t
        return float(v)

    def action_to_command(self, action, command):
        np.multiply(action, self._scale, out=command)

    def command_to_action(self, command, action):
        np.divide(command, self._scale, out=action)
        self.applied[:] = action


@register_task("HalfCheetah")
class HalfCheetahTask(MjTask):
    """gymnasium HalfCheetah-v5: reward = x velocity - 0.1 · sum(action²); never terminates."""
    joints = ("rootx", "rootz", "rooty", "bthigh", "bshin", "bfoot", "fthigh", "fshin", "ffoot")
    exclude = ("rootx",)

    def step(self, state, obs):
        self._observe(state, obs)
        a = self.applied
        return self._x_velocity(state) - 0.1 * float(np.dot(a, a)), False


@register_task("Hopper")
class HopperTask(MjTask):
    """gymnasium Hopper-v5: reward = 1 if healthy (0 on the terminating step) + x velocity - 1e-3 · sum(action²); terminates when
    unhealthy: z <= 0.7, |angle| >= 0.2, or any of qpos[2:], qvel outside (-100, 100)."""
    joints = ("rootx", "rootz", "rooty", "thigh_joint", "leg_joint", "foot_joint")
    exclude = ("rootx",)
    velocity_clip = 10.0

    def step(self, state, obs):
        self._observe(state, obs)
        a = self.applied
        reward = self._x_velocity(state) - 1e-3 * float(np.dot(a, a))
        z, angle = state[self._qpos[1]], state[self._qpos[2]]
        healthy = 0.7 < z and -0.2 < angle < 0.2
        if healthy:
            for i in self._qpos[2:]:
                if not -100.0 < state[i] < 100.0:
                    healthy = False
            for i in self._qvel:
                if not -100.0 < state[i] < 100.0:
                    healthy = False
        return reward + (1.0 if healthy else 0.0), not healthy


@register_task("InvertedPendulum")
class InvertedPendulumTask(MjTask):
    """gymnasium InvertedPendulum-v5: reward 1 while |hinge angle| <= 0.2 rad and the state is finite;
    terminates otherwise (reward 0 on that step). Actions in [-3, 3]."""
    joints = ("slider", "hinge")
    action_bound = 3.0

    def step(self, state, obs):
        self._observe(state, obs)
        finite = bool(np.isfinite(state[self._qpos]).all() and np.isfinite(state[self._qvel]).all())
        terminated = (not finite) or abs(state[self._qpos[1]]) > 0.2
        return (0.0 if terminated else 1.0), terminated


__all__ = ["TASKS", "ConfigError", "HalfCheetahTask", "HopperTask", "InvertedPendulumTask", "MjTask", "Task",
           "TaskConfig", "TrackTask", "make_task", "register_task"]

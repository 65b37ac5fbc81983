"""Tasks for robots: sensor channels -> observation, reward, termination; policy actions <-> commands.

A task implements ``controller.interfaces.TaskInterface``. It is registered by name
(``@register_task("name")``) and chosen in YAML (``task.name``). The loop uses it as follows, with
``state`` the float64 array an adapter's ``read`` filled and every array owned by the loop::

    task.bind(adapter)                            # once: channel names -> index arrays, sizes, bounds
    task.start_episode(state, obs)                # the first usable sample of an episode
    reward, terminated = task.step(state, obs, applied)   # every later tick; obs written in place
    task.action_to_command(action, command)       # policy units -> command units (SI), in place
    task.command_to_action(sent, applied)         # the command actually sent -> policy units, once

``applied`` is the loop's one buffer of the action actually applied: ``command_to_action`` writes it
after each write, the loop hands it to ``policy.credit``, and the next ``step`` computes the reward of
the transition from it. It is finite and within [action_low, action_high]: the safety filter sends only
finite commands within the channel limits, which map affinely onto the action bounds, and the
conversion clips away the rounding. Truncation is the loop's business (``max_episode_steps``).
``reset`` says how an episode starts: ``"adapter"`` asks the adapter to reset the robot (simulator,
emulator), ``"none"`` continues from wherever the robot is (a real robot without a reset procedure).

The MuJoCo tasks (HalfCheetah, Hopper, Walker2d, Swimmer, InvertedPendulum) take their observation
layout, reward weights and termination ranges from gymnasium v5 itself (:class:`MjTask`); gymnasium and
MuJoCo load only when one is built.
Per tick the tasks call small numba kernels over preallocated index arrays: nothing is allocated.
"""
import dataclasses
import math
from typing import Literal

import numpy as np
from numba import njit

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


def channel_index(names, wanted, what):
    """int64 indices of the channel names ``wanted`` in ``names``; ChannelError naming the first missing."""
    idx = {n: i for i, n in enumerate(names)}
    missing = [w for w in wanted if w not in idx]
    if missing:
        raise ChannelError(f"{what}: expected channel {missing[0]!r} in the adapter's channels, "
                           f"found {', '.join(names)}")
    return np.array([idx[w] for w in wanted], dtype=np.int64)


# ----------------------------------------------------------------------------- kernels (no allocation)
@njit(cache=True, error_model="numpy")
def observe(state, idx, bound, obs):
    """obs[i] = clip(state[idx[i]], -bound[i], bound[i]) (bound inf: not clipped; NaN passes through)."""
    for i in range(idx.shape[0]):
        v = state[idx[i]]
        if v > bound[i]:
            v = bound[i]
        elif v < -bound[i]:
            v = -bound[i]
        obs[i] = v


@njit(cache=True, error_model="numpy")
def inside(state, idx, lower, upper):
    """True when lower[i] < state[idx[i]] < upper[i] for every i (a NaN is outside)."""
    for i in range(idx.shape[0]):
        v = state[idx[i]]
        if not (lower[i] < v < upper[i]):
            return False
    return True


@njit(cache=True, error_model="numpy")
def sum_of_squares(x):
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i] * x[i]
    return s


@njit(cache=True, error_model="numpy")
def to_command(action, scale, offset, command):
    """command = offset + scale * action (in place)."""
    for i in range(action.shape[0]):
        command[i] = offset[i] + scale[i] * action[i]


@njit(cache=True, error_model="numpy")
def to_action(command, scale, offset, low, high, action):
    """action = clip((command - offset) / scale, low, high) (in place)."""
    for i in range(command.shape[0]):
        v = (command[i] - offset[i]) / scale[i]
        if v < low[i]:
            v = low[i]
        elif v > high[i]:
            v = high[i]
        action[i] = v


def warm_up():
    """Compile (or load from numba's cache) the task kernels before the first tick."""
    x, i = np.zeros(1), np.zeros(1, dtype=np.int64)
    observe(x, i, x + 1.0, np.zeros(1))
    inside(x, i, x - 1.0, x + 1.0)
    sum_of_squares(x)
    to_command(x, x + 1.0, x, np.zeros(1))
    to_action(x, x + 1.0, x, x - 1.0, x + 1.0, np.zeros(1))


# ----------------------------------------------------------------------------- tasks
class Task:
    """Base class: the action <-> command conversion, affine per channel; subclasses implement ``bind``
    (calling :meth:`_bind_commands`), ``start_episode`` and ``step``."""
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

    def step(self, state, obs, applied):
        """Write obs; return (reward: float, terminated: bool) for the transition ending in state, during
        which the robot got ``applied`` (policy units)."""
        raise NotImplementedError

    def _bind_commands(self, channels, low, high):
        """Map the action box [low, high] (float64 (n,)) onto the channels' limits, which must be finite."""
        for c in channels:
            if not (math.isfinite(c.lower) and math.isfinite(c.upper) and c.lower < c.upper):
                raise ChannelError(f"task {self.name}: expected finite limits lower < upper on command "
                                   f"channel {c.name!r}, found [{c.lower}, {c.upper}]")
        if len(channels) != low.size:
            raise ChannelError(f"task {self.name}: expected {low.size} command channels, found "
                               f"{len(channels)} ({', '.join(c.name for c in channels)})")
        lower = np.array([c.lower for c in channels])
        upper = np.array([c.upper for c in channels])
        # midpoints and half-widths: a symmetric box maps with offset exactly 0
        self._scale = (upper - lower) / (high - low)
        self._offset = 0.5 * (lower + upper) - self._scale * 0.5 * (low + high)
        self.action_dim = len(channels)
        self.action_low = np.array(low, dtype=np.float64)
        self.action_high = np.array(high, dtype=np.float64)
        warm_up()

    def action_to_command(self, action, command):
        to_command(action, self._scale, self._offset, command)

    def command_to_action(self, command, action):
        to_action(command, self._scale, self._offset, self.action_low, self.action_high, action)


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
        self._bind_commands(cmds, -np.ones(len(cmds)), np.ones(len(cmds)))
        self._pos = channel_index(adapter.state_names, [c.state for c in cmds], "task track")
        self._bound = np.full(len(cmds), math.inf)
        self.obs_dim = len(cmds)

    def start_episode(self, state, obs):
        observe(state, self._pos, self._bound, obs)

    def step(self, state, obs, applied):
        observe(state, self._pos, self._bound, obs)
        return -sum_of_squares(obs), False


class MjTask(Task):
    """A gymnasium MuJoCo v5 task on a robot's sensor channels (``time``, ``qpos/<joint>``,
    ``qvel/<joint>``; commands ``ctrl/<actuator>`` = gear × control: hardware.mjrobot).

    Nothing is typed twice: gymnasium's own env (the task's name + ``-v5``), made once when the task is
    built, gives the observation layout and its masks (:func:`envs.masks.observation_layout` and
    ``kept_segments``, as the ``<Name>-P-v5`` ids: ``mask`` P, V or full), the velocities it clips, the
    action box, and the reward weights and ranges (``_read_reward``).
    """

    def __init__(self, config=None):
        super().__init__(config)
        import gymnasium

        from envs.masks import SUPPORTED_BASES, kept_segments, observation_layout
        from hardware.mjrobot import joint_channels
        base_id = SUPPORTED_BASES[self.name]
        env = gymnasium.make(base_id).unwrapped
        try:
            layout = observation_layout(base_id, env)
            pos, vel = joint_channels(env.model)
            self._qpos = [c.name for c in pos]
            self._qvel = [c.name for c in vel]
            sources = {"qpos": self._qpos, "qvel": self._qvel}
            mask = self.config.mask
            self._obs_names, bounds = [], []
            for seg in (layout if mask == "full" else kept_segments(layout, mask)):
                if seg.source not in sources:
                    raise ConfigError(f"task.mask: {mask} of {base_id} observes {seg.name}, expected only "
                                      f"qpos and qvel entries (sensor channels)")
                self._obs_names += sources[seg.source][seg.first:seg.first + seg.size]
                bounds += [seg.clip] * seg.size
            self._obs_bound = np.array(bounds, dtype=np.float64)
            self.action_low = env.action_space.low.astype(np.float64)
            self.action_high = env.action_space.high.astype(np.float64)
            self._read_reward(env)
        finally:
            env.close()

    def _read_reward(self, env):
        """Read the reward weights and termination ranges off gymnasium's env instance."""
        raise NotImplementedError

    def bind(self, adapter):
        names, what = adapter.state_names, f"task {self.name}"
        self._t = int(channel_index(names, ["time"], what)[0])
        self._x = int(channel_index(names, self._qpos[:1], what)[0])
        self._obs_idx = channel_index(names, self._obs_names, what)
        self._check_idx = channel_index(names, self._check_names, what)
        cmds = adapter.command_channels
        for c in cmds:
            if not c.name.startswith("ctrl/"):
                raise ChannelError(f"{what}: expected ctrl/<actuator> command channels, found {c.name!r}")
        self._bind_commands(cmds, self.action_low, self.action_high)
        self.obs_dim = int(self._obs_idx.size)
        self._prev_x = 0.0
        self._prev_t = 0.0

    def start_episode(self, state, obs):
        observe(state, self._obs_idx, self._obs_bound, obs)
        self._prev_x = state[self._x]
        self._prev_t = state[self._t]

    def _x_velocity(self, state):
        """(x - x_prev) / (t - t_prev) on the robot's clock (gymnasium: over dt); 0 if no time passed."""
        x, t = state[self._x], state[self._t]
        dt = t - self._prev_t
        v = (x - self._prev_x) / dt if dt > 0 else 0.0
        self._prev_x, self._prev_t = x, t
        return float(v)


class LocomotionTask(MjTask):
    """gymnasium's locomotion reward: ``_forward_reward_weight`` × x velocity (of qpos[0]) +
    ``_healthy_reward`` when healthy − ``_ctrl_cost_weight`` × sum(action²); terminated when unhealthy
    and ``_terminate_when_unhealthy``. Healthy, as gymnasium's ``is_healthy`` (strict bounds): qpos[1]
    within ``_healthy_z_range``, qpos[2] within ``_healthy_angle_range``, and [qpos, qvel][2:] within
    ``_healthy_state_range``, each where the env has that range."""
    HEALTHY_Z, HEALTHY_ANGLE, HEALTHY_STATE_FROM = 1, 2, 2   # the indices gymnasium's is_healthy reads

    def _read_reward(self, env):
        self._forward_weight = float(env._forward_reward_weight)
        self._ctrl_weight = float(env._ctrl_cost_weight)
        self._healthy_reward = float(getattr(env, "_healthy_reward", 0.0))
        self._terminate = bool(getattr(env, "_terminate_when_unhealthy", False))
        checks = []      # (state channel, lower, upper)
        if hasattr(env, "_healthy_z_range"):
            checks.append((self._qpos[self.HEALTHY_Z], *env._healthy_z_range))
        if hasattr(env, "_healthy_angle_range"):
            checks.append((self._qpos[self.HEALTHY_ANGLE], *env._healthy_angle_range))
        if hasattr(env, "_healthy_state_range"):
            lo, hi = env._healthy_state_range
            checks += [(n, lo, hi) for n in (self._qpos + self._qvel)[self.HEALTHY_STATE_FROM:]]
        self._check_names = [n for n, _, _ in checks]
        self._check_lo = np.array([lo for _, lo, _ in checks], dtype=np.float64)
        self._check_hi = np.array([hi for _, _, hi in checks], dtype=np.float64)

    def step(self, state, obs, applied):
        observe(state, self._obs_idx, self._obs_bound, obs)
        forward = self._forward_weight * self._x_velocity(state)
        cost = self._ctrl_weight * sum_of_squares(applied)
        if not self._check_names:
            return forward - cost, False
        healthy = inside(state, self._check_idx, self._check_lo, self._check_hi)
        return forward + (self._healthy_reward if healthy else 0.0) - cost, self._terminate and not healthy


@register_task("HalfCheetah")
class HalfCheetahTask(LocomotionTask):
    """gymnasium HalfCheetah-v5: forward reward − control cost; never terminates."""


@register_task("Hopper")
class HopperTask(LocomotionTask):
    """gymnasium Hopper-v5: forward + healthy reward − control cost; terminates when unhealthy."""


@register_task("Walker2d")
class Walker2dTask(LocomotionTask):
    """gymnasium Walker2d-v5: forward + healthy reward − control cost; terminates when unhealthy."""


@register_task("Swimmer")
class SwimmerTask(LocomotionTask):
    """gymnasium Swimmer-v5: forward reward − control cost; never terminates."""


@register_task("InvertedPendulum")
class InvertedPendulumTask(MjTask):
    """gymnasium InvertedPendulum-v5: reward 1 while the hinge angle qpos[1] stays within ±0.2 rad and
    the state is finite; terminated otherwise (reward 0 on that step)."""
    MAX_ANGLE = 0.2      # typed in gymnasium's step(): the env has no attribute for it

    def _read_reward(self, env):
        self._check_names = self._qpos + self._qvel      # all finite (gymnasium: the observation)
        n = len(self._check_names)
        self._check_lo, self._check_hi = np.full(n, -math.inf), np.full(n, math.inf)

    def bind(self, adapter):
        super().bind(adapter)
        self._angle = int(channel_index(adapter.state_names, self._qpos[1:2], f"task {self.name}")[0])

    def step(self, state, obs, applied):
        observe(state, self._obs_idx, self._obs_bound, obs)
        finite = inside(state, self._check_idx, self._check_lo, self._check_hi)
        terminated = (not finite) or abs(state[self._angle]) > self.MAX_ANGLE
        return (0.0 if terminated else 1.0), terminated


__all__ = ["TASKS", "ConfigError", "HalfCheetahTask", "HopperTask", "InvertedPendulumTask", "LocomotionTask",
           "MjTask", "SwimmerTask", "Task", "TaskConfig", "TrackTask", "Walker2dTask", "channel_index",
           "make_task", "register_task"]

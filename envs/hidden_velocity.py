"""Hidden velocity: bring a 1-D point mass to a target and hold it there, seeing its position only.

State: position ``x`` (m) and velocity ``v`` (m/s) of a unit mass on a line between inelastic walls at
``±wall``. At every reset the target ``g``, the start position ``x_0`` (both uniform in
``[-target_range, target_range]``) and the start velocity ``v_0`` (uniform in ``[-init_speed,
init_speed]``) are drawn from the env's seeded ``np_random``. One step of ``dt`` seconds with action
``u`` (semi-implicit Euler):

* ``a = max_accel · clip(u, -1, 1) − damping · v``            (m/s²)
* ``v ← v + dt · a``;  ``x ← x + dt · v``                     (the new velocity moves the mass)
* if ``|x| > wall``: ``x ← ±wall``, ``v ← 0``                  (inelastic wall)
* reward ``−((x − g)² + action_cost · clip(u, -1, 1)²)``, with the new ``x``.

Episodes last ``episode_steps`` steps and end by truncation (``truncated=True``; never terminated).

Observation (``Box(-inf, inf, (2,), float32)``, m): ``[x + ε, g]``, ``ε ~ N(0, obs_noise_std²)`` drawn
from ``np_random`` (default 0: exact). With ``observe_velocity=True`` (id ``HiddenVelocityFull-v0``):
``[x + ε, g, v]`` (shape (3,)), the full-information reference. Action: ``Box(-1, 1, (1,), float32)``.

Why memory is needed: a policy that sees only the current position (and target) applies a force
``f(x)``; the step map ``(x, v) → (x + dt·v', v' = v + dt·f(x))`` then has Jacobian determinant 1 for any
``f`` (it preserves phase-space area), so no such policy can make the target an attracting rest point:
without damping the mass keeps oscillating, and only the walls dissipate energy. Stopping it needs the
velocity, which two exact positions give (``v_t = (x_t − x_{t−1}) / dt`` away from the walls) and noisy
positions give only after filtering. With ``damping > 0`` the map contracts area by ``1 − dt·damping``
per step and a position-only controller can settle the mass: the task then tests less memory.

Known answers (defaults: ``dt = 0.1`` s, 100 steps, ``max_accel = 1`` m/s², no damping, walls at ±2 m,
targets and starts in ±1 m, start speed ≤ 0.5 m/s, ``action_cost = 0.01``; mean episode return ±
standard error over the first episodes of seeds 0..999):

* PD on the true velocity (``HiddenVelocityFull-v0``), ``u = −4 (x − g) − 3 v``: −5.04 ± 0.24, the
  full-information reference;
* the same PD on the finite-difference velocity ``(x_t − x_{t−1}) / dt`` (one step of memory, 0 at the
  first step): −5.04 ± 0.24; with ``obs_noise_std = 0.05`` it falls to −7.5 (true-velocity PD: −5.1);
* P only on position, ``u = −k (x − g)``: best −30.5 ± 1.0 at k = 2; −30.5 to −41 for k in 0.25..32;
* zero action: −200 ± 6 (the start velocity carries the mass into a wall).

``info`` (from ``reset`` and every ``step``): ``position`` x, ``velocity`` v, ``target`` g (floats, SI)
and ``t`` (int, steps taken in the episode).
"""
from __future__ import annotations

import math

import gymnasium as gym
import numpy as np

from envs.errors import EnvConfigError, check_float, check_int

__all__ = ["HiddenVelocity", "MAX_EPISODE_STEPS"]

#: largest allowed episode length.
MAX_EPISODE_STEPS = 1_000_000


class HiddenVelocity(gym.Env):
    """Point mass to a target with the velocity hidden; see the module docstring for the definition.

    Args:
        dt: step duration, s, in (0, 1].
        episode_steps: steps per episode, in [1, 1000000].
        max_accel: acceleration of the action u = ±1, m/s², in (0, 1000].
        damping: viscous friction coefficient, 1/s, in [0, 1/dt] (``dt · damping ≤ 1``).
        wall: the walls' positions ±wall, m, in (0, 1000].
        target_range: targets and start positions uniform in ±target_range, m, in [0, wall].
        init_speed: start velocities uniform in ±init_speed, m/s, in [0, 1000].
        obs_noise_std: standard deviation of the Gaussian noise on the observed position, m, in [0, 1000].
        action_cost: weight of clip(u)² in the cost, in [0, 1000].
        observe_velocity: True appends the true velocity to the observation (the reference task).
    """

    metadata = {"render_modes": []}

    def __init__(self, dt: float = 0.1, episode_steps: int = 100, max_accel: float = 1.0, damping: float = 0.0,
                 wall: float = 2.0, target_range: float = 1.0, init_speed: float = 0.5,
                 obs_noise_std: float = 0.0, action_cost: float = 0.01, observe_velocity: bool = False,
                 render_mode=None):
        self.dt = check_float("dt", dt, 0.0, 1.0, low_inclusive=False)
        self.episode_steps = check_int("episode_steps", episode_steps, 1, MAX_EPISODE_STEPS)
        self.max_accel = check_float("max_accel", max_accel, 0.0, 1e3, low_inclusive=False)
        self.damping = check_float("damping", damping, 0.0, 1.0 / self.dt)
        self.wall = check_float("wall", wall, 0.0, 1e3, low_inclusive=False)
        self.target_range = check_float("target_range", target_range, 0.0, self.wall)
        self.init_speed = check_float("init_speed", init_speed, 0.0, 1e3)
        self.obs_noise_std = check_float("obs_noise_std", obs_noise_std, 0.0, 1e3)
        self.action_cost = check_float("action_cost", action_cost, 0.0, 1e3)
        if not isinstance(observe_velocity, (bool, np.bool_)):
            raise EnvConfigError(f"observe_velocity must be True or False; got {observe_velocity!r} "
                                 f"of type {type(observe_velocity).__name__}")
        self.observe_velocity = bool(observe_velocity)
        if render_mode is not None:
            raise EnvConfigError(f"render_mode must be None (no rendering); got {render_mode!r}")
        self.render_mode = None
        n_obs = 3 if self.observe_velocity else 2
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(n_obs,), dtype=np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self._buf = np.zeros(n_obs, dtype=np.float32)
        self.position = 0.0
        self.velocity = 0.0
        self.target = 0.0
        self._t = 0
        self._done = True

    def _obs(self) -> np.ndarray:
        x = self.position
        if self.obs_noise_std > 0.0:
            x += self.obs_noise_std * float(self.np_random.standard_normal())
        buf = self._buf  # filled in place and copied: cheaper than building a new array from a list
        buf[0] = x
        buf[1] = self.target
        if self.observe_velocity:
            buf[2] = self.velocity
        return buf.copy()

    @staticmethod
    def _force(action) -> float:
        if type(action) is np.ndarray and action.shape == (1,):  # the common case, without conversions
            u = float(action[0])
        else:
            a = np.asarray(action, dtype=np.float64)
            if a.size != 1:
                raise EnvConfigError(f"action must be one finite number (clipped to [-1, 1]); got {action!r}")
            u = float(a.reshape(-1)[0])
        if not math.isfinite(u):
            raise EnvConfigError(f"action must be one finite number (clipped to [-1, 1]); got {action!r}")
        return min(1.0, max(-1.0, u))

    def _info(self) -> dict:
        return {"position": self.position, "velocity": self.velocity, "target": self.target, "t": self._t}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        r = self.target_range
        self.target = float(self.np_random.uniform(-r, r))
        self.position = float(self.np_random.uniform(-r, r))
        self.velocity = float(self.np_random.uniform(-self.init_speed, self.init_speed))
        self._t = 0
        self._done = False
        return self._obs(), self._info()

    def step(self, action):
        if self._done:
            raise gym.error.ResetNeeded("step() called on a finished episode; call reset() first")
        u = self._force(action)
        v = self.velocity + self.dt * (self.max_accel * u - self.damping * self.velocity)
        x = self.position + self.dt * v
        if x > self.wall or x < -self.wall:  # inelastic wall: the mass stops on it
            x, v = math.copysign(self.wall, x), 0.0
        self.position, self.velocity = x, v
        self._t += 1
        self._done = self._t >= self.episode_steps
        reward = -((x - self.target) ** 2 + self.action_cost * u * u)
        return self._obs(), reward, False, self._done, self._info()

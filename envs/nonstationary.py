"""Changing dynamics: MuJoCo model parameters that change at episode boundaries on a seeded schedule.

:class:`ChangingDynamics` wraps a MuJoCo env (inside the observation mask). Its schedule splits the
run's env steps into segments of ``every`` steps; segment k has its own dynamics, drawn from
``np.random.default_rng([schedule_seed, k])`` (a function of the seed and the index only, so a resumed
run finds the same dynamics at the same step):

* ``friction``: a factor on every geom's sliding friction (contacts take the larger of the two geoms'
  friction, so the ground contact scales by it), drawn log-uniformly in the range;
* ``payload``: a mass added to the robot's root body, as a fraction of the robot's total mass
  (uniform in the range);
* ``motor``: a factor on every actuator's gear, a weakening (< 1) or stronger motor (uniform);
* ``gravity``: a factor on gravity (uniform).

A range (lo, lo) holds that parameter at lo; (1, 1) / (0, 0) leave it as built. A change takes effect at
the first reset after a segment boundary (never during an episode). ``info["dynamics"]`` on every reset
and the ``dynamics`` attribute give the segment index and its parameters; ``changes`` counts the
changes applied. ``schedule_seed`` None takes the seed of the first ``reset(seed=...)`` (0 without one).
``first_segment`` starts the schedule at that segment (a fresh agent on segment k's dynamics);
``every`` 0 never changes after the first segment.

Registered ids (``envs.nonstationary_ids``): ``SlipperyAnt-v5`` / ``SlipperyAnt-P-v5`` (friction drawn
log-uniformly in [0.02, 2] of nominal, a new segment every 2M steps) and ``ChangingHalfCheetah-P-v5`` /
``ChangingHalfCheetah-v5`` (friction in [0.4, 1.6], payload in [0, 0.25], motor in [0.7, 1], every 250k
steps). The wrapper saves and restores its counters through ``checkpoint_state`` /
``restore_checkpoint_state`` (``launch.env_state``), so ``train --resume`` continues the schedule.
"""
import math

import gymnasium as gym
import numpy as np

from envs.errors import EnvConfigError

PARAMETERS = ("friction", "payload", "motor", "gravity")
_NEUTRAL = {"friction": (1.0, 1.0), "payload": (0.0, 0.0), "motor": (1.0, 1.0), "gravity": (1.0, 1.0)}


def _check_range(name, value):
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise EnvConfigError(f"{name}: expected a range [lo, hi] of numbers, found {value!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
        raise EnvConfigError(f"{name}: expected finite lo <= hi, found {value!r}")
    if name in ("friction", "motor", "gravity") and lo <= 0:
        raise EnvConfigError(f"{name}: expected factors > 0, found {value!r}")
    if name == "payload" and lo < 0:
        raise EnvConfigError(f"{name}: expected a mass fraction >= 0, found {value!r}")
    return lo, hi


def segment_dynamics(schedule_seed, k, ranges):
    """The dynamics of segment ``k``: {parameter: value} drawn from default_rng([seed, k])."""
    rng = np.random.default_rng([int(schedule_seed), int(k)])
    draws = rng.random(len(PARAMETERS))
    out = {}
    for u, name in zip(draws, PARAMETERS):
        lo, hi = ranges[name]
        if name == "friction" and lo != hi:
            out[name] = float(math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo))))
        else:
            out[name] = float(lo + u * (hi - lo))
    return out


class ModelDynamics:
    """The nominal friction, gears, gravity and root-body mass of a MuJoCo model, and ``apply(values)``
    setting {friction, payload, motor, gravity} relative to them (in place, with mj_setConst: it uses
    ``data`` as scratch, so call it before setting the simulator's state)."""

    def __init__(self, model, data):
        self.model, self.data = model, data
        self._friction0 = model.geom_friction[:, 0].copy()
        self._gear0 = model.actuator_gear[:, 0].copy()
        self._gravity0 = model.opt.gravity.copy()
        self._root = 1                                  # the first body after the world
        self._mass0 = float(model.body_mass[self._root])
        self._total_mass = float(model.body_subtreemass[0])

    def apply(self, values, keep_state=False):
        """Set the parameters; keep_state: the simulator's state (qpos, qvel, time...) survives (a change
        in the middle of an episode)."""
        import mujoco
        m = self.model
        if keep_state:
            spec = mujoco.mjtState.mjSTATE_INTEGRATION
            state = np.empty(mujoco.mj_stateSize(m, spec))
            mujoco.mj_getState(m, self.data, state, spec)
        m.geom_friction[:, 0] = self._friction0 * values["friction"]
        m.actuator_gear[:, 0] = self._gear0 * values["motor"]
        m.opt.gravity[:] = self._gravity0 * values["gravity"]
        m.body_mass[self._root] = self._mass0 + values["payload"] * self._total_mass
        mujoco.mj_setConst(m, self.data)                # masses: the derived constants follow
        if keep_state:
            mujoco.mj_setState(m, self.data, state, spec)
            mujoco.mj_forward(m, self.data)


class ChangingDynamics(gym.Wrapper):
    """Changes the MuJoCo model of ``env.unwrapped`` segment by segment (see the module docstring).
    every: env steps per segment (> 0; 0: no change after ``first_segment``); friction, payload, motor,
    gravity: (lo, hi) ranges."""

    def __init__(self, env, every, friction=(1.0, 1.0), payload=(0.0, 0.0), motor=(1.0, 1.0),
                 gravity=(1.0, 1.0), schedule_seed=None, first_segment=0):
        super().__init__(env)
        u = env.unwrapped
        if not hasattr(u, "model") or not hasattr(u, "data"):
            raise EnvConfigError(f"ChangingDynamics: {type(u).__name__} is not a MuJoCo env")
        if int(every) < 0:
            raise EnvConfigError(f"every: expected env steps >= 0, found {every!r}")
        if int(first_segment) < 0:
            raise EnvConfigError(f"first_segment: expected an index >= 0, found {first_segment!r}")
        self.every = int(every)
        self.ranges = {name: _check_range(name, value) for name, value in
                       zip(PARAMETERS, (friction, payload, motor, gravity))}
        self.schedule_seed = None if schedule_seed is None else int(schedule_seed)
        self.first_segment = int(first_segment)
        self._model = ModelDynamics(u.model, u.data)
        self.total_steps = 0
        self.segment = -1                               # none applied yet
        self.changes = 0
        self.dynamics = {}

    def _segment_at(self, steps):
        if self.every == 0:
            return self.first_segment
        return self.first_segment + steps // self.every

    def _apply(self, k):
        d = segment_dynamics(self.schedule_seed, k, self.ranges)
        self._model.apply(d)
        if self.segment >= 0:
            self.changes += 1
        self.segment = k
        self.dynamics = {"segment": k, **d}

    def reset(self, *, seed=None, options=None):
        if self.schedule_seed is None:
            self.schedule_seed = 0 if seed is None else int(seed)
        k = self._segment_at(self.total_steps)
        if k != self.segment:
            self._apply(k)
        obs, info = self.env.reset(seed=seed, options=options)
        info = dict(info)
        info["dynamics"] = dict(self.dynamics)
        return obs, info

    def step(self, action):
        self.total_steps += 1
        return self.env.step(action)

    # ------------------------------------------------------------------ checkpoints (launch.env_state)
    def checkpoint_state(self):
        """JSON-able counters: the schedule's position and seed."""
        return {"total_steps": self.total_steps, "segment": self.segment, "changes": self.changes,
                "schedule_seed": self.schedule_seed}

    def restore_checkpoint_state(self, state):
        """Counters from checkpoint_state; the model gets that segment's dynamics again."""
        self.total_steps = int(state["total_steps"])
        self.schedule_seed = None if state["schedule_seed"] is None else int(state["schedule_seed"])
        segment = int(state["segment"])
        self.segment = -1
        if segment >= 0:
            self._apply(segment)
        self.changes = int(state["changes"])

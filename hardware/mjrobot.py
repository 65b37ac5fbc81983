"""A MuJoCo robot as hardware: channel tables, sensor sampling, command application, reset.

Shared by the sim adapter (in-process), the robot emulator (behind UDP) and the UDP adapter (which
only needs the channel tables of the robot it talks to, like a URDF).

State channels, in this order: ``time`` (s, the robot's clock = simulation time), ``qpos/<joint>``
(rad for hinge joints, m for slide joints; a free joint gives x, y, z in m and qw, qx, qy, qz
dimensionless; a ball joint the four quaternion entries), then ``qvel/<joint>`` (rad/s or m/s; free:
vx, vy, vz m/s and wx, wy, wz rad/s). Command channels: ``ctrl/<actuator>``, kind effort, in N·m for
actuators driving hinge joints and N for slide joints: command = gear × control, limits gear ×
ctrlrange. Controls are clamped to ctrlrange by MuJoCo as well.

The robot is built from a gymnasium id (``HalfCheetah-v5``; masked ids of ``envs`` such as
``HalfCheetah-P-v5`` give the same robot) or from an MJCF file. From a gymnasium id it keeps the env's
``frame_skip`` and reset distribution (``reset(seed)`` = ``env.reset(seed=seed)``), so a lock-step
simulation reproduces gymnasium's transitions.
"""
import math
from pathlib import Path

import mujoco
import numpy as np

from controller.config import ConfigError
from envs.errors import check_env_id
from hardware.base import Channel, ChannelError, HardwareError


class RobotModelError(HardwareError):
    """The robot's model cannot be built (an MJCF file MuJoCo rejects, an env id that cannot be made)."""


def check_robot_source(env_id, mjcf, prefix):
    """Config check of a robot description (``<prefix>env_id`` / ``<prefix>mjcf``, prefix "udp." etc.):
    exactly one of the two; env_id a registered gymnasium id; mjcf an existing file. ConfigError."""
    if (env_id == "") == (mjcf == ""):
        raise ConfigError(f"{prefix}env_id: expected exactly one of env_id or mjcf, found "
                          f"{(env_id, mjcf)!r}")
    if env_id:
        check_env_id(env_id, f"{prefix}env_id")
        return
    path = Path(mjcf)
    if not path.is_file():
        why = "a folder" if path.is_dir() else "no such file"
        raise ConfigError(f"{prefix}mjcf: expected an MJCF file, found {mjcf!r} ({why})")


_JOINT_UNITS = {  # mjtJoint -> (position names and units, velocity names and units)
    int(mujoco.mjtJoint.mjJNT_FREE): ((("x", "m"), ("y", "m"), ("z", "m"), ("qw", "1"), ("qx", "1"),
                                       ("qy", "1"), ("qz", "1")),
                                      (("vx", "m/s"), ("vy", "m/s"), ("vz", "m/s"), ("wx", "rad/s"),
                                       ("wy", "rad/s"), ("wz", "rad/s"))),
    int(mujoco.mjtJoint.mjJNT_BALL): ((("qw", "1"), ("qx", "1"), ("qy", "1"), ("qz", "1")),
                                      (("wx", "rad/s"), ("wy", "rad/s"), ("wz", "rad/s"))),
    int(mujoco.mjtJoint.mjJNT_SLIDE): (((None, "m"),), ((None, "m/s"),)),
    int(mujoco.mjtJoint.mjJNT_HINGE): (((None, "rad"),), ((None, "rad/s"),)),
}


def _gym_env(env_id):
    import gymnasium
    try:
        env = gymnasium.make(env_id)
    except gymnasium.error.Error:
        import envs  # noqa: F401 - registers the masked ids, then try again
        try:
            env = gymnasium.make(env_id)
        except Exception as err:  # gymnasium raises several types for unknown ids or missing deps
            raise RobotModelError(f"env_id {env_id!r}: cannot make it ({type(err).__name__}: {err})") \
                from None
    unwrapped = env.unwrapped
    if not hasattr(unwrapped, "model") or not hasattr(unwrapped, "frame_skip"):
        raise ChannelError(f"env_id {env_id!r}: expected a gymnasium MuJoCo env, found "
                           f"{type(unwrapped).__name__}")
    return unwrapped


def _name(model, objtype, i, prefix):
    return mujoco.mj_id2name(model, objtype, i) or f"{prefix}{i}"


def joint_channels(model):
    """(position channels, velocity channels) of a MuJoCo model: entry i of each is qpos[i] / qvel[i]."""
    pos, vel = [], []
    for j in range(model.njnt):
        jname = _name(model, mujoco.mjtObj.mjOBJ_JOINT, j, "joint")
        ppart, vpart = _JOINT_UNITS[int(model.jnt_type[j])]
        for sub, unit in ppart:
            pos.append(Channel(f"qpos/{jname}" + (f".{sub}" if sub else ""), unit, kind="position"))
        for sub, unit in vpart:
            vel.append(Channel(f"qvel/{jname}" + (f".{sub}" if sub else ""), unit, kind="velocity"))
    return tuple(pos), tuple(vel)


class MjRobot:
    """model + data + channel tables. ``env_id`` or ``mjcf`` (path); ``timestep`` overrides the
    model's physics step (seconds; the emulator sets it to its tick period / substeps)."""

    def __init__(self, env_id=None, mjcf=None, timestep=None):
        if (env_id is None) == (mjcf is None):
            raise ChannelError(f"robot: expected exactly one of env_id or mjcf, found env_id={env_id!r}, "
                               f"mjcf={mjcf!r}")
        self.env = None
        if env_id is not None:
            self.env = _gym_env(env_id)
            self.model, self.data = self.env.model, self.env.data
            self.frame_skip = int(self.env.frame_skip)
            self.description = env_id
        else:
            try:
                self.model = mujoco.MjModel.from_xml_path(str(mjcf))
            except ValueError as err:  # MuJoCo's parse and compile errors
                raise RobotModelError(f"mjcf {str(mjcf)!r}: MuJoCo cannot load it ({err})") from None
            self.data = mujoco.MjData(self.model)
            self.frame_skip = 1
            self.description = str(mjcf)
        if timestep is not None:
            self.model.opt.timestep = float(timestep)
        m = self.model
        self.nq, self.nv, self.nu = m.nq, m.nv, m.nu
        if self.nu == 0:
            raise ChannelError(f"robot {self.description}: expected at least one actuator, found none")
        pos, vel = joint_channels(m)
        self.state_channels = (Channel("time", "s"),) + pos + vel
        self.gear = m.actuator_gear[:, 0].copy()
        cmds = []
        for a in range(self.nu):
            aname = _name(m, mujoco.mjtObj.mjOBJ_ACTUATOR, a, "actuator")
            unit = "1"
            if m.actuator_trntype[a] == mujoco.mjtTrn.mjTRN_JOINT:
                jt = int(m.jnt_type[m.actuator_trnid[a, 0]])
                unit = "N*m" if jt == int(mujoco.mjtJoint.mjJNT_HINGE) else "N"
            if m.actuator_ctrllimited[a]:
                lo, hi = m.actuator_ctrlrange[a] * self.gear[a]
            else:
                lo, hi = -math.inf, math.inf
            lo, hi = min(lo, hi), max(lo, hi)
            cmds.append(Channel(f"ctrl/{aname}", unit, float(lo), float(hi), "effort"))
        self.command_channels = tuple(cmds)
        self.n_states = len(self.state_channels)
        self._inv_gear = 1.0 / self.gear
        self._ctrl = np.zeros(self.nu)

    @property
    def dt(self):
        """Seconds per control step (frame_skip physics steps)."""
        return self.model.opt.timestep * self.frame_skip

    def sample(self, out):
        """Write [time, qpos, qvel] into out (float64 (n_states,))."""
        d = self.data
        out[0] = d.time
        out[1:1 + self.nq] = d.qpos
        out[1 + self.nq:] = d.qvel

    def apply(self, command):
        """Set the controls from a command in channel units (float64 (nu,)): ctrl = command / gear."""
        np.multiply(command, self._inv_gear, out=self._ctrl)
        self.data.ctrl[:] = self._ctrl

    def step(self, n=None):
        """Advance n physics steps (default frame_skip), as gymnasium's do_simulation does."""
        mujoco.mj_step(self.model, self.data, nstep=self.frame_skip if n is None else n)
        mujoco.mj_rnePostConstraint(self.model, self.data)

    def reset(self, seed=None):
        """Back to an initial state: gymnasium's reset distribution for env ids, qpos0 for MJCF."""
        if self.env is not None:
            self.env.reset(seed=seed)
        else:
            mujoco.mj_resetData(self.model, self.data)
            mujoco.mj_forward(self.model, self.data)
        self.data.ctrl[:] = 0.0

    def close(self):
        if self.env is not None:
            self.env.close()

"""hardware.sim: an MJCF robot, lock-step semantics, and wall-clock pacing."""
import time

import numpy as np

from hardware.base import ReadStatus
from hardware.sim import SimAdapter, SimConfig

MJCF = """
<mujoco model="arm">
  <option timestep="0.002"/>
  <worldbody>
    <body name="link">
      <joint name="shoulder" type="hinge" axis="0 1 0" damping="0.1"/>
      <geom type="capsule" fromto="0 0 0 0.3 0 0" size="0.02" mass="0.5"/>
      <body name="slider" pos="0.3 0 0">
        <joint name="extend" type="slide" axis="1 0 0" damping="1"/>
        <geom type="sphere" size="0.03" mass="0.1"/>
      </body>
    </body>
  </worldbody>
  <actuator>
    <motor joint="shoulder" gear="2" ctrlrange="-1 1" ctrllimited="true"/>
    <motor joint="extend" gear="5" ctrlrange="-2 2" ctrllimited="true"/>
  </actuator>
</mujoco>
"""


def test_mjcf_robot_channels_units_and_lockstep(tmp_path):
    path = tmp_path / "arm.xml"
    path.write_text(MJCF)
    a = SimAdapter(SimConfig(env_id="", mjcf=str(path)))
    assert a.state_names == ("time", "qpos/shoulder", "qpos/extend", "qvel/shoulder", "qvel/extend")
    assert [c.unit for c in a.state_channels] == ["s", "rad", "m", "rad/s", "m/s"]
    assert [(c.name, c.unit, c.lower, c.upper) for c in a.command_channels] == [
        ("ctrl/actuator0", "N*m", -2.0, 2.0), ("ctrl/actuator1", "N", -10.0, 10.0)]
    out = np.zeros(a.n_states)
    with a:
        assert a.read(0.0, 0.002, out) == ReadStatus.OK and out[0] == 0.0
        assert a.read(0.001, 0.002, out) == ReadStatus.HELD      # no write: time did not advance
        sent = a.write(0.002, 0.002, np.array([5.0, 4.0]))        # clamped to ±2 N*m
        assert np.allclose(sent, [2.0, 4.0])
        assert np.allclose(a.robot.data.ctrl, [1.0, 0.8])         # control = command / gear
        assert a.read(0.003, 0.002, out) == ReadStatus.OK and out[0] == 0.002
        assert out[3] != 0.0


def test_realtime_pacing_follows_the_wall_clock_with_bounded_catch_up():
    a = SimAdapter(SimConfig(env_id="InvertedPendulum-v5", pace="realtime", max_catchup=1.0))
    out = np.zeros(a.n_states)
    with a:
        t0 = time.monotonic()
        a.read(t0, 0.01, out)
        start = out[0]
        time.sleep(0.2)
        t1 = time.monotonic()
        a.read(t1, 0.01, out)
        assert abs((out[0] - start) - (t1 - t0)) <= 0.021          # within one physics step (20 ms)
    b = SimAdapter(SimConfig(env_id="InvertedPendulum-v5", pace="realtime", max_catchup=0.1))
    with b:
        b.read(10.0, 0.01, out)
        b.read(10.5, 0.01, out)                                     # a 0.5 s stall of the host
        assert out[0] == 0.1 or abs(out[0] - 0.1) < 1e-9            # advances max_catchup, no more

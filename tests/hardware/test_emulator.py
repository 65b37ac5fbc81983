"""hardware.emulator's command line: a bad config is a clean exit 2 naming the key; a change of dynamics
during the session lands on the model and keeps the robot's state."""
import time

import numpy as np
import pytest

from controller.config import ConfigError
from hardware.emulator import DynamicsChange, EmulatorConfig, EmulatorThread
from hardware.emulator import main as emulator_main


def test_emulator_main_rejects_bad_config(capsys):
    assert emulator_main(["--set", "rate_hz=-3"]) == 2
    assert "rate_hz" in capsys.readouterr().err


def test_a_change_of_dynamics_during_the_session_lands_on_the_model():
    """dynamics.at: the payload lands on the root body and the motor weakens, mid-session."""
    cfg = EmulatorConfig(port=0, rate_hz=200.0, dynamics=DynamicsChange(at=0.3, payload=0.25, motor=0.5))
    with EmulatorThread(cfg) as emu:
        robot = emu.emulator.robot
        mass0, gear0 = float(robot.model.body_mass[1]), robot.model.actuator_gear[:, 0].copy()
        total = float(robot.model.body_subtreemass[0])
        time.sleep(0.6)
        assert 0.3 <= emu.emulator.stats()["dynamics_changed_at"] < 0.6
        assert robot.model.body_mass[1] == pytest.approx(mass0 + 0.25 * total)
        np.testing.assert_allclose(robot.model.actuator_gear[:, 0], 0.5 * gear0)


def test_a_change_keeps_the_simulators_state():
    from envs.nonstationary import ModelDynamics
    from hardware.mjrobot import MjRobot
    robot = MjRobot(env_id="HalfCheetah-v5")
    robot.reset(seed=3)
    robot.apply(np.full(robot.nu, 0.5))
    robot.step(20)
    qpos, qvel = robot.data.qpos.copy(), robot.data.qvel.copy()
    ModelDynamics(robot.model, robot.data).apply({"friction": 0.5, "payload": 0.2, "motor": 0.8, "gravity": 1.0},
                                                 keep_state=True)
    np.testing.assert_array_equal(robot.data.qpos, qpos)
    np.testing.assert_array_equal(robot.data.qvel, qvel)
    robot.close()


def test_a_bad_dynamics_change_names_its_key():
    with pytest.raises(ConfigError, match="dynamics.friction"):
        DynamicsChange(at=1.0, friction=0.0)

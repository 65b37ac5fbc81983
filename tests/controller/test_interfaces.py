"""controller.interfaces: the read statuses and which are usable, the lifecycle states re-exported by
hardware.base (the same objects), and the protocols the loop drives, which the stand-in and the
streaming agent implement."""
import numpy as np
import pytest

from controller import interfaces
from controller.fixed_policy import FixedPolicy


def test_read_statuses_and_usable():
    assert [s.name for s in interfaces.ReadStatus] == ["OK", "HELD", "STALE", "INVALID", "ESTOP", "ERROR"]
    assert [int(s) for s in interfaces.ReadStatus] == [0, 1, 2, 3, 4, 5]
    assert [interfaces.usable(s) for s in interfaces.ReadStatus] == [True, True, False, False, False, False]
    statuses = (interfaces.OK, interfaces.HELD, interfaces.STALE, interfaces.INVALID, interfaces.ESTOP,
                interfaces.ERROR)
    assert statuses == tuple(interfaces.ReadStatus)


def test_hardware_base_re_exports_the_controller_vocabulary():
    import hardware
    from hardware import base
    for name in ("ReadStatus", "State", "usable"):
        assert getattr(base, name) is getattr(interfaces, name) and getattr(hardware, name) is getattr(interfaces, name)


def test_the_stand_in_and_the_agent_are_policies():
    from gymnasium import spaces

    from controller.agent import Agent, AgentConfig
    agent = Agent(spaces.Box(-np.inf, np.inf, (3,), np.float64), spaces.Box(-1.0, 1.0, (2,), np.float32),
                  AgentConfig(n_units=4, encoder_width=4, head_width=4))
    assert isinstance(FixedPolicy(3, 2), interfaces.Policy) and isinstance(agent, interfaces.Policy)


def test_an_object_without_credit_is_not_a_policy():
    class NoCredit:
        def act(self, obs): ...
        def update(self, reward, obs, terminated, truncated): ...
        def skip(self, reward, obs, terminated, truncated): ...
        def reset(self): ...
    assert not isinstance(NoCredit(), interfaces.Policy)


@pytest.mark.parametrize("cls", [interfaces.AdapterInterface, interfaces.TaskInterface])
def test_a_plain_object_is_neither_adapter_nor_task(cls):
    assert not isinstance(object(), cls)

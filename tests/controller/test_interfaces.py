"""controller.interfaces: the read statuses and which are usable, the lifecycle states re-exported by
hardware.base (the same objects), and the protocols the loop drives, which the stand-in and the
streaming agent implement."""
import numpy as np
import pytest

from controller import interfaces as I
from controller.fixed_policy import FixedPolicy


def test_read_statuses_and_usable():
    assert [s.name for s in I.ReadStatus] == ["OK", "HELD", "STALE", "INVALID", "ESTOP", "ERROR"]
    assert [int(s) for s in I.ReadStatus] == [0, 1, 2, 3, 4, 5]
    assert [I.usable(s) for s in I.ReadStatus] == [True, True, False, False, False, False]
    assert (I.OK, I.HELD, I.STALE, I.INVALID, I.ESTOP, I.ERROR) == tuple(I.ReadStatus)


def test_hardware_base_re_exports_the_controller_vocabulary():
    import hardware
    from hardware import base
    for name in ("ReadStatus", "State", "usable"):
        assert getattr(base, name) is getattr(I, name) and getattr(hardware, name) is getattr(I, name)


def test_the_stand_in_and_the_agent_are_policies():
    from gymnasium import spaces

    from controller.agent import Agent, AgentConfig
    agent = Agent(spaces.Box(-np.inf, np.inf, (3,), np.float64), spaces.Box(-1.0, 1.0, (2,), np.float32),
                  AgentConfig(n_units=4, encoder_width=4, head_width=4))
    assert isinstance(FixedPolicy(3, 2), I.Policy) and isinstance(agent, I.Policy)


def test_an_object_without_credit_is_not_a_policy():
    class NoCredit:
        def act(self, obs): ...
        def update(self, reward, obs, terminated, truncated): ...
        def skip(self, reward, obs, terminated, truncated): ...
        def reset(self): ...
    assert not isinstance(NoCredit(), I.Policy)


@pytest.mark.parametrize("cls", [I.AdapterInterface, I.TaskInterface])
def test_a_plain_object_is_neither_adapter_nor_task(cls):
    assert not isinstance(object(), cls)

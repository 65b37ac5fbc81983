"""The adapter contract (hardware.base), run against every adapter through the ``adapter`` fixture."""
import copy
import math
import pickle
import time

import numpy as np
import pytest

from controller.interfaces import AdapterInterface
from hardware.base import Channel, ChannelError, LifecycleError, ReadStatus, State, usable


def now():
    return time.monotonic_ns() * 1e-9


def wait_usable(adapter, out, timeout=2.0):
    """Read until a usable sample arrives (network adapters need a few ms)."""
    end = now() + timeout
    status = adapter.read(now(), 0.01, out)
    while not usable(status) and now() < end:
        time.sleep(0.005)
        status = adapter.read(now(), 0.01, out)
    return status


def test_channels_declared_before_connecting(adapter):
    assert adapter.lifecycle is State.UNCONFIGURED
    assert adapter.n_states == len(adapter.state_channels) > 0
    assert adapter.n_commands == len(adapter.command_channels) > 0
    for ch in adapter.state_channels + adapter.command_channels:
        assert isinstance(ch, Channel) and ch.name and ch.unit
    assert len(set(adapter.state_names)) == adapter.n_states
    for ch in adapter.command_channels:
        assert math.isfinite(ch.lower) and math.isfinite(ch.upper) and ch.lower < ch.upper


def test_every_adapter_implements_the_interface_the_loop_drives(adapter):
    assert isinstance(adapter, AdapterInterface)


def test_illegal_transitions_raise_typed_errors(adapter):
    out = np.zeros(adapter.n_states)
    cmd = np.zeros(adapter.n_commands)
    with pytest.raises(LifecycleError, match="expected state inactive, found unconfigured"):
        adapter.activate()
    with pytest.raises(LifecycleError, match="found unconfigured"):
        adapter.read(now(), 0.01, out)
    with pytest.raises(LifecycleError, match="expected state active"):
        adapter.deactivate()
    adapter.configure()
    with pytest.raises(LifecycleError, match="expected state active, found inactive"):
        adapter.write(now(), 0.01, cmd)
    with pytest.raises(LifecycleError, match="configure"):
        adapter.configure()
    adapter.activate()
    with pytest.raises(LifecycleError, match="cleanup"):
        adapter.cleanup()
    adapter.deactivate()
    adapter.cleanup()
    adapter.shutdown()
    assert adapter.lifecycle is State.FINALIZED
    with pytest.raises(LifecycleError, match="finalized"):
        adapter.configure()


def test_full_lifecycle_read_write(adapter):
    out = np.zeros(adapter.n_states)
    adapter.configure()
    adapter.activate()
    assert adapter.lifecycle is State.ACTIVE
    status = wait_usable(adapter, out)
    assert isinstance(status, (ReadStatus, int)) and usable(status)
    assert np.all(np.isfinite(out))
    lo = np.array([c.lower for c in adapter.command_channels])
    hi = np.array([c.upper for c in adapter.command_channels])
    wanted = 10.0 * hi                      # outside the limits: clamped
    sent = adapter.write(now(), 0.01, wanted)
    assert sent.shape == (adapter.n_commands,) and np.all(sent <= hi) and np.all(sent >= lo)
    assert adapter.safety.clamped >= 1
    wanted = np.full(adapter.n_commands, np.nan)
    sent = adapter.write(now(), 0.01, wanted)
    assert np.all(np.isfinite(sent)) and adapter.safety.nan_commands == 1
    adapter.deactivate()
    adapter.cleanup()
    assert adapter.lifecycle is State.UNCONFIGURED
    adapter.configure()                     # can be configured again after cleanup
    adapter.cleanup()


def test_wrong_shapes_rejected(adapter):
    with adapter:
        with pytest.raises(ChannelError, match=rf"shape \({adapter.n_states},\)"):
            adapter.read(now(), 0.01, np.zeros(adapter.n_states + 1))
        with pytest.raises(ChannelError, match="float64"):
            adapter.write(now(), 0.01, np.zeros(adapter.n_commands, dtype=np.float32))


def test_context_manager(adapter):
    with adapter as a:
        assert a is adapter and adapter.lifecycle is State.ACTIVE
    assert adapter.lifecycle is State.UNCONFIGURED


def test_copies_refused(adapter):
    with pytest.raises(TypeError, match="deep-copied"):
        copy.deepcopy(adapter)
    with pytest.raises(TypeError, match="copied"):
        copy.copy(adapter)
    with pytest.raises(TypeError, match="pickled"):
        pickle.dumps(adapter)


def test_on_error_sends_safe_command_and_cleanup_recovers(adapter):
    adapter.configure()
    adapter.activate()
    safe_before = adapter.safety.safe_commands
    adapter.on_error("test fault")
    assert adapter.lifecycle is State.ERROR and adapter.last_error == "test fault"
    assert adapter.safety.safe_commands == safe_before + 1
    with pytest.raises(LifecycleError, match="found error"):
        adapter.write(now(), 0.01, np.zeros(adapter.n_commands))
    adapter.cleanup()
    adapter.configure()
    adapter.activate()
    adapter.deactivate()
    adapter.cleanup()


def test_estop_latches_until_reset(adapter):
    out = np.zeros(adapter.n_states)
    with adapter:
        wait_usable(adapter, out)
        adapter.safety.estop("button")
        assert adapter.read(now(), 0.01, out) == ReadStatus.ESTOP
        hi = np.array([c.upper for c in adapter.command_channels])
        sent = adapter.write(now(), 0.01, 0.5 * hi)
        assert np.all(sent == 0.0)
        assert adapter.read(now(), 0.01, out) == ReadStatus.ESTOP   # still latched
        adapter.safety.reset_estop()
        assert usable(wait_usable(adapter, out))
        sent = adapter.write(now(), 0.01, 0.5 * hi)
        assert np.allclose(sent, 0.5 * hi)


def test_a_rejected_sample_is_never_handed_on(adapter):
    """A transport that delivers a NaN/inf sample and then keeps it in its buffer (no new sample) must
    not get it to the caller: INVALID, then HELD with the newest *accepted* sample, never the bad one."""
    out = np.zeros(adapter.n_states)
    with adapter:
        assert usable(wait_usable(adapter, out))
        accepted = out.copy()
        real_read = adapter._read
        poisoned = np.full(adapter.n_states, np.inf)
        poisoned[0] = np.nan

        def deliver_bad(now, period, buf):          # a new sample whose values are not finite
            buf[:] = poisoned
            adapter._sample_seq += 1
            adapter._sample_stamp = now
            return ReadStatus.OK

        def hold_bad(now, period, buf):             # no new sample; the transport's buffer still bad
            buf[:] = poisoned
            return ReadStatus.HELD

        adapter._read = deliver_bad
        assert adapter.read(now(), 0.01, out) == ReadStatus.INVALID
        assert np.array_equal(out, accepted)
        assert "is nan" in adapter.safety.last_rejection
        adapter._read = hold_bad
        for _ in range(3):
            status = adapter.read(now(), 0.01, out)
            assert status in (ReadStatus.HELD, ReadStatus.STALE)
            assert np.array_equal(out, accepted)
        adapter._read = real_read


def test_held_before_any_accepted_sample_is_not_usable(adapter):
    out = np.full(adapter.n_states, 7.0)
    with adapter:
        adapter._read = lambda now, period, buf: ReadStatus.HELD   # the robot has said nothing yet
        assert adapter.read(now(), 0.01, out) == ReadStatus.STALE
        assert not np.any(out == 7.0)

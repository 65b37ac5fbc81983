"""Adapter fixtures: one factory per adapter kind, so the contract suite runs against every adapter."""
import pytest

from hardware.mock import MockAdapter, MockConfig
from hardware.safety import SafetyConfig

SAFETY = SafetyConfig(stale_timeout=0.5, command_timeout=0.5)


def _mock(request):
    return MockAdapter(MockConfig(joints=3), SAFETY), None


def _sim(request):
    from hardware.sim import SimAdapter, SimConfig
    return SimAdapter(SimConfig(env_id="InvertedPendulum-v5"), SAFETY), None


def _sim_realtime(request):
    from hardware.sim import SimAdapter, SimConfig
    return SimAdapter(SimConfig(env_id="Hopper-v5", pace="realtime"), SAFETY), None


def _udp(request):
    from hardware.emulator import EmulatorConfig, EmulatorThread
    from hardware.udp import UdpAdapter, UdpConfig
    emu = EmulatorThread(EmulatorConfig(env_id="InvertedPendulum-v5", rate_hz=200.0, port=0, spin=0.0))
    emu.start()
    adapter = UdpAdapter(UdpConfig(port=emu.port, env_id="InvertedPendulum-v5"), SAFETY)
    return adapter, emu.stop


FACTORIES = {"mock": _mock, "sim": _sim, "sim-realtime": _sim_realtime, "udp": _udp}


@pytest.fixture(params=sorted(FACTORIES))
def adapter(request):
    made, teardown = FACTORIES[request.param](request)
    yield made
    made.shutdown()
    if teardown is not None:
        teardown()

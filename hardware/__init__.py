"""Hardware layer: the adapter contract, the safety filter, mock / sim / UDP adapters, the UDP wire
protocol, the robot emulator, tasks for robots, and the loop benchmark. See docs/hardware.md.

Importing this package is light (numpy, numba); MuJoCo and gymnasium load with the sim, UDP and
emulator modules. Never imports torch, matplotlib or ray.
"""
from hardware.base import (Adapter, Channel, ChannelError, HardwareError, LifecycleError, ProtocolError,
                           ReadStatus, State, usable)
from hardware.safety import SafetyConfig, SafetyFilter

__all__ = ["Adapter", "Channel", "ChannelError", "HardwareError", "LifecycleError", "ProtocolError",
           "ReadStatus", "SafetyConfig", "SafetyFilter", "State", "usable"]

"""Hardware layer: the adapter contract, the safety filter, mock / sim / UDP adapters, the UDP wire
protocol, the robot emulator and tasks for robots: the implementations of the interfaces that
``controller.interfaces`` declares for the loop. See docs/hardware.md.

Importing this package is light (numpy, numba); MuJoCo and gymnasium load with the sim, UDP and
emulator modules and when a MuJoCo task is built. Never imports torch, matplotlib, ray or launch/.
"""
from hardware.base import (Adapter, Channel, ChannelError, HardwareError, LifecycleError, ProtocolError,
                           ReadStatus, State, usable)
from hardware.safety import SafetyConfig, SafetyFilter

__all__ = ["Adapter", "Channel", "ChannelError", "HardwareError", "LifecycleError", "ProtocolError",
           "ReadStatus", "SafetyConfig", "SafetyFilter", "State", "usable"]

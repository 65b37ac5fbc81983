"""UDP adapter: the host side of the rtu-control wire protocol (hardware.protocol, version 1).

``UdpAdapter(UdpConfig(host, port, env_id=...))`` talks to a robot (or ``hardware.emulator``) at
``host:port``. The robot's channel tables come from its description (``env_id`` or ``mjcf``, see
hardware.mjrobot), so they are readable before connecting; a SENSOR message whose payload size differs
is rejected as malformed.

Lifecycle: configure binds a non-blocking UDP socket (``bind_host:bind_port``) connected to the robot
(only its datagrams are received); activate discards the datagrams queued while inactive (counted in
``discarded``), then sends HELLO and the safe command; deactivate sends the safe
command then BYE; cleanup closes the socket.

``read`` drains the socket (``recv_into`` a preallocated buffer), validates every datagram with
:class:`hardware.protocol.Decoder` (rejections counted per class: truncated, malformed, wrong_version,
late, duplicate, out_of_order; ``gaps`` counts skipped sequence numbers) and copies the newest accepted
SENSOR payload into ``out``: OK when one arrived (since the last read; ``poll()``, called by the loop
while it spins before a release, drains early), HELD when none did (``out`` keeps the previous
sample). The sample's timestamp for the staleness watchdog is ``now`` minus its estimated age. A
robot-reported e-stop (ESTOP flag) latches the safety filter's e-stop. ``write`` sends one COMMAND
(stamp = CLOCK_MONOTONIC ns, ack = the last SENSOR sequence read). Connection-refused notices (nobody
listening yet) are counted, not errors: the staleness watchdog covers a silent robot.
"""
import dataclasses
import math
import socket
import time

import numpy as np

from controller.config import ConfigError, check
from controller.interfaces import HELD, OK
from hardware import protocol as P
from hardware.base import Adapter
from hardware.mjrobot import MjRobot, check_robot_source
from hardware.safety import SafetyConfig

MAX_DRAIN = 256   # datagrams handled per read or poll; the rest wait for the next one

@dataclasses.dataclass(frozen=True)
class UdpConfig:
    """YAML section ``udp``. Times in seconds."""
    host: str = "127.0.0.1"          # the robot
    port: int = 47800
    bind_host: str = "127.0.0.1"
    bind_port: int = 0               # 0: any free port
    env_id: str = "HalfCheetah-v5"   # the robot's description (channel tables); or "" and mjcf
    mjcf: str = ""
    max_age: float = 0.02            # SENSOR messages older than this are rejected as late
    reset_timeout: float = 1.0       # how long reset_episode waits for the robot's RESET_DONE

    def __post_init__(self):
        check(1 <= self.port <= 65535, "udp.port", "a port in 1..65535", self.port)
        check(0 <= self.bind_port <= 65535, "udp.bind_port", "a port in 0..65535", self.bind_port)
        check_robot_source(self.env_id, self.mjcf, "udp.")
        check_host(self.host, "udp.host")
        check_host(self.bind_host, "udp.bind_host", any_ok=True)
        check(0 < self.max_age < math.inf, "udp.max_age", "a finite number of seconds > 0", self.max_age)
        check(0 < self.reset_timeout < math.inf, "udp.reset_timeout", "a finite number of seconds > 0",
              self.reset_timeout)


def check_host(host, key, any_ok=False):
    """Raise ConfigError unless host is an IPv4 address or a name that resolves to one (a DNS look-up
    for names). any_ok: "" (every local address, for binding) is accepted too."""
    if any_ok and host == "":
        return
    try:
        socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_DGRAM)
    except (OSError, UnicodeError) as err:
        why = getattr(err, "strerror", None) or str(err)
        raise ConfigError(f"{key}: expected a host name or address that resolves to IPv4, found {host!r} "
                          f"({why})") from None


class UdpAdapter(Adapter):
    kind = "udp"

    def __init__(self, config=UdpConfig(), safety=SafetyConfig()):
        self.config = config
        robot = MjRobot(env_id=config.env_id or None, mjcf=config.mjcf or None)
        super().__init__(robot.state_channels, robot.command_channels, safety)
        robot.close()
        self.sock = None
        self.decoder = P.Decoder((P.SENSOR,), self.n_states, config.max_age)
        self.encoder = P.Encoder(P.COMMAND, self.n_commands)
        self._latest = np.zeros(self.n_states)
        self._have = False
        self._pending = False
        self._recv_ns = 0
        self.sent = 0
        self.refused = 0
        self.discarded = 0
        self.drain_limited = 0       # reads/polls that stopped at MAX_DRAIN with datagrams left
        self.robot_safe = False      # the robot reported that it applies its own safe command
        self.resets = 0

    def counters(self):
        out = self.decoder.counters()
        out.update(sent=self.sent, refused=self.refused, discarded=self.discarded, resets=self.resets,
                   drain_limited=self.drain_limited)
        return out

    # ------------------------------------------------------------------ lifecycle hooks
    def _on_configure(self):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((self.config.bind_host, self.config.bind_port))
            sock.connect((self.config.host, self.config.port))
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self.sock = sock
        self.decoder.reset_stream()
        self._have = False
        self._pending = False
        self._sample_stamp = float("-inf")

    def _on_activate(self):
        # datagrams queued while inactive describe the past: discard them uncounted
        while True:
            try:
                self.sock.recv_into(self.decoder.buf)
                self.discarded += 1
            except (BlockingIOError, InterruptedError):
                break
            except ConnectionRefusedError:
                self.refused += 1
        self._send(self.encoder.pack_control(P.HELLO, time.monotonic_ns()))

    def _on_deactivate(self):
        self._send(self.encoder.pack_control(P.BYE, time.monotonic_ns()))

    def _on_cleanup(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def _on_shutdown(self):
        self._on_cleanup()

    # ------------------------------------------------------------------ transport
    def _send(self, msg):
        try:
            self.sock.send(msg)
            self.sent += 1
        except ConnectionRefusedError:
            self.refused += 1

    def _drain(self):
        """Receive pending datagrams (at most ``MAX_DRAIN`` per call, so that a flood cannot hold the
        loop here); True when a new SENSOR message was accepted."""
        dec, sock = self.decoder, self.sock
        got = False
        clock = time.monotonic_ns
        for _ in range(MAX_DRAIN):
            try:
                n = sock.recv_into(dec.buf)
            except (BlockingIOError, InterruptedError):
                return got
            except ConnectionRefusedError:
                self.refused += 1
                continue
            t = clock()
            if dec.accept(n, t):
                np.copyto(self._latest, dec.values)
                self._recv_ns = t
                got = True
        self.drain_limited += 1
        return got

    def poll(self):
        """Drain and validate pending datagrams now (the loop calls this while spinning before a
        release); the next ``read`` returns the newest sample accepted here or there. Never blocks."""
        if self.sock is not None and self._drain():
            self._pending = True

    def _read(self, now, period, out):
        got = self._drain()
        if got or self._pending:
            self._pending = False
            dec = self.decoder
            out[:] = self._latest
            self._have = True
            self._sample_seq = dec.seq
            # age = time since it was received + transit beyond the fastest seen
            self._sample_stamp = now - (time.monotonic_ns() - self._recv_ns + dec.excess_ns) * 1e-9
            self.robot_safe = bool(dec.flags & P.FLAG_SAFE)
            if dec.flags & P.FLAG_ESTOP:
                self.safety.estop("robot reported e-stop")
            return OK
        if self._have:
            out[:] = self._latest
        return HELD

    def _write(self, now, period, command):
        enc = self.encoder
        enc.values[:] = command
        self._send(enc.pack(time.monotonic_ns(), 0, self.decoder.seq))

    def reset_episode(self, seed=None):
        """Send RESET(seed) and wait up to ``reset_timeout`` for a SENSOR with RESET_DONE (blocking)."""
        if self.sock is None:
            return False
        msg = self.encoder.pack_control(P.RESET, time.monotonic_ns(),
                                        float("nan") if seed is None else float(seed))
        reset_seq = self.encoder.seq
        self._send(msg)
        end = time.monotonic() + self.config.reset_timeout
        dec = self.decoder
        while time.monotonic() < end:
            if self._drain() and dec.flags & P.FLAG_RESET_DONE and dec.ack >= reset_seq:
                self.resets += 1
                return True
            time.sleep(0.0005)
        return False

"""Robot emulator: a MuJoCo robot served over UDP at a fixed rate, as robot firmware would.

    python -m hardware.emulator --config launch/configs/emulator.yaml [--set rate_hz=1000 ...]

Every tick (absolute deadlines, ``rate_hz``): drain the socket (commands validated by
:class:`hardware.protocol.Decoder`: malformed, truncated, wrong-version, late, duplicate and out-of-order
messages are rejected and counted); apply the latest valid command; when no valid command arrived for
``command_timeout`` seconds (or a BYE was received) apply the robot's own safe command (zero effort) and
raise the SAFE flag; advance the physics ``substeps`` steps of ``1 / (rate_hz · substeps)`` seconds
each (real time); send one SENSOR message (``time``, qpos, qvel; see hardware.mjrobot) to the host.

The host is the sender of the latest valid message (HELLO, COMMAND or RESET), or the fixed
``peer_host:peer_port``. A RESET message (payload [seed]) resets the robot to gymnasium's initial-state
distribution (or qpos0 for MJCF) and the next SENSOR carries the RESET_DONE flag; commands older than
the reset are ignored until a new one arrives. Binds to loopback by default.

A ``dynamics`` section changes the robot once during the session, ``dynamics.at`` seconds after the
start: friction, motor strength, a payload or gravity (``envs.nonstationary.ModelDynamics``), the
simulator's state carried through, so that a deployed learner's adaptation can be watched through the
real loop; ``stats()["dynamics_changed_at"]`` says when it happened.

Counters (``Emulator.stats()``): ticks, sent, commands applied, safe ticks, watchdog trips (with the
delay from the last valid command to each trip), resets, commands received outside the channel limits
(clamped by the firmware), deadline misses, and the decoder's rejection counters.
"""
import dataclasses
import json
import math
import socket
import sys
import threading
import time
from pathlib import Path

import numpy as np

from controller.clock import MonotonicClock
from controller.config import ConfigError, check, check_output_path, run_command_line
from hardware import protocol as P
from hardware.base import HardwareError
from hardware.mjrobot import MjRobot, check_robot_source
from hardware.udp import check_host


@dataclasses.dataclass(frozen=True)
class DynamicsChange:
    """YAML section ``dynamics``: one change of the robot's dynamics during the session, ``at`` seconds
    after the start (0: none), to these values relative to the robot as built (as
    ``envs.nonstationary``): friction and motor (gear) factors, a payload on the root body as a fraction
    of the robot's mass, a gravity factor. The simulator's state carries through the change."""
    at: float = 0.0
    friction: float = 1.0
    payload: float = 0.0
    motor: float = 1.0
    gravity: float = 1.0

    def __post_init__(self):
        check(0 <= self.at < math.inf, "dynamics.at", "a finite number of seconds >= 0 (0: no change)", self.at)
        for name in ("friction", "motor", "gravity"):
            value = getattr(self, name)
            check(0 < value < math.inf, f"dynamics.{name}", "a finite factor > 0", value)
        check(0 <= self.payload < math.inf, "dynamics.payload", "a finite mass fraction >= 0", self.payload)


@dataclasses.dataclass(frozen=True)
class EmulatorConfig:
    """The emulator's YAML (top level). Times in seconds."""
    env_id: str = "HalfCheetah-v5"      # robot from a gymnasium MuJoCo id (or "" and mjcf)
    mjcf: str = ""                      # robot from an MJCF file
    host: str = "127.0.0.1"             # bind address (loopback by default)
    port: int = 47800                   # 0: any free port (EmulatorThread.port tells which)
    peer_host: str = ""                 # fixed destination for SENSOR messages ("" = last sender)
    peer_port: int = 0
    rate_hz: float = 500.0              # sensor / control rate
    substeps: int = 1                   # physics steps per tick, each 1 / (rate_hz * substeps) s
    command_timeout: float = 0.05       # no valid command for this long -> safe command
    max_age: float = 0.05               # commands older than this are rejected as late
    duration: float = 0.0               # seconds to run; 0 = until stopped (SIGINT / SIGTERM)
    spin: float = 0.0002                # spin window of the hybrid sleep (0 in threads: the GIL)
    seed: int = 0
    stats_path: str = ""                # write the counters as JSON here on exit
    dynamics: DynamicsChange = DynamicsChange()   # a change of dynamics during the session

    def __post_init__(self):
        check_robot_source(self.env_id, self.mjcf, "")
        check_host(self.host, "host", any_ok=True)
        if self.peer_host:
            check_host(self.peer_host, "peer_host")
        check(0 <= self.port <= 65535, "port", "a port in 0..65535", self.port)
        check(0 <= self.peer_port <= 65535, "peer_port", "a port in 0..65535", self.peer_port)
        check(1.0 <= self.rate_hz <= 10_000.0, "rate_hz", "a rate in [1, 10000] Hz", self.rate_hz)
        check(self.substeps >= 1, "substeps", "an integer >= 1", self.substeps)
        check(self.command_timeout > 0, "command_timeout", "seconds > 0", self.command_timeout)
        check(self.max_age > 0, "max_age", "seconds > 0", self.max_age)
        check(0 <= self.duration < math.inf, "duration", "a finite number of seconds >= 0 (0: until "
              "stopped)", self.duration)
        check(0 <= self.spin < 1.0 / self.rate_hz, "spin", "seconds in [0, period)", self.spin)
        check(self.seed >= 0, "seed", "an integer >= 0", self.seed)
        check_output_path(self.stats_path, "stats_path", "file")
        check(not self.stats_path or Path(self.stats_path).parent.is_dir(), "stats_path",
              "a file in an existing folder", self.stats_path)


class Emulator:
    """The emulator; ``run()`` serves until ``stop()`` (or ``duration``). Binds in the constructor."""

    def __init__(self, config):
        self.config = config
        period = 1.0 / config.rate_hz
        self.robot = MjRobot(env_id=config.env_id or None, mjcf=config.mjcf or None,
                             timestep=period / config.substeps)
        self.robot.reset(seed=config.seed)
        self.lower = np.array([c.lower for c in self.robot.command_channels])
        self.upper = np.array([c.upper for c in self.robot.command_channels])
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((config.host, config.port))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.peer = (config.peer_host, config.peer_port) if config.peer_host else None
        n_cmd = self.robot.nu
        self.decoder = P.Decoder((P.COMMAND, P.HELLO, P.RESET, P.BYE), n_cmd, config.max_age)
        self.encoder = P.Encoder(P.SENSOR, self.robot.n_states)
        self.command = np.zeros(n_cmd)        # latest valid command (channel units)
        self.applied = np.zeros(n_cmd)        # what the actuators got this tick
        self._zero = np.zeros(n_cmd)
        self._stop = threading.Event()
        self.silent = False                   # test hook: keep simulating, send nothing
        self.ticks = 0
        self.sent = 0
        self.commands_applied = 0
        self.safe_ticks = 0
        self.watchdog_trips = 0
        self.trip_delays = []                 # seconds from the last valid command to each trip
        self.resets = 0
        self.limit_violations = 0
        self.deadline_misses = 0
        self.send_errors = 0
        self.max_command_ratio = 0.0          # max |command| / limit over valid commands
        self._last_cmd_ns = None
        self._safe = True
        self._bye = False
        self._reset_ack = 0
        self._cmd_after_reset = True
        self.dynamics_changed_at = None       # emulator seconds of the change of dynamics, once applied

    def stop(self):
        self._stop.set()

    def stats(self):
        out = {
            "ticks": self.ticks, "sent": self.sent, "commands_applied": self.commands_applied,
            "safe_ticks": self.safe_ticks, "watchdog_trips": self.watchdog_trips,
            "trip_delays": list(self.trip_delays), "resets": self.resets,
            "limit_violations": self.limit_violations, "deadline_misses": self.deadline_misses,
            "send_errors": self.send_errors, "max_command_ratio": float(self.max_command_ratio),
            "port": self.port, "dynamics_changed_at": self.dynamics_changed_at,
        }
        out["decoder"] = self.decoder.counters()
        return out

    def _drain(self, now_ns):
        dec = self.decoder
        sock = self.sock
        while True:
            try:
                n, addr = sock.recvfrom_into(dec.buf)
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionRefusedError:
                continue
            if not dec.accept(n, time.monotonic_ns()):
                continue
            if not self.config.peer_host:
                self.peer = addr
            t = dec.msg_type
            if t == P.COMMAND:
                np.copyto(self.command, dec.values)
                self._cmd_after_reset = True
                self._last_cmd_ns = now_ns
                self._bye = False
                self._cmd_seq = dec.seq
                self._check_limits()
            elif t == P.RESET:
                value = float(dec.payload(1)[0]) if dec.count == 1 else math.nan
                seed = int(value) if math.isfinite(value) else None
                self.robot.reset(seed=seed)
                self.resets += 1
                self._reset_ack = dec.seq
                self._cmd_after_reset = False
                self.command[:] = 0.0
                self._pending_reset_done = True
            elif t == P.BYE:
                self._bye = True
            # HELLO: only the peer address

    def _check_limits(self):
        c = self.command
        bad = False
        ratio = 0.0
        for i in range(c.shape[0]):
            v = c[i]
            if v < self.lower[i] or v > self.upper[i]:
                bad = True
            lim = max(abs(self.lower[i]), abs(self.upper[i]))
            if lim > 0 and math.isfinite(lim):
                ratio = max(ratio, abs(v) / lim)
        if bad:
            self.limit_violations += 1
        if ratio > self.max_command_ratio:
            self.max_command_ratio = ratio

    def run(self):
        cfg = self.config
        clock = MonotonicClock(int(cfg.spin * 1e9))
        period_ns = int(round(1e9 / cfg.rate_hz))
        timeout_ns = int(cfg.command_timeout * 1e9)
        robot, enc = self.robot, self.encoder
        self._cmd_seq = 0
        self._pending_reset_done = False
        t0 = clock.now_ns()
        end_ns = t0 + int(cfg.duration * 1e9) if cfg.duration > 0 else None
        change_ns = t0 + int(cfg.dynamics.at * 1e9) if cfg.dynamics.at > 0 else None
        k = 0
        try:
            while not self._stop.is_set():
                release = t0 + k * period_ns
                clock.sleep_until(release)
                now = clock.now_ns()
                if end_ns is not None and now >= end_ns:
                    break
                self._drain(now)
                if change_ns is not None and now >= change_ns:
                    self._change_dynamics((now - t0) * 1e-9)
                    change_ns = None
                stale = (self._last_cmd_ns is None or now - self._last_cmd_ns > timeout_ns
                         or self._bye or not self._cmd_after_reset)
                if stale:
                    if not self._safe:
                        self.watchdog_trips += 1
                        if self._last_cmd_ns is not None:
                            self.trip_delays.append((now - self._last_cmd_ns) * 1e-9)
                    self._safe = True
                    self.safe_ticks += 1
                    np.copyto(self.applied, self._zero)
                else:
                    self._safe = False
                    np.clip(self.command, self.lower, self.upper, out=self.applied)
                    self.commands_applied += 1
                robot.apply(self.applied)
                robot.step(cfg.substeps)
                robot.sample(enc.values)
                flags = P.FLAG_SAFE if self._safe else 0
                if self._pending_reset_done:
                    flags |= P.FLAG_RESET_DONE
                    self._pending_reset_done = False
                msg = enc.pack(time.monotonic_ns(), flags, self._reset_ack if flags & P.FLAG_RESET_DONE
                               else self._cmd_seq)
                if self.peer is not None and not self.silent:
                    try:
                        self.sock.sendto(msg, self.peer)
                        self.sent += 1
                    except OSError:
                        self.send_errors += 1
                self.ticks += 1
                k += 1
                after = clock.now_ns()
                if after > release + period_ns:
                    self.deadline_misses += 1
                    behind = (after - t0) // period_ns
                    if behind > k:
                        k = behind
        finally:
            if cfg.stats_path:
                with open(cfg.stats_path, "w") as fh:
                    json.dump(self.stats(), fh, indent=1)

    def _change_dynamics(self, seconds):
        from envs.nonstationary import ModelDynamics
        d = self.config.dynamics
        ModelDynamics(self.robot.model, self.robot.data).apply(
            {"friction": d.friction, "payload": d.payload, "motor": d.motor, "gravity": d.gravity},
            keep_state=True)
        self.dynamics_changed_at = round(seconds, 3)

    def close(self):
        self.sock.close()
        self.robot.close()


class EmulatorThread:
    """The emulator in a daemon thread (tests). ``start()``, ``port``, ``stop()`` (joins, closes).

    ``spin`` is forced to 0: a spinning thread would hold the GIL against the loop in the same process.
    """

    def __init__(self, config):
        self.emulator = Emulator(dataclasses.replace(config, spin=0.0))
        self.port = self.emulator.port
        self._thread = threading.Thread(target=self.emulator.run, name="rtu-emulator", daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self.emulator.stop()
        self._thread.join(timeout=5.0)
        self.emulator.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


def run(config):
    """Serve ``config`` (an EmulatorConfig) until SIGINT / SIGTERM (or its duration), as
    ``rtu-control emulator`` does; returns the exit status: 0, or 2 when the robot cannot be built or
    the address cannot be bound."""
    try:
        emu = Emulator(config)
    except (ConfigError, HardwareError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:   # the bind: address in use, not local, no permission
        print(f"error: cannot serve on udp {config.host}:{config.port} (host, port): {err.strerror or err}",
              file=sys.stderr)
        return 2
    import signal
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: emu.stop())
    print(f"emulator: {emu.robot.description} ({emu.robot.n_states} states, {emu.robot.nu} commands) "
          f"at {config.rate_hz:g} Hz on udp://{config.host}:{emu.port}", flush=True)
    try:
        emu.run()
    finally:
        emu.close()
    s = emu.stats()
    print(f"emulator: {s['ticks']} ticks, {s['commands_applied']} commands applied, "
          f"{s['watchdog_trips']} watchdog trips, rejected {s['decoder']}", flush=True)
    return 0


def main(argv=None):
    """``python -m hardware.emulator [--config FILE] [--set key=value ...]``: :func:`run` on that config."""
    return run_command_line(EmulatorConfig, run, argv, "python -m hardware.emulator", __doc__, "rate_hz=1000")


if __name__ == "__main__":
    sys.exit(main())

"""A fault-injecting UDP proxy between the host and a robot, for tests: it records what it injected so
the receivers' rejection counters can be compared exactly.

    host  --(up: commands)-->  [front | FaultProxy | back]  --> robot
    host  <--(down: sensors)-- [front | FaultProxy | back]  <-- robot

Per direction a :class:`FaultPlan` gives per-datagram probabilities; each datagram gets at most one of
drop, duplicate (sent twice at once), reorder (held and sent right after the next datagram), delay
(held ``delay`` seconds), truncate (cut short), wrong_version (version byte changed), corrupt (a payload
byte flipped: checksum mismatch); independently a garbage datagram (random bytes, never starting with
the magic) is injected before it with probability ``garbage``. ``silence(direction, seconds)`` drops
every datagram of that direction for a while (a silent robot / a cut command link). Faults are
injected only while ``active`` is True (start quiet, warm up, then activate; go quiet again before
comparing counters so that held and delayed datagrams are delivered).

With a protocol receiver checking in the documented order, each injection maps to one counter::

    truncated     = truncated + garbage_short (< 40 bytes)
    malformed     = corrupted + garbage_long
    wrong_version = wrong_version
    late          = delayed                    (delay > the receiver's max_age)
    duplicate     = duplicated
    out_of_order  = reordered
    gaps          = dropped + reordered + delayed + truncated + wrong_version + corrupted + silenced

Random draws come from ``numpy.random.default_rng(seed)``: a run is reproducible given the traffic.
"""
import dataclasses
import heapq
import selectors
import socket
import threading
import time

import numpy as np

from hardware import protocol as P

KINDS = ("drop", "duplicate", "reorder", "delay", "truncate", "wrong_version", "corrupt")
RECORDS = ("forwarded", "dropped", "duplicated", "reordered", "delayed", "truncated", "wrong_version",
           "corrupted", "garbage_short", "garbage_long", "silenced")


@dataclasses.dataclass(frozen=True)
class FaultPlan:
    """Probabilities per datagram (their sum must stay <= 1) and the delay in seconds."""
    drop: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    delay: float = 0.0
    truncate: float = 0.0
    wrong_version: float = 0.0
    corrupt: float = 0.0
    garbage: float = 0.0
    delay_s: float = 0.1

    def __post_init__(self):
        total = sum(getattr(self, k) for k in KINDS)
        if total > 1.0 or min(getattr(self, k) for k in KINDS + ("garbage",)) < 0:
            raise ValueError(f"FaultPlan: expected probabilities >= 0 summing to <= 1, found {self}")

    def expected(self, rec):
        """The receiver counters this plan's record ``rec`` (a dict of RECORDS) should produce."""
        return {
            "truncated": rec["truncated"] + rec["garbage_short"],
            "malformed": rec["corrupted"] + rec["garbage_long"],
            "wrong_version": rec["wrong_version"],
            "late": rec["delayed"],
            "duplicate": rec["duplicated"],
            "out_of_order": rec["reordered"],
            "gaps": (rec["dropped"] + rec["reordered"] + rec["delayed"] + rec["truncated"]
                     + rec["wrong_version"] + rec["corrupted"] + rec["silenced"]),
        }


class FaultProxy:
    """The proxy thread. ``port`` is the front port the host must send to; ``start()``, ``stop()``."""

    def __init__(self, robot_addr, down=FaultPlan(), up=FaultPlan(), seed=0, host="127.0.0.1"):
        self.plans = {"down": down, "up": up}
        self.rng = np.random.default_rng(seed)
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind((host, 0))
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.back.bind((host, 0))
        self.back.connect(robot_addr)
        self.front.setblocking(False)
        self.back.setblocking(False)
        self.port = self.front.getsockname()[1]
        self.client = None
        self.active = False
        self.records = {d: {k: 0 for k in RECORDS} for d in ("down", "up")}
        self._held = {"down": None, "up": None}
        self._silent_until = {"down": 0.0, "up": 0.0}
        self._delayed = []
        self._n = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rtu-fault-proxy", daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=5.0)
        self.front.close()
        self.back.close()

    def silence(self, direction, seconds):
        """Drop every datagram of ``direction`` ("down": robot silent, "up": commands cut) for a while."""
        self._silent_until[direction] = time.monotonic() + seconds

    def pending(self):
        """Datagrams still held (reorder) or delayed."""
        return len(self._delayed) + sum(h is not None for h in self._held.values())

    # ------------------------------------------------------------------ internals
    def _send(self, direction, data):
        try:
            if direction == "up":
                self.back.send(data)
            elif self.client is not None:
                self.front.sendto(data, self.client)
        except OSError:
            pass

    def _garbage(self, rec):
        n = int(self.rng.integers(1, 2 * P.OVERHEAD + 1))
        junk = bytearray(self.rng.integers(0, 256, size=n, dtype=np.uint8).tobytes())
        if junk[:2] == P.MAGIC[:len(junk[:2])]:
            junk[0] ^= 0xFF
        rec["garbage_short" if n < P.OVERHEAD else "garbage_long"] += 1
        return bytes(junk)

    def _process(self, direction, data):
        rec = self.records[direction]
        held = self._held[direction]
        if held is not None:                  # complete a reorder: this one first, then the held one
            self._held[direction] = None
            self._send(direction, data)
            self._send(direction, held)
            rec["forwarded"] += 1
            return
        if time.monotonic() < self._silent_until[direction]:
            rec["silenced"] += 1
            return
        plan = self.plans[direction]
        if not self.active:
            self._send(direction, data)
            rec["forwarded"] += 1
            return
        if self.rng.random() < plan.garbage:
            self._send(direction, self._garbage(rec))
        r = self.rng.random()
        for kind in KINDS:
            p = getattr(plan, kind)
            if r < p:
                break
            r -= p
        else:
            kind = None
        if kind is None:
            self._send(direction, data)
            rec["forwarded"] += 1
        elif kind == "drop":
            rec["dropped"] += 1
        elif kind == "duplicate":
            self._send(direction, data)
            self._send(direction, data)
            rec["duplicated"] += 1
        elif kind == "reorder":
            self._held[direction] = data
            rec["reordered"] += 1
        elif kind == "delay":
            self._n += 1
            heapq.heappush(self._delayed, (time.monotonic() + plan.delay_s, self._n, direction, data))
            rec["delayed"] += 1
        elif kind == "truncate":
            cut = int(self.rng.integers(1, len(data)))
            self._send(direction, data[:cut])
            rec["truncated"] += 1
        elif kind == "wrong_version":
            bad = bytearray(data)
            bad[2] = int(self.rng.integers(2, 256))
            self._send(direction, bytes(bad))
            rec["wrong_version"] += 1
        elif kind == "corrupt":
            bad = bytearray(data)
            lo, hi = P.HEADER_SIZE, len(data) - P.CRC.size
            i = int(self.rng.integers(lo, hi)) if hi > lo else P.HEADER_SIZE - 1
            bad[i] ^= 0x5A
            self._send(direction, bytes(bad))
            rec["corrupted"] += 1

    def _run(self):
        sel = selectors.DefaultSelector()
        sel.register(self.front, selectors.EVENT_READ, "up")
        sel.register(self.back, selectors.EVENT_READ, "down")
        while not self._stop.is_set():
            timeout = 0.005
            if self._delayed:
                timeout = max(0.0, min(timeout, self._delayed[0][0] - time.monotonic()))
            for key, _ in sel.select(timeout):
                sock = key.fileobj
                while True:
                    try:
                        data, addr = sock.recvfrom(P.MAX_DATAGRAM)
                    except (BlockingIOError, InterruptedError):
                        break
                    except ConnectionRefusedError:
                        continue
                    if key.data == "up":
                        self.client = addr
                    self._process(key.data, data)
            now = time.monotonic()
            while self._delayed and self._delayed[0][0] <= now:
                _, _, direction, data = heapq.heappop(self._delayed)
                self._send(direction, data)
        sel.close()

"""The loop against a hostile robot over UDP: nothing it sends that is rejected reaches the policy, and
once it behaves again the loop acts again, with no restart of either side.

The scripted robot sends honest samples (every value in [-0.1, 0.1]) mixed with every kind of bad
datagram the protocol and the safety filter reject: loss, duplicates, reordering, garbage, truncation,
wrong version, bad checksum, oversize, NaN / inf / huge values, floods, silence, a future timestamp and
a sequence-number jump. A policy that records what it was given proves where each action came from.
"""
import socket
import threading
import time

import numpy as np

from controller.loop import ControlLoop, FixedPolicy, LoopConfig
from hardware import protocol as P
from hardware.safety import SafetyConfig
from hardware.tasks import TaskConfig, make_task
from hardware.udp import UdpAdapter, UdpConfig

RATE = 200.0
HOSTILE = ("drop", "duplicate", "reorder", "garbage", "truncate", "wrong_version", "bad_crc", "oversize",
           "nan", "inf", "huge", "flood", "future", "jump")


class HostileRobot(threading.Thread):
    """Honest for ``honest_s``, hostile for ``hostile_s``, silent for ``silent_s``, then honest again."""

    def __init__(self, n_states, honest_s=0.3, hostile_s=1.0, silent_s=0.2, total_s=2.6, seed=0):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(2.0)
        self.port = self.sock.getsockname()[1]
        self.n = n_states
        self.phases = (honest_s, honest_s + hostile_s, honest_s + hostile_s + silent_s, total_s)
        self.rng = np.random.default_rng(seed)
        self.sent = {k: 0 for k in HOSTILE}
        self.seq = 0
        self.behaving_again_at = None
        self.stop = False

    def honest(self):
        self.seq += 1
        values = self.rng.uniform(-0.1, 0.1, self.n)
        return P.encode(P.SENSOR, values, seq=self.seq, stamp_ns=time.monotonic_ns())

    def hostile(self, kind, addr):
        sock, n = self.sock, self.n
        if kind == "drop":
            self.seq += 1
            return
        if kind in ("nan", "inf", "huge"):
            self.seq += 1
            values = self.rng.uniform(-0.1, 0.1, n)
            values[self.rng.integers(n)] = {"nan": np.nan, "inf": -np.inf, "huge": 1e300}[kind]
            sock.sendto(P.encode(P.SENSOR, values, seq=self.seq, stamp_ns=time.monotonic_ns()), addr)
            return
        if kind == "flood":
            for _ in range(300):
                sock.sendto(self.honest(), addr)
            return
        good = self.honest()
        if kind == "duplicate":
            sock.sendto(good, addr)
            sock.sendto(good, addr)
        elif kind == "reorder":
            newer = self.honest()
            sock.sendto(newer, addr)
            sock.sendto(good, addr)
        elif kind == "garbage":
            sock.sendto(self.rng.bytes(int(self.rng.integers(1, 200))), addr)
        elif kind == "truncate":
            sock.sendto(good[:int(self.rng.integers(1, len(good)))], addr)
        elif kind == "wrong_version":
            sock.sendto(good[:2] + bytes([2]) + good[3:], addr)
        elif kind == "bad_crc":
            sock.sendto(good[:-1] + bytes([good[-1] ^ 0xFF]), addr)
        elif kind == "oversize":
            sock.sendto(good + bytes(4000), addr)
        elif kind == "future":
            sock.sendto(P.encode(P.SENSOR, np.zeros(n), seq=self.seq + 1,
                                 stamp_ns=time.monotonic_ns() + 10**10), addr)
        elif kind == "jump":
            sock.sendto(P.encode(P.SENSOR, np.zeros(n), seq=2**62, stamp_ns=time.monotonic_ns()), addr)

    def run(self):
        data, addr = self.sock.recvfrom(P.MAX_DATAGRAM)       # the host's HELLO
        self.sock.setblocking(False)
        start = time.monotonic()
        k = 0
        while not self.stop:
            t = time.monotonic() - start
            if t >= self.phases[3]:
                break
            try:
                while True:
                    self.sock.recvfrom(P.MAX_DATAGRAM)            # commands: not needed here
            except (BlockingIOError, ConnectionRefusedError):
                pass
            if t < self.phases[0] or t >= self.phases[2]:
                if t >= self.phases[2] and self.behaving_again_at is None:
                    self.behaving_again_at = time.monotonic()
                self.sock.sendto(self.honest(), addr)
            elif t < self.phases[1]:
                kind = HOSTILE[k % len(HOSTILE)]
                self.sent[kind] += 1
                self.hostile(kind, addr)
                if k % 3 == 0:
                    self.sock.sendto(self.honest(), addr)
                k += 1
            time.sleep(1.0 / RATE)
        self.sock.close()


def test_nothing_rejected_reaches_the_policy_and_the_loop_recovers():
    robot = HostileRobot(n_states=UdpAdapter(UdpConfig(env_id="InvertedPendulum-v5")).n_states)
    adapter = UdpAdapter(UdpConfig(env_id="InvertedPendulum-v5", max_age=0.05, port=robot.port),
                         SafetyConfig(stale_timeout=0.05, max_consecutive_errors=1000))
    task = make_task(TaskConfig(name="InvertedPendulum", mask="full", max_episode_steps=0, reset="none"))
    task.bind(adapter)
    policy = FixedPolicy(task.obs_dim, task.action_dim, gain=np.ones((task.action_dim, task.obs_dim)),
                         low=task.action_low, high=task.action_high, record=True)
    acts_at = []

    def on_tick(loop, k):
        acts_at.append((time.monotonic(), loop.stats.acts))

    robot.start()
    loop = ControlLoop(adapter, task, policy,
                       LoopConfig(rate_hz=RATE, duration=2.5, handle_signals=False, gc_freeze=False),
                       on_tick=on_tick)
    try:
        out = loop.run()
    finally:
        robot.stop = True
        robot.join(timeout=5.0)
        adapter.shutdown()
    acted_on = np.array([obs for kind, obs in policy.log if kind == "act"])
    assert len(acted_on) == out["acts"] > 0
    assert np.all(np.isfinite(acted_on)) and np.all(np.abs(acted_on) <= 0.1), "a rejected sample was used"
    counters = out["adapter"]
    for kind in ("truncated", "malformed", "wrong_version", "duplicate", "out_of_order", "future", "jump"):
        assert counters[kind] >= 1, (kind, counters)
    assert out["safety"]["nan_states"] >= 3 and out["unusable_reads"] >= 1
    assert counters["resyncs"] == 0                   # no hostile header ever became the reference
    # behaving again: the loop acts again without any restart (the last 0.2 s of ticks act)
    assert robot.behaving_again_at is not None
    recovered = [acts for t, acts in acts_at if t >= robot.behaving_again_at + 0.15]
    assert len(recovered) >= 10 and recovered[-1] - recovered[0] >= 0.8 * (len(recovered) - 1)

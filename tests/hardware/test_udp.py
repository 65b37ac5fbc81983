"""hardware.udp against a scripted robot socket: e-stop flag, poll, payload size, reset without a robot."""
import socket
import time

import numpy as np
import pytest

from hardware import protocol as P
from hardware.base import ReadStatus
from hardware.safety import SafetyConfig
from hardware.udp import UdpAdapter, UdpConfig


@pytest.fixture
def robot():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(2.0)
    yield s
    s.close()


def connect(robot):
    a = UdpAdapter(UdpConfig(port=robot.getsockname()[1], env_id="InvertedPendulum-v5",
                             reset_timeout=0.1), SafetyConfig(stale_timeout=1.0))
    a.configure()
    a.activate()
    data, addr = robot.recvfrom(P.MAX_DATAGRAM)          # HELLO, then the safe command
    assert data[3] == P.HELLO
    data, _ = robot.recvfrom(P.MAX_DATAGRAM)
    assert data[3] == P.COMMAND
    return a, addr


def wait_read(a, out):
    for _ in range(200):
        status = a.read(time.monotonic(), 0.01, out)
        if status == ReadStatus.OK or status == ReadStatus.ESTOP:
            return status
        time.sleep(0.002)
    return status


def test_sensor_flags_poll_and_payload_checks(robot):
    a, addr = connect(robot)
    out = np.zeros(a.n_states)
    robot.sendto(P.encode(P.SENSOR, np.arange(5.0), seq=1, stamp_ns=time.monotonic_ns()), addr)
    time.sleep(0.01)
    a.poll()                                               # drained early ...
    assert a.read(time.monotonic(), 0.01, out) == ReadStatus.OK   # ... and delivered by read
    assert list(out) == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert a.read(time.monotonic(), 0.01, out) == ReadStatus.HELD
    robot.sendto(P.encode(P.SENSOR, np.arange(7.0), seq=2, stamp_ns=time.monotonic_ns()), addr)
    robot.sendto(P.encode(P.SENSOR, np.ones(5), seq=3, stamp_ns=time.monotonic_ns(),
                          flags=P.FLAG_ESTOP), addr)
    assert wait_read(a, out) == ReadStatus.ESTOP
    assert a.decoder.malformed == 1 and a.safety.estopped
    sent = a.write(time.monotonic(), 0.01, np.array([50.0]))
    assert sent[0] == 0.0                                  # latched: the safe command
    a.shutdown()


def test_reset_without_answer_returns_false(robot):
    a, addr = connect(robot)
    t = time.monotonic()
    assert a.reset_episode(seed=4) is False
    assert 0.1 <= time.monotonic() - t < 1.0
    data, _ = robot.recvfrom(P.MAX_DATAGRAM)
    assert data[3] == P.RESET
    a.shutdown()


def test_rejected_inf_sample_is_not_held(robot):
    """Reproduction of the field report: a valid packet, then one with inf in a joint, then three reads
    with no new packet. The inf sample is rejected once and never handed on as HELD."""
    a, addr = connect(robot)
    out = np.zeros(a.n_states)
    robot.sendto(P.encode(P.SENSOR, np.arange(5.0), seq=1, stamp_ns=time.monotonic_ns()), addr)
    assert wait_read(a, out) == ReadStatus.OK
    bad = np.arange(5.0)
    bad[2] = np.inf
    robot.sendto(P.encode(P.SENSOR, bad, seq=2, stamp_ns=time.monotonic_ns()), addr)
    time.sleep(0.01)
    statuses = [a.read(time.monotonic(), 0.01, out)]
    assert statuses[0] == ReadStatus.INVALID and list(out) == [0.0, 1.0, 2.0, 3.0, 4.0]
    for _ in range(3):
        statuses.append(a.read(time.monotonic(), 0.01, out))
        assert list(out) == [0.0, 1.0, 2.0, 3.0, 4.0], statuses
    assert statuses[1:] == [ReadStatus.HELD] * 3
    assert "inf" in a.safety.last_rejection and "sample 2" in a.safety.last_rejection
    a.shutdown()


@pytest.mark.parametrize("header", [dict(stamp_ns=10**10), dict(seq=2**62)],
                         ids=["stamp 10 s ahead", "seq jump to 2^62"])
def test_one_bad_header_does_not_latch_the_stream(robot, header):
    """A well-formed packet with a bad header is rejected and the next honest packets are read as OK,
    with no restart of the robot's session."""
    a, addr = connect(robot)
    out = np.zeros(a.n_states)
    seq = 0

    def send(**kw):
        nonlocal seq
        seq += 1
        fields = dict(seq=seq, stamp_ns=time.monotonic_ns())
        fields.update(kw)
        robot.sendto(P.encode(P.SENSOR, np.full(5, float(seq)), **fields), addr)

    for _ in range(20):
        send()
        assert wait_read(a, out) == ReadStatus.OK
    bad = dict(header)
    if "stamp_ns" in bad:
        bad["stamp_ns"] += time.monotonic_ns()
    send(**bad)
    time.sleep(0.005)
    for _ in range(20):
        send()
        assert wait_read(a, out) == ReadStatus.OK and out[0] == seq
    counters = a.counters()
    assert counters["future"] + counters["jump"] == 1 and counters["resyncs"] == 0
    a.shutdown()


def test_a_flood_is_drained_a_bounded_amount_per_read(robot):
    """A robot flooding the socket cannot hold the loop inside one read: each read handles at most
    MAX_DRAIN datagrams, and the newest sample is reached over the following reads."""
    from hardware.udp import MAX_DRAIN
    a, addr = connect(robot)
    a.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)   # room for the whole flood
    out = np.zeros(a.n_states)
    sent = 0
    for seq in range(1, 2 * MAX_DRAIN + 50):
        try:
            robot.sendto(P.encode(P.SENSOR, np.full(5, float(seq)), seq=seq,
                                  stamp_ns=time.monotonic_ns()), addr)
            sent = seq
        except BlockingIOError:
            break
    time.sleep(0.02)
    handled = []
    for _ in range(6):
        before = a.decoder.accepted + sum(a.decoder.counters()[k] for k in P.REJECTIONS)
        a.read(time.monotonic(), 0.01, out)
        handled.append(a.decoder.accepted + sum(a.decoder.counters()[k] for k in P.REJECTIONS) - before)
    assert max(handled) <= MAX_DRAIN and a.counters()["drain_limited"] >= 1, handled
    assert sum(handled) > MAX_DRAIN                     # later reads carried on where the first stopped
    a.shutdown()

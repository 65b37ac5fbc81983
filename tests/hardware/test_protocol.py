"""hardware.protocol: framing, each rejection class in its documented order, sequence tracking."""
import struct
import zlib

import numpy as np
import pytest

from hardware import protocol as P
from hardware.base import ProtocolError

MS = 1_000_000


def feed(dec, data, recv_ns):
    dec.buf[:len(data)] = data
    return dec.accept(len(data), recv_ns)


def test_layout_and_round_trip():
    assert P.HEADER_SIZE == 36 and P.OVERHEAD == 40
    enc = P.Encoder(P.SENSOR, 3, session=7)
    enc.values[:] = [1.5, -2.0, 3.25]
    msg = bytes(enc.pack(stamp_ns=123, flags=P.FLAG_SAFE, ack=9))
    assert len(msg) == 40 + 24 and msg[:2] == b"RT" and msg[2] == 1 and msg[3] == P.SENSOR
    assert msg == P.encode(P.SENSOR, [1.5, -2.0, 3.25], seq=1, stamp_ns=123, flags=P.FLAG_SAFE, ack=9,
                           session=7)
    (crc,) = struct.unpack_from("<I", msg, len(msg) - 4)
    assert crc == zlib.crc32(msg[:-4])
    dec = P.Decoder((P.SENSOR,), 3)
    assert feed(dec, msg, 1000)
    assert list(dec.values) == [1.5, -2.0, 3.25]
    assert (dec.seq, dec.stamp, dec.flags, dec.ack, dec.count) == (1, 123, P.FLAG_SAFE, 9, 3)


def test_each_rejection_class():
    dec = P.Decoder((P.SENSOR,), 2, max_age=0.01)
    good = P.encode(P.SENSOR, [1.0, 2.0], seq=5, stamp_ns=0)
    assert feed(dec, good, 0)
    cases = [
        ("truncated", good[:20]),
        ("truncated", good[:-1]),
        ("malformed", b"XX" + good[2:]),
        ("malformed", good[:40] + bytes([good[40] ^ 1]) + good[41:]),        # checksum
        ("malformed", good + b"\0"),                                         # longer than declared
        ("malformed", P.encode(P.COMMAND, [1.0, 2.0], seq=6, stamp_ns=0)),   # unexpected type
        ("malformed", P.encode(P.SENSOR, [1.0], seq=6, stamp_ns=0)),         # wrong payload size
        ("wrong_version", P.encode(P.SENSOR, [1.0, 2.0], seq=6, stamp_ns=0, version=2)),
        ("duplicate", good),
        ("late", P.encode(P.SENSOR, [1.0, 2.0], seq=6, stamp_ns=-20 * MS)),
        ("out_of_order", P.encode(P.SENSOR, [1.0, 2.0], seq=4, stamp_ns=0)),
    ]
    for kind, data in cases:
        before = dec.counters()
        assert not feed(dec, data, 0), kind
        after = dec.counters()
        changed = {k for k in after if after[k] != before[k]}
        assert changed == {kind}, (kind, changed, dec.last_reason)
    assert feed(dec, P.encode(P.SENSOR, [3.0, 4.0], seq=9, stamp_ns=0), 0)
    assert dec.gaps == 3 and dec.accepted == 2          # 6, 7, 8 never accepted


def test_duplicates_remembered_within_window_and_session_change():
    dec = P.Decoder((P.SENSOR,), 1)
    for s in range(1, 11):
        assert feed(dec, P.encode(P.SENSOR, [s], seq=s, stamp_ns=0), 0)
    assert not feed(dec, P.encode(P.SENSOR, [3], seq=3, stamp_ns=0), 0)
    assert dec.duplicate == 1
    # a rebooted robot: new session, sequence restarts
    assert feed(dec, P.encode(P.SENSOR, [1], seq=1, stamp_ns=0, session=99), 0)
    assert dec.session_changes == 1 and dec.gaps == 0


def test_late_uses_offset_not_absolute_clocks():
    dec = P.Decoder((P.SENSOR,), 1, max_age=0.005)
    base = 10**12                     # the sender's clock is far from ours: only excess delay matters
    for s in range(1, 50):
        assert feed(dec, P.encode(P.SENSOR, [0], seq=s, stamp_ns=base + s * MS), s * MS + 100_000)
    assert not feed(dec, P.encode(P.SENSOR, [0], seq=50, stamp_ns=base + 50 * MS), 50 * MS + 6 * MS)
    assert dec.late == 1
    assert feed(dec, P.encode(P.SENSOR, [0], seq=51, stamp_ns=base + 51 * MS), 51 * MS + 4 * MS)


def test_control_messages_share_the_sequence():
    enc = P.Encoder(P.COMMAND, 2)
    dec = P.Decoder((P.COMMAND, P.HELLO, P.RESET, P.BYE), 2)
    msgs = [bytes(enc.pack_control(P.HELLO, 0)), bytes(enc.pack(0)), bytes(enc.pack_control(P.RESET, 0, 7.0)),
            bytes(enc.pack(0)), bytes(enc.pack_control(P.BYE, 0))]
    types = []
    for m in msgs:
        assert feed(dec, m, 0)
        types.append(dec.msg_type)
    assert types == [P.HELLO, P.COMMAND, P.RESET, P.COMMAND, P.BYE] and dec.gaps == 0


def test_encoder_limits():
    with pytest.raises(ProtocolError, match="n_values"):
        P.Encoder(P.SENSOR, P.MAX_VALUES + 1)
    enc = P.Encoder(P.SENSOR, 4)
    assert enc.pack(0).obj is enc.buf and np.shares_memory(enc.values, np.frombuffer(enc.buf, np.uint8))


def sensor(seq, stamp_ns, session=1, value=0.0):
    return P.encode(P.SENSOR, [value], seq=seq, stamp_ns=stamp_ns, session=session)


def stream(dec, seqs, t0_ms, transit_ms=0.1, clock_shift_ns=0):
    """Feed honest messages (sent every ms, received transit_ms later); return their acceptance."""
    out = []
    for seq in seqs:
        sent = (t0_ms + seq) * MS
        out.append(feed(dec, sensor(seq, sent + clock_shift_ns), sent + int(transit_ms * MS)))
    return out


def test_one_future_stamp_is_rejected_without_moving_the_reference():
    dec = P.Decoder((P.SENSOR,), 1, max_age=0.02)
    assert all(stream(dec, range(1, 20), 0))
    assert not feed(dec, sensor(20, (20 + 10_000) * MS), 20 * MS)      # stamped 10 s ahead
    assert dec.future == 1 and "ahead" in dec.last_reason
    assert all(stream(dec, range(21, 60), 0))                          # honest messages go on
    assert dec.late == 0 and dec.resyncs == 0 and dec.gaps == 1


def test_one_sequence_jump_is_rejected_without_moving_the_sequence():
    dec = P.Decoder((P.SENSOR,), 1, max_age=0.02)
    assert all(stream(dec, range(1, 20), 0))
    assert not feed(dec, sensor(2**62, 20 * MS), 20 * MS)
    assert dec.jump == 1
    assert all(stream(dec, range(20, 60), 0))
    assert dec.out_of_order == 0 and dec.resyncs == 0 and dec.gaps == 0


@pytest.mark.parametrize("bad", ["future", "jump"])
def test_a_bad_first_header_is_outvoted(bad):
    """The first message of a session sets the reference; if its header was bad, every honest message
    looks late (or out of order) until resync_after consistent ones replace the reference."""
    dec = P.Decoder((P.SENSOR,), 1, max_age=0.02)
    first = sensor(1, 10_000 * MS) if bad == "future" else sensor(2**62, 0)
    assert feed(dec, first, 0)
    got = stream(dec, range(2, 40), 0)
    assert got[:P.RESYNC_AFTER - 1] == [False] * (P.RESYNC_AFTER - 1) and all(got[P.RESYNC_AFTER - 1:])
    assert dec.resyncs == 1
    assert (dec.late if bad == "future" else dec.out_of_order) == P.RESYNC_AFTER - 1


def test_a_stepped_sender_clock_and_a_long_loss_resynchronise():
    dec = P.Decoder((P.SENSOR,), 1, max_age=0.02)
    assert all(stream(dec, range(1, 300), 0))
    got = stream(dec, range(300, 340), 0, clock_shift_ns=5_000 * MS)    # sender's clock +5 s
    assert got.count(False) == P.RESYNC_AFTER - 1 and all(got[P.RESYNC_AFTER - 1:])
    assert dec.future == P.RESYNC_AFTER - 1 and dec.resyncs == 1
    start = 340 + 100_000                                               # 100k messages lost
    got = stream(dec, range(start, start + 20), 0, clock_shift_ns=5_000 * MS)
    assert got.count(False) == P.RESYNC_AFTER - 1 and dec.jump == P.RESYNC_AFTER - 1
    assert dec.resyncs == 2


def test_a_confirmed_reference_never_yields_to_late_messages():
    """Data that arrives late stays rejected however long it lasts; fresh data is accepted again."""
    dec = P.Decoder((P.SENSOR,), 1, max_age=0.02)
    assert all(stream(dec, range(1, 50), 0))
    assert not any(stream(dec, range(50, 250), 0, transit_ms=100.0))    # a link 100 ms behind
    assert dec.late == 200 and dec.resyncs == 0
    assert all(stream(dec, range(250, 260), 0))


def test_interleaved_hostile_headers_never_resynchronise_an_honest_stream():
    dec = P.Decoder((P.SENSOR,), 1, max_age=0.02)
    rng = np.random.default_rng(0)
    accepted = 0
    for seq in range(1, 400):
        accepted += feed(dec, sensor(seq, seq * MS), seq * MS + 100_000)
        hostile = sensor(int(rng.integers(2**40, 2**62)), int(rng.integers(-2**40, 2**40)))
        feed(dec, hostile, seq * MS + 200_000)
    assert accepted == dec.accepted == 399 and dec.resyncs == 0

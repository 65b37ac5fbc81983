"""The rtu-control UDP wire protocol, version 1: one datagram = one message.

Layout (little-endian, 40 + 8·n bytes)::

    offset size type  field
    0      2    2s    magic      b"RT"
    2      1    u8    version    1 (VERSION)
    3      1    u8    type       1 SENSOR (robot -> host), 2 COMMAND (host -> robot), 3 HELLO (host ->
                                 robot, empty: "send sensors here"), 4 RESET (host -> robot: start an
                                 episode; payload [seed]), 5 BYE (host -> robot: stop commanding now)
    4      2    u16   flags      bit 0 ESTOP (robot's e-stop engaged), bit 1 SAFE (the robot is applying
                                 its own safe command: its command watchdog fired), bit 2 RESET_DONE
    6      2    u16   length     payload length in bytes (8·n, n float64 values; n <= 4096)
    8      4    u32   session    random id chosen by the sender at start; a new session restarts the
                                 receiver's sequence tracking (a rebooted robot)
    12     8    u64   seq        sequence number, +1 per message the sender sends on this stream
    20     8    i64   stamp      sender's monotonic clock when the message was sent, ns
    28     8    u64   ack        SENSOR: seq of the last COMMAND applied; COMMAND: seq of the last SENSOR
                                 the host had read when it computed this command; otherwise 0
    36     8·n  f64[] payload    SENSOR: the state channels in order; COMMAND: the command channels in
                                 order (SI units, see the adapter's channel tables)
    36+8n  4    u32   crc        zlib.crc32 of bytes [0, 36 + 8n)

A receiver (:class:`Decoder`) checks, in this order, and counts each rejection class separately:

1. ``truncated``: fewer than 40 bytes, or fewer bytes than ``length`` declares;
2. ``malformed``: wrong magic, ``length`` not a multiple of 8 or larger than the datagram declares,
   checksum mismatch, unexpected message type, or a payload size different from the expected count;
3. ``wrong_version``: a well-framed message (magic ok) of another version (checked before the length and
   checksum: a future version may frame differently);
4. ``late``: older than ``max_age`` seconds. Clocks of the two ends need not agree: the receiver tracks
   the minimum of (receive time - stamp) over a sliding window as the clock offset plus the fastest
   transit (the *clock reference*), and a message's age is its excess over that minimum;
5. ``future``: stamped more than ``max_age`` seconds ahead of the clock reference (a transit faster than
   the fastest ever seen: the stamp is implausible);
6. ``duplicate``: a sequence number already accepted (the last 64 are remembered);
7. ``out_of_order``: older than the newest accepted sequence number and not a duplicate;
8. ``jump``: more than ``max_seq_step`` (65,536) sequence numbers ahead of the newest accepted one.

Accepted messages advance the stream; ``gaps`` counts sequence numbers skipped over (lost, or rejected
as late / out of order). Encoding and decoding use precompiled ``struct.Struct`` objects, preallocated
bytearrays and numpy views on them: no per-message buffers.

Re-synchronisation (one bad header never latches the stream). Only accepted messages move the clock
reference and the newest sequence number, so a single message with an implausible stamp (``future``)
or sequence number (``jump``) is rejected and the stream goes on as before. If the *reference* is what
is wrong (the sender's clock stepped forward, it skipped more than ``max_seq_step`` numbers, or the
first message of a session carried a bad header so that every honest message after it looks late or
out of order), the receiver re-synchronises on the evidence: ``resync_after`` (8) messages in a row,
each rejected as ``future``, ``jump`` or ``out_of_order`` — or as ``late`` while the reference is
young (fewer than ``resync_after`` accepted messages since it was set) — and consistent with each
other (sequence numbers increasing by at most ``max_seq_step``, clock offsets within ``max_age`` of
each other) replace the reference: the eighth is accepted and counted in ``resyncs``. Once confirmed
by ``resync_after`` accepted messages, a reference is never replaced by late messages: a link that
delivers everything late stays rejected until it delivers fresh data again. A sender's clock must
not step backwards within a session (start a new session instead).
"""
import os
import struct
import zlib

import numpy as np

from hardware.base import ProtocolError

MAGIC = b"RT"
VERSION = 1
SENSOR, COMMAND, HELLO, RESET, BYE = 1, 2, 3, 4, 5
TYPE_NAMES = {SENSOR: "sensor", COMMAND: "command", HELLO: "hello", RESET: "reset", BYE: "bye"}
FLAG_ESTOP, FLAG_SAFE, FLAG_RESET_DONE = 1, 2, 4
HEADER = struct.Struct("<2sBBHHIQqQ")
CRC = struct.Struct("<I")
HEADER_SIZE = HEADER.size           # 36
OVERHEAD = HEADER_SIZE + CRC.size   # 40
MAX_VALUES = 4096
MAX_DATAGRAM = OVERHEAD + 8 * MAX_VALUES
REJECTIONS = ("truncated", "malformed", "wrong_version", "late", "future", "duplicate", "out_of_order",
              "jump")
MAX_SEQ_STEP = 1 << 16   # a larger forward step of the sequence number is implausible (jump)
RESYNC_AFTER = 8         # consistent rejected messages in a row that replace the stream's reference

assert HEADER_SIZE == 36


def new_session():
    """A random non-zero 32-bit session id."""
    return int.from_bytes(os.urandom(4), "little") or 1


class Encoder:
    """Builds messages of one type into one preallocated buffer.

    ``values`` (float64 (n,)) is a numpy view on the payload bytes: fill it, then ``pack(...)`` returns a
    memoryview of the whole datagram (valid until the next pack). ``seq`` increments on every pack.
    """

    def __init__(self, msg_type, n_values, session=None):
        if not 0 <= n_values <= MAX_VALUES:
            raise ProtocolError(f"Encoder n_values: expected 0..{MAX_VALUES}, found {n_values}")
        self.msg_type = msg_type
        self.n = n_values
        self.size = OVERHEAD + 8 * n_values
        self.buf = bytearray(self.size)
        self.view = memoryview(self.buf)
        self._body = self.view[:HEADER_SIZE + 8 * n_values]
        self.values = np.frombuffer(self.buf, dtype="<f8", count=n_values, offset=HEADER_SIZE)
        self.session = new_session() if session is None else session
        self.seq = 0

    def pack(self, stamp_ns, flags=0, ack=0):
        """Header + current ``values`` + CRC; returns a memoryview of the datagram (no copy)."""
        self.seq += 1
        HEADER.pack_into(self.buf, 0, MAGIC, VERSION, self.msg_type, flags, 8 * self.n, self.session,
                         self.seq, stamp_ns, ack)
        CRC.pack_into(self.buf, self.size - 4, zlib.crc32(self._body))
        return self.view


    def pack_control(self, msg_type, stamp_ns, value=None, flags=0):
        """A HELLO / RESET / BYE message (0 or 1 value) sharing this encoder's session and sequence
        numbers (one stream per sender); returns a memoryview of a small internal buffer."""
        n = 0 if value is None else 1
        if not hasattr(self, "_ctl"):
            self._ctl = bytearray(OVERHEAD + 8)
            self._ctl_view = memoryview(self._ctl)
        self.seq += 1
        HEADER.pack_into(self._ctl, 0, MAGIC, VERSION, msg_type, flags, 8 * n, self.session,
                         self.seq, stamp_ns, 0)
        if n:
            struct.pack_into("<d", self._ctl, HEADER_SIZE, float(value))
        CRC.pack_into(self._ctl, HEADER_SIZE + 8 * n, zlib.crc32(self._ctl_view[:HEADER_SIZE + 8 * n]))
        return self._ctl_view[:OVERHEAD + 8 * n]


def encode(msg_type, values, seq, stamp_ns, flags=0, ack=0, session=1, version=VERSION):
    """One message as new bytes (tests, tools; allocates). ``values``: sequence of floats."""
    values = np.asarray(values, dtype="<f8")
    if values.size > MAX_VALUES:
        raise ProtocolError(f"encode: expected at most {MAX_VALUES} values, found {values.size}")
    head = HEADER.pack(MAGIC, version, msg_type, flags, 8 * values.size, session, seq, stamp_ns, ack)
    body = head + values.tobytes()
    return body + CRC.pack(zlib.crc32(body))


class Decoder:
    """Validates datagrams of one expected type and payload size, received into its own buffer.

    Use: ``n = sock.recv_into(dec.buf)`` then ``dec.accept(n, recv_ns)`` -> True when the message was
    accepted; then ``dec.values`` (float64 (n_values,), a view into the buffer: copy out before the next
    recv), ``dec.seq``, ``dec.stamp``, ``dec.flags``, ``dec.ack``, ``dec.msg_type``, ``dec.count``
    (payload values) and ``dec.excess_ns`` (its estimated age: transit beyond the fastest seen) describe it.
    ``expected_types``: the message types accepted (a tuple of ints); ``n_values``: payload count for
    SENSOR/COMMAND messages (other types must have an empty payload or, for RESET, one value).
    Counters: ``accepted``, ``gaps``, ``session_changes``, ``resyncs`` and one per class in
    ``REJECTIONS``. ``max_seq_step`` and ``resync_after``: see the module docstring.
    """

    WINDOW = 256    # accepted messages per clock-offset window (the minimum spans 256..512)

    def __init__(self, expected_types, n_values, max_age=0.1, max_seq_step=MAX_SEQ_STEP,
                 resync_after=RESYNC_AFTER):
        if max_seq_step < 1 or resync_after < 2:
            raise ProtocolError(f"Decoder: expected max_seq_step >= 1 and resync_after >= 2, found "
                                f"{max_seq_step} and {resync_after}")
        self.expected = tuple(expected_types)
        self.n = n_values
        self.max_age_ns = int(max_age * 1e9)
        self.max_seq_step = int(max_seq_step)
        self.resync_after = int(resync_after)
        self.buf = bytearray(MAX_DATAGRAM + 64)
        self.view = memoryview(self.buf)
        self._values = np.frombuffer(self.buf, dtype="<f8", count=n_values, offset=HEADER_SIZE)
        self.values = self._values
        self.reset_counters()
        self.reset_stream()

    def reset_counters(self):
        self.accepted = 0
        self.gaps = 0
        self.session_changes = 0
        self.resyncs = 0
        for kind in REJECTIONS:
            setattr(self, kind, 0)
        self.last_reason = ""

    def reset_stream(self):
        self.session = None
        self.last_seq = 0
        self._seen = 0            # bit i set: sequence last_seq - i was accepted
        self._off_cur = None
        self._off_prev = None
        self._win = 0
        self._confirmed = 0       # accepted messages since the reference was set
        self._run = 0             # consistent rejected messages in a row (re-synchronisation evidence)
        self._run_seq = 0
        self._run_offset = 0
        self.seq = 0
        self.stamp = 0
        self.flags = 0
        self.ack = 0
        self.msg_type = 0
        self.count = 0
        self.excess_ns = 0

    def counters(self):
        out = {k: getattr(self, k) for k in REJECTIONS}
        out.update(accepted=self.accepted, gaps=self.gaps, session_changes=self.session_changes,
                   resyncs=self.resyncs)
        return out

    def _reject(self, kind, why):
        setattr(self, kind, getattr(self, kind) + 1)
        self.last_reason = why
        return False

    def _evidence(self, seq, offset):
        """Count a rejected message towards re-synchronisation; True when it completes the run."""
        if self._run and 0 < seq - self._run_seq <= self.max_seq_step and \
                abs(offset - self._run_offset) <= self.max_age_ns:
            self._run += 1
        else:
            self._run = 1
        self._run_seq, self._run_offset = seq, offset
        return self._run >= self.resync_after

    def _resync(self, seq, offset):
        """Replace the stream's reference by the message (seq, offset) that completed a run."""
        self.resyncs += 1
        self.last_seq = seq - 1
        self._seen = 0
        self._off_cur, self._off_prev = offset, None
        self._win = 0
        self._confirmed = 0

    def accept(self, nbytes, recv_ns):
        """Validate the ``nbytes`` received into ``buf`` at ``recv_ns``; True when accepted."""
        buf = self.buf
        if nbytes < OVERHEAD:
            return self._reject("truncated", f"{nbytes} bytes < {OVERHEAD}")
        if buf[0] != 0x52 or buf[1] != 0x54:      # b"RT"
            return self._reject("malformed", "bad magic")
        if buf[2] != VERSION:
            return self._reject("wrong_version", f"version {buf[2]}, expected {VERSION}")
        magic, version, mtype, flags, length, session, seq, stamp, ack = HEADER.unpack_from(buf, 0)
        if length & 7 or length > 8 * MAX_VALUES:
            return self._reject("malformed", f"payload length {length}")
        if nbytes < OVERHEAD + length:
            return self._reject("truncated", f"{nbytes} bytes < {OVERHEAD + length} declared")
        if nbytes > OVERHEAD + length:
            return self._reject("malformed", f"{nbytes} bytes > {OVERHEAD + length} declared")
        (crc,) = CRC.unpack_from(buf, HEADER_SIZE + length)
        if crc != zlib.crc32(self.view[:HEADER_SIZE + length]):
            return self._reject("malformed", "checksum mismatch")
        if mtype not in self.expected:
            return self._reject("malformed", f"message type {mtype}, expected {self.expected}")
        n = length >> 3
        if mtype == SENSOR or mtype == COMMAND:
            if n != self.n:
                return self._reject("malformed", f"{n} values, expected {self.n}")
        elif n > 1:
            return self._reject("malformed", f"{n} values in a {TYPE_NAMES.get(mtype)} message")
        # -- stream checks
        if session != self.session:
            if self.session is not None:
                self.session_changes += 1
            self.session = session
            self.last_seq = seq - 1
            self._seen = 0
            self._off_cur = self._off_prev = None
            self._confirmed = 0
            self._run = 0
        offset = recv_ns - stamp
        if self._off_cur is None and self._off_prev is None:
            self._off_cur = offset                  # the first message sets the clock reference
        cur, prev = self._off_cur, self._off_prev
        best = prev if cur is None or (prev is not None and prev < cur) else cur
        last = self.last_seq
        kind = None
        if offset < best - self.max_age_ns:
            kind, why = "future", f"stamped {(best - offset) * 1e-6:.1f} ms ahead of the reference"
        elif offset - best > self.max_age_ns:
            kind, why = "late", f"{(offset - best) * 1e-6:.1f} ms old"
        elif seq <= last:
            d = last - seq
            if d < 64 and (self._seen >> d) & 1:
                self._run = 0
                return self._reject("duplicate", f"seq {seq} again")
            kind, why = "out_of_order", f"seq {seq} after {last}"
        elif seq - last > self.max_seq_step:
            kind, why = "jump", f"seq {seq} jumps {seq - last} ahead of {last}"
        if kind is not None:
            counts = kind != "late" or self._confirmed < self.resync_after
            if not (counts and self._evidence(seq, offset)):
                if not counts:
                    self._run = 0
                return self._reject(kind, why)
            self._resync(seq, offset)
            last, best = self.last_seq, offset
        self._run = 0
        self._confirmed += 1
        if self._off_cur is None or offset < self._off_cur:
            self._off_cur = offset
        step = seq - last
        if step > 1:
            self.gaps += step - 1
        self._seen = ((self._seen << step) | 1) & 0xFFFFFFFFFFFFFFFF if step < 64 else 1
        self.last_seq = seq
        self.accepted += 1
        self._win += 1
        if self._win >= self.WINDOW:
            self._win = 0
            self._off_prev = self._off_cur
            self._off_cur = None
        self.seq, self.stamp, self.flags, self.ack, self.msg_type = seq, stamp, flags, ack, mtype
        self.count = n
        self.excess_ns = offset - best if offset > best else 0
        return True

    def payload(self, count):
        """float64 view of the first ``count`` payload values of the last accepted message."""
        return np.frombuffer(self.buf, dtype="<f8", count=count, offset=HEADER_SIZE)

"""meshfed_function: write meshfed exec functions in Python.

A function is a plain callable taking a context and a message and returning
its outputs::

    import meshfed_function as mf

    def process(ctx, msg):
        n = ctx.incr_counter(msg.key or "none")
        return mf.Output(payload=f"{msg.key} {n}", key=msg.key)

    if __name__ == "__main__":
        mf.run(process)

`process` may return None (no output), one Output (or bytes/str, taken as
the payload of an output without key), a list of them, or be a generator
that yields them. An exception fails that message only: the host gets a
FAIL frame with the exception's text, the traceback goes to the log, and
the process keeps serving messages. Outputs of a failed message are
discarded by the host.

Reference it from a FunctionMesh as ``runtime: {exec: {command: [python3,
my_function.py]}}`` with this file next to the function (or on PYTHONPATH).

This module speaks meshfed's exec protocol, version 1
(docs/exec-protocol.md), on stdin/stdout. It claims stdout for itself:
``print`` and anything else written to sys.stdout goes to stderr, which is
the function's log (one record per line; a line starting with ``DEBUG:``,
``INFO:``, ``WARNING:`` or ``ERROR:`` is logged at that level). Only the
standard library is used.
"""

import json
import logging
import os
import struct
import sys
import traceback

__all__ = [
    "PROTOCOL_VERSION",
    "MAX_FRAME_SIZE",
    "Context",
    "Message",
    "Output",
    "ProtocolError",
    "StateError",
    "run",
]

PROTOCOL_VERSION = 1
MAX_FRAME_SIZE = 16 << 20

# Frame types (docs/exec-protocol.md, "Frames").
HELLO = 0x01
READY = 0x02
MESSAGE = 0x03
OUTPUT = 0x04
DONE = 0x05
FAIL = 0x06
STATE = 0x07
STATE_RESULT = 0x08

_OP_INCR_COUNTER = 1
_OP_GET_COUNTER = 2
_OP_PUT_STATE = 3
_OP_GET_STATE = 4

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_I64 = struct.Struct(">q")
_HEADER = struct.Struct(">IB")


class ProtocolError(Exception):
    """The host sent something this library does not understand."""


class StateError(Exception):
    """The host could not serve a state call (the host's error text)."""


def _text(b):
    # Strings are UTF-8; surrogateescape round-trips anything else.
    return b.decode("utf-8", "surrogateescape")


def _raw(s):
    if isinstance(s, bytes):
        return s
    return s.encode("utf-8", "surrogateescape")


class _Body:
    """Reads fields off one frame body, refusing to read past its end."""

    __slots__ = ("b", "pos", "frame")

    def __init__(self, b, frame):
        # b is the whole frame after the length: the type byte, the body.
        self.b = b
        self.pos = 1
        self.frame = frame

    def _need(self, n, field):
        if self.pos + n > len(self.b):
            raise ProtocolError(
                f"{self.frame} frame: {field}: need {n} bytes, {len(self.b) - self.pos} left"
            )

    def u8(self, field):
        self._need(1, field)
        v = self.b[self.pos]
        self.pos += 1
        return v

    def bool(self, field):
        v = self.u8(field)
        if v > 1:
            raise ProtocolError(f"{self.frame} frame: {field}: boolean byte {v}")
        return v == 1

    def _fixed(self, st, field):
        self._need(st.size, field)
        (v,) = st.unpack_from(self.b, self.pos)
        self.pos += st.size
        return v

    def u32(self, field):
        return self._fixed(_U32, field)

    def u64(self, field):
        return self._fixed(_U64, field)

    def i64(self, field):
        return self._fixed(_I64, field)

    def bytes(self, field):
        n = self.u32(field + " length")
        self._need(n, field)
        v = bytes(self.b[self.pos : self.pos + n])
        self.pos += n
        return v

    def str(self, field):
        return _text(self.bytes(field))

    def map(self, field):
        n = self.u32(field + " count")
        m = {}
        for i in range(n):
            k = self.str(f"{field}[{i}] key")
            if k in m:
                raise ProtocolError(f"{self.frame} frame: {field}: duplicate key {k!r}")
            m[k] = self.str(f"{field}[{i}] value")
        return m

    def end(self):
        if self.pos != len(self.b):
            raise ProtocolError(f"{self.frame} frame: {len(self.b) - self.pos} trailing bytes")


def _put_bytes(parts, b):
    parts.append(_U32.pack(len(b)))
    parts.append(b)


def _put_map(parts, m):
    m = m or {}
    parts.append(_U32.pack(len(m)))
    for k, v in m.items():
        _put_bytes(parts, _raw(k))
        _put_bytes(parts, _raw(v))


class Message:
    """One input message.

    payload is bytes (``text`` decodes it as UTF-8); key and topic are str
    ("" when none); properties a dict of str; event_time and publish_time
    Unix milliseconds (0 when none); producer_name and sequence_id identify
    the message across geo-replicated copies.
    """

    __slots__ = (
        "id",
        "topic",
        "key",
        "payload",
        "properties",
        "event_time",
        "publish_time",
        "producer_name",
        "sequence_id",
    )

    def __init__(self, id, topic, key, payload, properties, event_time, publish_time, producer_name, sequence_id):
        self.id = id
        self.topic = topic
        self.key = key
        self.payload = payload
        self.properties = properties
        self.event_time = event_time
        self.publish_time = publish_time
        self.producer_name = producer_name
        self.sequence_id = sequence_id

    @property
    def text(self):
        """The payload decoded as UTF-8 (invalid bytes replaced)."""
        return self.payload.decode("utf-8", "replace")

    def __repr__(self):
        return f"Message(id={self.id}, topic={self.topic!r}, key={self.key!r}, payload={self.payload!r})"


class Output:
    """One output message. payload is bytes or str (encoded as UTF-8); an
    empty topic means the function's output topic, an empty key no key."""

    __slots__ = ("payload", "key", "topic", "properties")

    def __init__(self, payload=b"", key="", topic="", properties=None):
        self.payload = payload
        self.key = key
        self.topic = topic
        self.properties = properties

    def __repr__(self):
        return f"Output(payload={self.payload!r}, key={self.key!r}, topic={self.topic!r})"


class _Conn:
    def __init__(self, inp, out, max_frame):
        self.inp = inp
        self.out = out
        self.max_frame = max_frame
        # broken is the protocol error met inside the user's code (which
        # might catch it); the session ends when that code returns.
        self.broken = None

    def read(self):
        """Returns (type, frame), the frame being the type byte and the
        body, or None at a clean end of input."""
        hdr = self.inp.read(4)
        if not hdr:
            return None
        if len(hdr) < 4:
            raise ProtocolError("input ended inside a frame header")
        (n,) = _U32.unpack(hdr)
        if n == 0 or n > self.max_frame:
            raise ProtocolError(f"frame length {n} outside 1..{self.max_frame}")
        body = self.inp.read(n)
        if len(body) < n:
            raise ProtocolError(f"input ended inside a {n}-byte frame")
        return body[0], body

    def write(self, ftype, parts, name):
        body = b"".join(parts)
        n = 1 + len(body)
        if n > self.max_frame:
            raise ValueError(f"{name} frame of {n} bytes exceeds the {self.max_frame}-byte limit")
        self.out.write(_HEADER.pack(n, ftype) + body)

    def flush(self):
        self.out.flush()


class Context:
    """What a function sees of its instance: identity, config, log, state.

    Attributes: tenant, namespace, mesh, function (str), instance_index
    (int), config (dict, the function's spec.functions[].config), log (a
    logging.Logger writing to the function's log).
    """

    def __init__(self, conn, hello):
        self._conn = conn
        self._msg_id = 0
        self._next_req = 0
        self.tenant = hello["tenant"]
        self.namespace = hello["namespace"]
        self.mesh = hello["mesh"]
        self.function = hello["function"]
        self.instance_index = hello["instance"]
        self.config = hello["config"]
        self.log = logging.getLogger("meshfed.function")

    def _state(self, op, key, delta=0, value=None):
        try:
            return self._state_call(op, key, delta, value)
        except ProtocolError as e:
            self._conn.broken = e
            raise

    def _state_call(self, op, key, delta, value):
        if self._msg_id == 0:
            raise StateError("state is only available while processing a message")
        self._next_req += 1
        req = self._next_req
        parts = [
            _U64.pack(self._msg_id),
            _U64.pack(req),
            bytes((op,)),
        ]
        _put_bytes(parts, _raw(key))
        parts.append(_I64.pack(delta))
        parts.append(b"\x01" if value is not None else b"\x00")
        _put_bytes(parts, value if value is not None else b"")
        self._conn.write(STATE, parts, "STATE")
        self._conn.flush()
        fr = self._conn.read()
        if fr is None:
            raise ProtocolError("input ended while waiting for STATE_RESULT")
        ftype, body = fr
        if ftype != STATE_RESULT:
            raise ProtocolError(f"got frame type 0x{ftype:02x} while waiting for STATE_RESULT")
        d = _Body(body, "STATE_RESULT")
        got = d.u64("request")
        ok = d.bool("ok")
        counter = d.i64("counter")
        has_value = d.bool("has_value")
        v = d.bytes("value")
        err = d.str("error")
        d.end()
        if got != req:
            raise ProtocolError(f"STATE_RESULT for request {got}, expected {req}")
        if not ok:
            raise StateError(err)
        return counter, (v if has_value else None)

    def incr_counter(self, key, delta=1):
        """Adds delta to counter key and returns the new value."""
        return self._state(_OP_INCR_COUNTER, key, delta=int(delta))[0]

    def get_counter(self, key):
        """Returns counter key's value, 0 when never set."""
        return self._state(_OP_GET_COUNTER, key)[0]

    def put_state(self, key, value):
        """Stores value (bytes, or str as UTF-8) under key; None deletes."""
        if isinstance(value, str):
            value = value.encode("utf-8")
        elif value is not None:
            value = bytes(value)
        self._state(_OP_PUT_STATE, key, value=value)

    def delete_state(self, key):
        """Deletes key's value."""
        self._state(_OP_PUT_STATE, key, value=None)

    def get_state(self, key):
        """Returns key's value as bytes, None when absent."""
        return self._state(_OP_GET_STATE, key)[1]


def _decode_hello(body):
    d = _Body(body, "HELLO")
    h = {
        "version": d.u32("version"),
        "tenant": d.str("tenant"),
        "namespace": d.str("namespace"),
        "mesh": d.str("mesh"),
        "function": d.str("function"),
        "instance": d.u32("instance"),
        "max_frame_size": d.u32("max_frame_size"),
    }
    config = d.bytes("config")
    d.end()
    try:
        h["config"] = json.loads(config) if config else {}
    except ValueError as e:
        raise ProtocolError(f"HELLO frame: config is not JSON: {e}") from None
    return h


_unpack_u32 = _U32.unpack_from
_unpack_msg_tail = struct.Struct(">qqI").unpack_from
_unpack_i64 = _I64.unpack_from


def _unchecked_key_value(b, pos):
    # Reads topic, key, value and properties from pos without bounds checks,
    # for the hot paths (MESSAGE here, WRITE in meshfed_connector): they
    # raise struct.error, or return a short properties dict when a key
    # repeats, and their caller falls back to the checked decoder.
    # Returns (topic, key, value, props, property count, next pos).
    (n,) = _unpack_u32(b, pos)
    topic = b[pos + 4 : pos + 4 + n]
    pos += 4 + n
    (n,) = _unpack_u32(b, pos)
    key = b[pos + 4 : pos + 4 + n]
    pos += 4 + n
    (n,) = _unpack_u32(b, pos)
    value = b[pos + 4 : pos + 4 + n]
    pos += 4 + n
    (count,) = _unpack_u32(b, pos)
    pos += 4
    props = {}
    for _ in range(count):
        (n,) = _unpack_u32(b, pos)
        k = b[pos + 4 : pos + 4 + n]
        pos += 4 + n
        (n,) = _unpack_u32(b, pos)
        props[_text(k)] = _text(b[pos + 4 : pos + 4 + n])
        pos += 4 + n
    return topic, key, value, props, count, pos


def _decode_message(b):
    # The hot path: one pass without bounds checks, then one check that the
    # fields ended exactly at the end. On any doubt, _decode_message_checked
    # says precisely what is wrong.
    try:
        (mid,) = _U64.unpack_from(b, 1)
        topic, key, payload, props, count, pos = _unchecked_key_value(b, 9)
        event_time, publish_time, n = _unpack_msg_tail(b, pos)
        producer = b[pos + 20 : pos + 20 + n]
        pos += 20 + n
        (seq,) = _unpack_i64(b, pos)
        pos += 8
    except struct.error:
        return _decode_message_checked(b)
    if pos != len(b) or len(props) != count:
        return _decode_message_checked(b)
    return Message(mid, _text(topic), _text(key), payload, props, event_time, publish_time, _text(producer), seq)


def _decode_message_checked(body):
    d = _Body(body, "MESSAGE")
    m = Message(
        d.u64("id"),
        d.str("topic"),
        d.str("key"),
        d.bytes("payload"),
        d.map("properties"),
        d.i64("event_time"),
        d.i64("publish_time"),
        d.str("producer_name"),
        d.i64("sequence_id"),
    )
    d.end()
    return m


def _outputs(result):
    if result is None:
        return ()
    if isinstance(result, (Output, bytes, bytearray, str)):
        return (result,)
    return result


_pack_output_head = struct.Struct(">IBQI").pack
_pack_done = struct.Struct(">IBQ").pack
_pack_u32 = _U32.pack


def _send_output(conn, msg_id, o):
    if isinstance(o, Output):
        payload, key, topic, props = o.payload, o.key, o.topic, o.properties
    else:
        payload, key, topic, props = o, "", "", None
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    elif not isinstance(payload, bytes):
        payload = bytes(payload)
    topic = _raw(topic) if topic else b""
    key = _raw(key) if key else b""
    parts = [b"", topic, _pack_u32(len(key)), key, _pack_u32(len(payload)), payload]
    size = 1 + 8 + 4 + len(topic) + 4 + len(key) + 4 + len(payload) + 4
    if props:
        parts.append(_pack_u32(len(props)))
        for k, v in props.items():
            k = _raw(k)
            v = _raw(v)
            parts += (_pack_u32(len(k)), k, _pack_u32(len(v)), v)
            size += 8 + len(k) + len(v)
    else:
        parts.append(b"\0\0\0\0")
    if size > conn.max_frame:
        raise ValueError(f"OUTPUT frame of {size} bytes exceeds the {conn.max_frame}-byte limit")
    parts[0] = _pack_output_head(size, OUTPUT, msg_id, len(topic))
    conn.out.write(b"".join(parts))


def _fail(why):
    sys.stderr.write(f"ERROR: meshfed_function: {why}\n")
    sys.stderr.flush()
    # Exit now: no buffered frame may follow a protocol error.
    os._exit(2)


def run(process, init=None, max_frame_size=MAX_FRAME_SIZE):
    """Serves the exec protocol until the host closes stdin.

    process(ctx, msg) handles one message (see the module docstring).
    init(ctx), when given, runs once after the handshake's HELLO and before
    READY, e.g. to read ctx.config; an exception there ends the process.
    """
    _serve_stdio(max_frame_size, lambda conn: _serve(conn, process, init))


def _serve_stdio(max_frame_size, serve):
    # Runs serve(conn) on the frames of stdin and stdout, for functions here
    # and connectors in meshfed_connector. A protocol error ends the process
    # with its reason, as does the host going away.
    #
    # Keep the real stdout for frames; everything else written to fd 1 or
    # sys.stdout lands in the log.
    out = os.fdopen(os.dup(1), "wb", buffering=1 << 16)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    # Likewise stdin: user code reading sys.stdin must not eat frames.
    inp = os.fdopen(os.dup(0), "rb", buffering=1 << 16)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s: %(message)s")
    conn = _Conn(inp, out, max_frame_size)
    try:
        serve(conn)
    except ProtocolError as e:
        _fail(f"protocol error: {e}")
    except BrokenPipeError:
        # The host went away: nothing left to answer.
        sys.exit(1)


def _check_version(conn, version):
    # Ends the process when the host speaks another protocol version,
    # saying which version we speak: the host reports the mismatch.
    if version != PROTOCOL_VERSION:
        conn.write(READY, [_U32.pack(PROTOCOL_VERSION)], "READY")
        conn.flush()
        _fail(f"host speaks exec protocol {version}, this library speaks {PROTOCOL_VERSION}")


def _ready(conn, max_frame_size, ctx, init):
    # Ends a handshake (functions here, connectors in meshfed_connector):
    # never send frames larger than the host accepts, run init, say READY.
    if 0 < max_frame_size < conn.max_frame:
        conn.max_frame = max_frame_size
    if init is not None:
        init(ctx)
    conn.write(READY, [_U32.pack(PROTOCOL_VERSION)], "READY")
    conn.flush()


def _serve(conn, process, init):
    fr = conn.read()
    if fr is None:
        return
    ftype, body = fr
    if ftype != HELLO:
        raise ProtocolError(f"first frame has type 0x{ftype:02x}, expected HELLO")
    if len(body) < 5:
        raise ProtocolError("HELLO frame shorter than its version field")
    (version,) = _U32.unpack_from(body, 1)
    _check_version(conn, version)
    hello = _decode_hello(body)
    ctx = Context(conn, hello)
    _ready(conn, hello["max_frame_size"], ctx, init)
    while True:
        fr = conn.read()
        if fr is None:
            return
        ftype, body = fr
        if ftype != MESSAGE:
            raise ProtocolError(f"got frame type 0x{ftype:02x} where MESSAGE was expected")
        msg = _decode_message(body)
        ctx._msg_id = msg.id
        try:
            for o in _outputs(process(ctx, msg)):
                _send_output(conn, msg.id, o)
        except (ProtocolError, BrokenPipeError):
            raise
        except Exception as e:  # the user's error: fail this message only
            ctx.log.error("message %d failed:\n%s", msg.id, traceback.format_exc().rstrip())
            err = _raw(f"{type(e).__name__}: {e}")
            parts = [_U64.pack(msg.id)]
            _put_bytes(parts, err)
            conn.write(FAIL, parts, "FAIL")
        else:
            conn.out.write(_pack_done(9, DONE, msg.id))
        ctx._msg_id = 0
        if conn.broken is not None:
            raise conn.broken
        conn.flush()

"""meshfed_connector: write meshfed sources and sinks in Python.

A source is a callable returning the records ready to go into the topic,
and optionally one taking the position of the last record made durable::

    import meshfed_connector as mc

    def read(ctx, max_records):
        return [mc.Record(value=b"...", key="k", position="42")]

    def commit(ctx, position):
        save(position)          # resume after it on the next start

    if __name__ == "__main__":
        mc.run_source(read, commit)

`read` may return an empty list when nothing is ready: the library calls it
again after ``idle`` seconds (the host keeps waiting). A sink is a callable
that makes a batch durable and returns only then::

    def write(ctx, records):
        for r in records:
            out.write(r.value)
        out.flush(); os.fsync(out.fileno())

    if __name__ == "__main__":
        mc.run_sink(write)

An exception in read, commit or write fails that call only: the host gets
an ERROR frame with its text and the agent restarts the connector after a
backoff. Records carry ``stream`` and ``sequence`` on the sink side: a sink
that stores the highest sequence per stream with its write, and skips
records at or below it, is effectively-once.

Reference it from a mesh as a connector of type ``exec``: ``config:
{command: [python3, my_source.py], env: {PYTHONPATH: <this directory>}}``.
This module speaks the connector frames of meshfed's exec protocol,
version 1 (docs/exec-protocol.md, "Sources and sinks"), with the framing
of meshfed_function, which must be importable next to it. stdout carries
frames only; print goes to stderr, the connector's log.
"""

import json
import logging
import struct
import sys
import time
import traceback

import meshfed_function as _mf
from meshfed_function import ProtocolError, PROTOCOL_VERSION, MAX_FRAME_SIZE

__all__ = ["PROTOCOL_VERSION", "Context", "Record", "SinkRecord", "ProtocolError", "run_source", "run_sink"]

OPEN = 0x10
READ = 0x11
RECORD = 0x12
WRITE = 0x13
FLUSH = 0x14
COMMIT = 0x15
OK = 0x16
ERROR = 0x17

_NAMES = {OPEN: "OPEN", READ: "READ", RECORD: "RECORD", WRITE: "WRITE", FLUSH: "FLUSH", COMMIT: "COMMIT"}

ROLE_SOURCE = 1
ROLE_SINK = 2

_U64 = _mf._U64
_I64 = _mf._I64


class Record:
    """A record a source emits. value is bytes or str (encoded as UTF-8);
    key "" means none; properties a dict of str; event_time Unix
    milliseconds (0: unknown); position is handed back to commit once the
    record and all before it are durable ("": nothing to commit)."""

    __slots__ = ("value", "key", "properties", "event_time", "position")

    def __init__(self, value=b"", key="", properties=None, event_time=0, position=""):
        self.value = value
        self.key = key
        self.properties = properties
        self.event_time = event_time
        self.position = position


class SinkRecord:
    """A record a sink writes: topic it came from, key, value (bytes),
    properties, event_time (Unix ms, 0: unknown), and its identity:
    stream and sequence (growing within a stream)."""

    __slots__ = ("topic", "key", "value", "properties", "event_time", "stream", "sequence")

    def __init__(self, topic, key, value, properties, event_time, stream, sequence):
        self.topic = topic
        self.key = key
        self.value = value
        self.properties = properties
        self.event_time = event_time
        self.stream = stream
        self.sequence = sequence

    @property
    def text(self):
        return self.value.decode("utf-8", "replace")


class Context:
    """The connector instance: tenant, namespace, mesh, name (str),
    instance_index (int), effectively_once (bool), config (dict: the
    connector's config.config), log (a logging.Logger)."""

    def __init__(self, o):
        self.tenant = o["tenant"]
        self.namespace = o["namespace"]
        self.mesh = o["mesh"]
        self.name = o["name"]
        self.instance_index = o["instance"]
        self.effectively_once = o["effectively_once"]
        self.config = o["config"]
        self.log = logging.getLogger("meshfed.connector")


def run_source(read, commit=None, init=None, idle=0.05, max_frame_size=MAX_FRAME_SIZE):
    """Serves a source until the host closes stdin. init(ctx), when given,
    runs once before READY; an exception there ends the process."""
    _run(ROLE_SOURCE, init, max_frame_size, lambda conn, ctx, ft, d: _serve_source(conn, ctx, ft, d, read, commit, idle))


def run_sink(write, init=None, max_frame_size=MAX_FRAME_SIZE):
    """Serves a sink until the host closes stdin."""
    state = {"batch": []}
    _run(ROLE_SINK, init, max_frame_size, lambda conn, ctx, ft, d: _serve_sink(conn, ctx, ft, d, write, state))


def _run(role, init, max_frame_size, serve):
    def loop(conn):
        ctx = _handshake(conn, role, init)
        if ctx is None:
            return
        while True:
            fr = conn.read()
            if fr is None:
                return
            ftype, body = fr
            if serve(conn, ctx, ftype, _mf._Body(body, _NAMES.get(ftype, "unknown"))):
                conn.flush()

    _mf._serve_stdio(max_frame_size, loop)


def _handshake(conn, role, init):
    fr = conn.read()
    if fr is None:
        return None
    ftype, body = fr
    if ftype != OPEN:
        raise ProtocolError(f"first frame has type 0x{ftype:02x}, expected OPEN")
    d = _mf._Body(body, "OPEN")
    _mf._check_version(conn, d.u32("version"))
    o = {"role": d.u8("role"), "tenant": d.str("tenant"), "namespace": d.str("namespace"), "mesh": d.str("mesh"),
         "name": d.str("name"), "instance": d.u32("instance"), "max_frame_size": d.u32("max_frame_size"),
         "effectively_once": d.bool("effectively_once")}
    config = d.bytes("config")
    d.end()
    if o["role"] != role:
        kind = {ROLE_SOURCE: "source", ROLE_SINK: "sink"}
        raise ProtocolError(f"opened as a {kind.get(o['role'], o['role'])}, this program is a {kind[role]}")
    try:
        o["config"] = json.loads(config) if config else {}
    except ValueError as e:
        raise ProtocolError(f"OPEN frame: config is not JSON: {e}") from None
    ctx = Context(o)
    _mf._ready(conn, o["max_frame_size"], ctx, init)
    return ctx


def _error(conn, ctx, req, what):
    ctx.log.error("%s failed:\n%s", what, traceback.format_exc().rstrip())
    e = sys.exc_info()[1]
    parts = [_U64.pack(req)]
    _mf._put_bytes(parts, _mf._raw(f"{type(e).__name__}: {e}"))
    conn.write(ERROR, parts, "ERROR")


def _answer(conn, ctx, req, what, call, records=()):
    # Runs call and answers request req: the RECORD frames in records (their
    # parts, which call may fill) and OK, or ERROR when call raises: the
    # user's code failed this call only. A protocol error or a closed pipe
    # ends the process instead.
    try:
        call()
    except (ProtocolError, BrokenPipeError):
        raise
    except Exception:
        _error(conn, ctx, req, what)
        return True
    for parts in records:
        conn.write(RECORD, parts, "RECORD")
    conn.write(OK, [_U64.pack(req)], "OK")
    return True


def _read_records(ctx, read, req, limit, idle):
    while True:
        recs = list(read(ctx, limit) or [])
        if recs:
            break
        time.sleep(idle)
    if len(recs) > limit:
        raise ValueError(f"read returned {len(recs)} records, more than the {limit} asked for")
    frames = []
    for r in recs:
        if not isinstance(r, Record):
            r = Record(value=r)
        parts = [_U64.pack(req)]
        _mf._put_bytes(parts, _mf._raw(r.key or ""))
        _mf._put_bytes(parts, _mf._raw(r.value))
        _mf._put_map(parts, r.properties)
        parts.append(_I64.pack(int(r.event_time or 0)))
        _mf._put_bytes(parts, _mf._raw(r.position or ""))
        frames.append(parts)
    return frames


def _serve_source(conn, ctx, ftype, d, read, commit, idle):
    if ftype == READ:
        req = d.u64("request")
        limit = d.u32("max_records")
        d.end()
        records = []
        return _answer(conn, ctx, req, "read", lambda: records.extend(_read_records(ctx, read, req, limit, idle)), records)
    elif ftype == COMMIT:
        req = d.u64("request")
        position = d.str("position")
        d.end()
        return _answer(conn, ctx, req, "commit", lambda: commit is not None and commit(ctx, position))
    else:
        raise ProtocolError(f"a source got frame type 0x{ftype:02x}")


_unpack_u64 = _U64.unpack_from
_unpack_write_tail = struct.Struct(">qI").unpack_from


def _decode_write(b):
    # The hot path, as meshfed_function decodes MESSAGE: one pass without
    # bounds checks, one check that the fields ended at the end; on any
    # doubt the checked decoder says what is wrong.
    try:
        # After the type byte and the request.
        topic, key, value, props, count, pos = _mf._unchecked_key_value(b, 9)
        event_time, n = _unpack_write_tail(b, pos)
        stream = b[pos + 12 : pos + 12 + n]
        pos += 12 + n
        (seq,) = _unpack_u64(b, pos)
        pos += 8
    except struct.error:
        return _decode_write_checked(b)
    if pos != len(b) or len(props) != count:
        return _decode_write_checked(b)
    return SinkRecord(_mf._text(topic), _mf._text(key), bytes(value), props, event_time, _mf._text(stream), seq)


def _decode_write_checked(body):
    d = _mf._Body(body, "WRITE")
    d.u64("request")
    r = SinkRecord(d.str("topic"), d.str("key"), d.bytes("value"), d.map("properties"),
                   d.i64("event_time"), d.str("stream"), d.u64("sequence"))
    d.end()
    return r


def _serve_sink(conn, ctx, ftype, d, write, state):
    if ftype == WRITE:
        r = _decode_write(d.b)
        state["batch"].append(r)
        return False
    elif ftype == FLUSH:
        req = d.u64("request")
        count = d.u32("count")
        d.end()
        batch, state["batch"] = state["batch"], []
        if count != len(batch):
            raise ProtocolError(f"FLUSH says {count} records, {len(batch)} arrived")
        return _answer(conn, ctx, req, "write", lambda: write(ctx, batch))
    else:
        raise ProtocolError(f"a sink got frame type 0x{ftype:02x}")

"""A sink that appends each record's value as one line to `path` (config)
and fsyncs before answering. With effectively_once it skips records whose
sequence is at or below the last one written for their stream, kept in
`path`.offsets, so redelivery after a crash adds no duplicate line."""

import json
import os

import meshfed_connector as mc

offsets = {}


def init(ctx):
    if "path" not in ctx.config:
        raise ValueError("config.path is required")
    try:
        with open(ctx.config["path"] + ".offsets") as f:
            offsets.update(json.load(f))
    except FileNotFoundError:
        pass


def write(ctx, records):
    path = ctx.config["path"]
    with open(path, "ab") as f:
        for r in records:
            if ctx.effectively_once and r.sequence <= offsets.get(r.stream, -1):
                continue
            f.write(r.value.rstrip(b"\n") + b"\n")
            offsets[r.stream] = r.sequence
        f.flush()
        os.fsync(f.fileno())
    if ctx.effectively_once:
        # A crash between the two fsyncs can repeat one batch: the offsets
        # file is the documented window (a real sink writes both at once).
        tmp = path + ".offsets.tmp"
        with open(tmp, "w") as f:
            json.dump(offsets, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path + ".offsets")


if __name__ == "__main__":
    mc.run_sink(write, init=init)

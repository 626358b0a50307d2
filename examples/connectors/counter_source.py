"""A source that emits a counter: "1", "2", ... keyed "counter", one
record every `every` seconds (config, default 0.01), at most `batch` per
read. The position is the counter; commit saves it to `state_file`
(config) so that a restart resumes after the last committed value."""

import os
import time

import meshfed_connector as mc

state = {"next": 1, "last": 0.0}


def init(ctx):
    path = ctx.config.get("state_file")
    if path and os.path.exists(path):
        with open(path) as f:
            state["next"] = int(f.read().strip() or 0) + 1
    ctx.log.info("counter starts at %d", state["next"])


def read(ctx, max_records):
    every = float(ctx.config.get("every", 0.01))
    n = min(max_records, int(ctx.config.get("batch", 10)))
    out = []
    for _ in range(n):
        wait = state["last"] + every - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        state["last"] = time.monotonic()
        v = state["next"]
        state["next"] += 1
        out.append(mc.Record(value=str(v), key="counter", properties={"source": ctx.name},
                             event_time=int(time.time() * 1000), position=str(v)))
    return out


def commit(ctx, position):
    path = ctx.config.get("state_file")
    if not path:
        return
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(position)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


if __name__ == "__main__":
    mc.run_source(read, commit, init=init)

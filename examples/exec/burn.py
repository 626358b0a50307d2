#!/usr/bin/env python3
"""burn: echoes each message after spending CPU on it, config burnMillis
(default 3) milliseconds of the process's own CPU time in a busy loop. A
function whose load is CPU, not backlog: used to see autoscaling on CPU at
work (docs/autoscaling.md). The loop counts CPU time, not wall time, so a
process throttled by its CPU limit spends the same CPU per message, only
more slowly.
"""

import os
import sys
import time

try:
    import meshfed_function as mf
except ImportError:  # run from a meshfed checkout: use its SDK
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "sdk", "python"))
    import meshfed_function as mf


def process(ctx, msg):
    burn = float(ctx.config.get("burnMillis", 3)) / 1000.0
    end = time.process_time() + burn
    while time.process_time() < end:
        pass
    return mf.Output(payload=msg.payload, key=msg.key)


if __name__ == "__main__":
    mf.run(process)

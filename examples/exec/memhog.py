#!/usr/bin/env python3
"""memhog: echoes each message, except "grow N", which allocates N MiB
(touching every page) before answering. Used to see memory limits at work
(docs/limits.md): under a cgroup the kernel kills the process past its
limit and the instance reports OOMKilled; under rlimits the allocation
fails with MemoryError and only that message fails.
"""

import os
import sys

try:
    import meshfed_function as mf
except ImportError:  # run from a meshfed checkout: use its SDK
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "sdk", "python"))
    import meshfed_function as mf


def process(ctx, msg):
    text = msg.text
    if text.startswith("grow "):
        mib = int(text.split()[1])
        block = bytearray(mib << 20)
        block[::4096] = b"x" * len(block[::4096])
        yield mf.Output(payload="grew %d MiB" % (len(block) >> 20))
        return
    yield mf.Output(payload=text, key=msg.key or "")


if __name__ == "__main__":
    mf.run(process)

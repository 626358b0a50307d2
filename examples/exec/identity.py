#!/usr/bin/env python3
"""identity as an exec function: forwards each message unchanged (key and
properties included). The exec runtime's benchmark runs it."""

import os
import sys

try:
    import meshfed_function as mf
except ImportError:  # run from a meshfed checkout: use its SDK
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "sdk", "python"))
    import meshfed_function as mf


def process(ctx, msg):
    return mf.Output(payload=msg.payload, key=msg.key, properties=msg.properties)


if __name__ == "__main__":
    mf.run(process)

#!/usr/bin/env python3
"""word-count as an exec function: counts each word in the instance's state
and emits "word count", keyed by the word — like meshfed's builtin
`word-count`. The word is the payload (trimmed), or the key when the
payload is empty; a message with neither produces nothing.

The counters live in meshfed's function state (incr_counter), not in this
process: they survive a restart of the process, of the agent, and a move
of the instance to another cluster.
"""

import os
import sys

try:
    import meshfed_function as mf
except ImportError:  # run from a meshfed checkout: use its SDK
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "sdk", "python"))
    import meshfed_function as mf


def process(ctx, msg):
    word = msg.text.strip() or msg.key
    if not word:
        return None
    n = ctx.incr_counter(word, 1)
    return mf.Output(payload=f"{word} {n}", key=word)


if __name__ == "__main__":
    mf.run(process)

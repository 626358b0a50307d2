#!/usr/bin/env python3
"""word-split as an exec function: one output per lower-cased word, keyed
by the word — the same outputs as meshfed's builtin `word-split`.

A word is a run of letters, decimal digits and apostrophes; everything else
separates words. Lower-casing goes character by character and keeps the
first character of each mapping, as Go's strings.ToLower does, so that
"ΟΔΟΣ" gives "οδοσ" (Python's str.lower would end it with "ς") and "İ"
gives "i".
"""

import os
import sys

try:
    import meshfed_function as mf
except ImportError:  # run from a meshfed checkout: use its SDK
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "sdk", "python"))
    import meshfed_function as mf


def _in_word(ch):
    return ch.isalpha() or ch.isdecimal() or ch == "'"


def _lower(word):
    return "".join(ch.lower()[:1] for ch in word)


def words(text):
    """Yields the lower-cased words of text."""
    start = None
    for i, ch in enumerate(text):
        if _in_word(ch):
            if start is None:
                start = i
        elif start is not None:
            yield _lower(text[start:i])
            start = None
    if start is not None:
        yield _lower(text[start:])


def process(ctx, msg):
    for w in words(msg.text):
        yield mf.Output(payload=w, key=w)


if __name__ == "__main__":
    mf.run(process)

"""A JSON body's shape, checked before any parser builds it.

A parser turns a 14 MB list of five million tiny items into gigabytes of objects, and a
deeply nested body into a RecursionError, before the code that reads it can count
anything. `check_shape` counts first: one pass of a regular expression over the bytes
(strings are skipped whole, however long), stopping at the first value over the limits.
"""
from __future__ import annotations

import re

MAX_DEPTH = 32
MAX_VALUES = 100_000  # a batch of 32 items with their parameters is about 600

# A whole string (possessive: one pass, no backtracking), a quote that starts no string
# (the body is not JSON), or a character that opens, closes or separates values.
_TOKENS = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"|"|[\[\]{},]', re.DOTALL)
_OPEN, _CLOSE, _QUOTE = frozenset(b"[{"), frozenset(b"]}"), ord('"')


class BadShape(ValueError):
    pass


def check_shape(body: bytes, max_depth: int = MAX_DEPTH, max_values: int = MAX_VALUES) -> None:
    """BadShape if the body nests deeper than `max_depth` or holds more than `max_values`
    values in its arrays and objects, or has a string that never ends. Other malformed
    JSON is left to the parser, which now has little to build."""
    depth = values = 0
    for token in _TOKENS.finditer(body):
        first = body[token.start()]
        if first == _QUOTE:
            if token.end() - token.start() == 1:
                raise BadShape("The JSON body has a string that never ends.")
        elif first in _OPEN:
            depth, values = depth + 1, values + 1
            if depth > max_depth:
                raise BadShape(f"The JSON body nests deeper than {max_depth} levels.")
        elif first in _CLOSE:
            depth -= 1
        else:
            values += 1
        if values > max_values:
            raise BadShape(f"The JSON body holds more than {max_values:,} values; a request needs far fewer "
                           "(a batch has at most as many items as a visitor may queue jobs).")

"""Limits checked on a JSON body before it is parsed.

Python's json module recurses once per nesting level: 40 KB of "[[[[…" is a RecursionError (a 500)
before any of our checks sees the document. Counting brackets first is linear and cheap; string
literals are skipped, since brackets inside them do not nest.
"""

import re

MAX_JSON_DEPTH = 32
# Ids are stored in BigIntegerFields: anything outside 1..2**63-1 cannot be a BigCommerce id.
MAX_ID = 2**63 - 1

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")


def json_depth_within(body: bytes, max_depth: int = MAX_JSON_DEPTH) -> bool:
    """False when the document nests arrays/objects deeper than max_depth (or has no closing quote)."""
    if isinstance(body, str):
        body = body.encode()
    if body.count(b"[") + body.count(b"{") <= max_depth:
        return True  # fewer opening brackets than the limit (strings' included): no need to scan
    depth = 0
    for match in _BRACKET.finditer(_STRING.sub(b'""', body)):
        if match[0] in (b"[", b"{"):
            depth += 1
            if depth > max_depth:
                return False
        else:
            depth -= 1
    return True


def id_in_range(value) -> bool:
    return isinstance(value, int) and 0 < value <= MAX_ID

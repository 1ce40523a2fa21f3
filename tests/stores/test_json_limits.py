"""stores.json_limits.json_depth_within: the nesting limit checked before a body is parsed."""

import json

from stores.json_limits import MAX_JSON_DEPTH, json_depth_within


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_the_limit_is_inclusive():
    assert json_depth_within(nested(MAX_JSON_DEPTH))
    assert not json_depth_within(nested(MAX_JSON_DEPTH + 1))
    assert not json_depth_within(b'{"a":' * (MAX_JSON_DEPTH + 1) + b"1" + b"}" * (MAX_JSON_DEPTH + 1))


def test_many_shallow_brackets_and_brackets_inside_strings_do_not_count_as_depth():
    wide = json.dumps({"data": [[1], [2], {"a": [3]}] * 40, "note": "[[[[{{{{" * 20}).encode()
    assert wide.count(b"[") + wide.count(b"{") > MAX_JSON_DEPTH  # past the quick count: scanned
    assert json_depth_within(wide)
    assert json_depth_within(b'{"hash": "' + b"[" * 100 + b'"}')


def test_an_ordinary_delivery_is_within():
    body = json.dumps({"scope": "store/customer/updated", "store_id": "1", "producer": "stores/abc",
                       "hash": "h", "created_at": 1, "data": {"type": "customer", "id": 7}}).encode()
    assert json_depth_within(body) and json_depth_within(body.decode())

"""sync/engine/batches.py: a refused batch costs a few requests, never one per record (Ortto's IP ban)."""

import logging

import pytest

from sync.engine.batches import RESOLVE_REQUESTS, send_resolving
from sync.ortto.client import OrttoRequestError

LOG = logging.getLogger("test")
MISSING = {"status": "error", "error": "missing"}


class Ortto:
    """Refuses any batch holding a bad item, with or without one `details` entry per item."""

    def __init__(self, bad, *, details):
        self.bad, self.details, self.calls = set(bad), details, []

    def __call__(self, items):
        self.calls.append(list(items))
        if not self.bad & set(items):
            return [{"status": "created", "person_id": f"{i:024x}"} for i in items]
        details = [{"status": "invalid", "error": "bad"} if i in self.bad else {"status": "valid"} for i in items]
        raise OrttoRequestError("HTTP 400", status=400, details=details if self.details else [])


@pytest.mark.parametrize("details", [True, False])
def test_100_with_3_bad_costs_at_most_10_requests(details):
    ortto = Ortto({10, 40, 80}, details=details)
    results = send_resolving(ortto, list(range(100)), log=LOG, what="merge", missing=MISSING)
    assert len(results) == 100 and len(ortto.calls) <= 1 + RESOLVE_REQUESTS
    failed = {i for i, r in enumerate(results) if r["status"] != "created"}
    assert {10, 40, 80} <= failed
    if details:
        assert failed == {10, 40, 80} and len(ortto.calls) == 2
    else:
        assert len(failed) <= 36, "only the refused parts fail"


def test_a_batch_answered_without_rows_is_filled_in_order():
    results = send_resolving(lambda items: [{"status": "ingested"}], [1, 2, 3], log=LOG, what="activities",
                             missing={"status": "ingested"})
    assert results == [{"status": "ingested"}] * 3


def test_all_rows_named_bad_cost_no_second_request():
    ortto = Ortto({0, 1, 2}, details=True)
    results = send_resolving(ortto, [0, 1, 2], log=LOG, what="merge", missing=MISSING)
    assert [r["status"] for r in results] == ["invalid"] * 3 and len(ortto.calls) == 1

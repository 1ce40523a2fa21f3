"""sync.engine.people.DeferredSends: Ortto calls whose answers only become events, left in flight while a run goes on."""

import threading

import pytest

from sync.engine.context import DeferredSends


class Calls:
    def __init__(self):
        self.release = threading.Event()
        self.finished = []
        self.lock = threading.Lock()

    def send(self, ctx, payload):
        if payload != "quick":
            assert self.release.wait(5)
        if payload == "boom":
            raise RuntimeError("revoked key")
        with self.lock:
            self.finished.append(payload)
        return [payload.upper()]


def events(payload, results):
    return [f"{payload}->{results[0]}"]


def test_answers_become_events_only_when_harvested_and_wait_waits_for_all():
    calls, deferred = Calls(), DeferredSends()
    deferred.submit(None, calls.send, ["a", "b"], events)
    assert deferred.harvest() == []  # nothing answered yet: the run goes on without waiting
    calls.release.set()
    assert deferred.harvest(wait=True) == ["a->A", "b->B"]
    assert deferred.harvest(wait=True) == []


def test_at_most_limit_calls_are_in_flight():
    calls, deferred = Calls(), DeferredSends(limit=2)
    deferred.submit(None, calls.send, ["quick", "quick"], events)
    deferred.submit(None, calls.send, ["quick"], events)  # waits for the oldest before a third
    assert calls.finished and deferred.harvest(wait=True) == ["quick->QUICK"] * 3


def test_a_failing_call_is_raised_after_every_other_call_has_finished():
    calls, deferred = Calls(), DeferredSends()
    deferred.submit(None, calls.send, ["boom", "slow"], events)
    threading.Timer(0.1, calls.release.set).start()
    with pytest.raises(RuntimeError, match="revoked key"):
        deferred.harvest(wait=True)
    assert calls.finished == ["slow"]  # no call outlives the harvest that failed

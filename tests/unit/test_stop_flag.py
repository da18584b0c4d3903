"""A matrix's (or a worker's) stop reaches every run; a run's own stop reaches no other; and
no thread is held per run, so a long-lived worker does not pile them up."""

from __future__ import annotations

import gc
import threading
import time

from harness.run.signals import StopFlag


def test_parent_stop_reaches_children_made_before_and_after() -> None:
    parent = StopFlag()
    before = parent.child()
    assert not before.is_set()
    parent.set()
    assert before.is_set()
    assert parent.child().is_set()  # a cell that starts after Ctrl-C stops at once


def test_child_stop_stays_in_the_child() -> None:
    parent = StopFlag()
    a, b = parent.child(), parent.child()
    a.set()
    assert a.is_set()
    assert not b.is_set()
    assert not parent.is_set()


def test_a_waiting_child_wakes_when_the_parent_stops() -> None:
    parent = StopFlag()
    kid = parent.child()
    woke: list[bool] = []
    waiter = threading.Thread(target=lambda: woke.append(kid.wait(10)))
    waiter.start()
    time.sleep(0.05)
    t = time.monotonic()
    parent.set()
    waiter.join(5)
    assert woke == [True]
    assert time.monotonic() - t < 1


def test_many_runs_hold_no_thread_and_no_reference() -> None:
    parent = StopFlag()
    threads = threading.active_count()
    for _ in range(500):
        parent.child()
    gc.collect()
    assert threading.active_count() == threads
    assert len(parent._children) == 0

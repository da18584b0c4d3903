"""tshark started ahead (harness.analysis.tshark.prewarm): a capture read through a warm
tshark gives exactly what a cold one gives (rows, frame count, a cut capture's error naming the
capture, not the FIFO), a warm tshark that died is replaced by a cold run, and none is left
behind. Real tshark (installed by scripts/setup.sh)."""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.analysis import tshark

DATA = Path(__file__).resolve().parents[1] / "data" / "analyze"
pytestmark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")


@pytest.fixture(autouse=True)
def _no_warm_left() -> Iterator[None]:
    tshark._drop_all()  # what earlier tests of this process left ready
    yield
    tshark._drop_all()
    assert tshark._warm == []


@pytest.mark.parametrize("name", ["evidence.pcap", "evidence.pcapng", "truncated.pcap"])
def test_warm_reads_what_cold_reads(name: str) -> None:
    cold = tshark.read(DATA / name)
    assert tshark.prewarm(1) == 1 and len(tshark._warm) == 1
    fifo = tshark._warm[0].fifo
    warm = tshark.read(DATA / name)
    assert tshark._warm == [] and not fifo.exists() and not fifo.parent.exists()
    assert (warm.rows, warm.frames, warm.truncated) == (cold.rows, cold.frames, cold.truncated)
    assert warm.error == cold.error  # a cut capture: the same words, the capture's own name
    assert cold.rows or cold.error


def test_a_dead_warm_tshark_falls_back_to_a_cold_one() -> None:
    assert tshark.prewarm(2) == 2
    assert tshark.prewarm(2) == 0  # already ready: none more
    os.killpg(tshark._warm[0].proc.pid, signal.SIGKILL)  # tshark and its timeout wrapper
    tshark._warm[0].proc.wait()
    got = tshark.read(DATA / "evidence.pcap")
    assert got.rows == tshark.read(DATA / "evidence.pcap").rows
    assert len(tshark._warm) == 0  # the dead one dropped, the live one used


def test_the_start_up_is_paid_ahead() -> None:
    """What prewarm is for: a read through a tshark that had time to load its dissectors
    takes less than a cold read (which pays the load)."""
    tshark.read(DATA / "evidence.pcap")  # the page cache and tshark's own caches warm
    t0 = time.monotonic()
    tshark.read(DATA / "evidence.pcap")
    cold = time.monotonic() - t0
    tshark.prewarm(1)
    time.sleep(max(1.0, 2 * cold))
    t0 = time.monotonic()
    tshark.read(DATA / "evidence.pcap")
    warm = time.monotonic() - t0
    assert warm < cold, (warm, cold)
    print(f"tshark read: cold {cold:.3f} s, warm {warm:.3f} s")

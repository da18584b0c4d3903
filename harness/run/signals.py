"""SIGTERM behaves like Ctrl-C, and teardown is shielded from both so it always completes."""

from __future__ import annotations

import signal
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from harness.errors import Interrupted
from harness.outcomes import interrupted_exit

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class SignalInterrupt(Interrupted):
    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"received {signal.Signals(signum).name}; tore down what was created")
        self.exit_code = interrupted_exit(signum)


class StopFlag(threading.Event):
    """A stop that passes down to children (a matrix's or a worker's runs) but not up: one
    cell's own failure stops that cell only. The parent sets its children itself, so no thread
    waits per child: a worker serving thousands of cells holds none."""

    def __init__(self) -> None:
        super().__init__()
        self._children: weakref.WeakSet[StopFlag] = weakref.WeakSet()
        self._guard = threading.Lock()

    def child(self) -> StopFlag:
        kid = StopFlag()
        with self._guard:
            self._children.add(kid)
            stopped = self.is_set()
        if stopped:
            kid.set()
        return kid

    def set(self) -> None:
        with self._guard:
            super().set()
            kids = list(self._children)
        for kid in kids:
            kid.set()


def _raise(signum: int, frame: FrameType | None) -> None:
    raise SignalInterrupt(signum)


@contextmanager
def interrupts_raise() -> Iterator[None]:
    """Inside: SIGINT and SIGTERM raise SignalInterrupt in the main thread. Elsewhere (a matrix
    cell in a worker thread) nothing is installed: the main thread owns signals and cancels."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, _raise) for s in _SIGNALS}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextmanager
def shielded(on_signal: Callable[[int], None] | None = None) -> Iterator[list[int]]:
    """Inside: SIGINT and SIGTERM are noted, not acted on, so cleanup is never cut short.

    The caller reads the list afterwards: a signal noted here still ends the run as
    interrupted (exit 128+n), only after the cleanup. `on_signal` hears each one at once, so
    optional work (collecting evidence) can stop early while the cleanup goes on."""
    seen: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield seen
        return

    def note(signum: int, frame: FrameType | None) -> None:
        seen.append(signum)
        if on_signal is not None:
            on_signal(signum)

    old = {s: signal.signal(s, note) for s in _SIGNALS}
    try:
        yield seen
    finally:
        for s, h in old.items():
            signal.signal(s, h)

"""What a person sees on the terminal while long work runs, and the summary at the end.

Three modes: a live view (rich) when stderr is a terminal; one plain line per event when it is
not (CI logs stay readable: no colour, no cursor tricks); nothing with --quiet. Events are the
plain dicts the verbs emit; stdout stays free for results and --json. While a verb that runs
scenarios is served, stdout and stderr are cli._RedactedStream: every line printed here passes
the runs' redactors (redact.Printed), whatever event it came from.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from harness import outcomes

Event = dict[str, Any]


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def where(matrix: Event) -> str:
    """How a matrix runs: `-j N` here, or on the cluster's engines (which have no -j)."""
    if matrix.get("jobs") is not None:
        return f"-j {matrix['jobs']}"
    engines = matrix.get("engines") or []
    todo = f", {matrix['todo']} to run" if "todo" in matrix else ""
    return f"on {len(engines)} engine(s){todo}"


class Quiet:
    def __call__(self, event: Event) -> None:
        return None

    def __enter__(self) -> Quiet:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


class Plain(Quiet):
    """One line per event on stderr."""

    def __init__(self) -> None:
        self.last_phase: dict[str, str] = {}

    def __call__(self, event: Event) -> None:
        line = self.line(event)
        if line is not None:
            cell = event.get("cell") if event.get("event") != "cell" else None
            _err(f"[{cell}] {line.strip()}" if cell else line)

    def line(self, event: Event) -> str | None:
        kind = event.get("event")
        if kind in _LINES:
            return _LINES[kind](event)
        if "image" in event:
            return self._image_line(event)
        return None

    def _image_line(self, event: Event) -> str | None:
        """Phase changes and the builder's step lines; a cold debootstrap says ~700 more."""
        phase, text = event.get("phase", ""), (event.get("line") or "").strip()
        if self.last_phase.get(event["image"]) != phase:
            self.last_phase[event["image"]] = phase
            return f"  image {event['image']}: {phase} {text}".rstrip()
        if text.startswith(("Step ", "I: Retrieving", "I: Base system")):
            return f"  image {event['image']}: {text}"
        return None


def _matrix_line(event: Event) -> str:
    head = f"matrix {event['matrix']}: {event['cells']} cells"
    return f"{head}, {where(event)}  ({event['folder']})"


def _cell_line(event: Event) -> str:
    took = f" in {event['seconds']}s" if "seconds" in event else ""
    return f"cell {event['cell']}: {event['state']}{took}"


def idempotence_line(event: Event) -> str:
    """`idempotence warn: 2 task(s) changed on the second pass: site.yml: add line on proxy`."""
    changed = event.get("changed") or []
    names = ", ".join(f"{c.get('playbook')}: {c.get('task')} on {c.get('host')}" for c in changed)
    return f"  idempotence {event.get('mode')}: {len(changed)} task(s) changed again: {names}"


def _ansible_line(event: Event) -> str | None:
    if event.get("task") and event.get("host"):
        return f"    ansible {event['host']}: {event['task']} {event.get('status', '')}"
    return None


def _published(event: Event) -> str:
    """Where the host reaches a node's published ports: ", 127.0.0.1:49153 -> 80/tcp"."""
    ports = event.get("published") or {}
    return "".join(f", {where} -> {port}" for port, where in ports.items())


# One plain line per event kind (Plain.line); image events have no kind and keep state.
_LINES: dict[str, Callable[[Event], str | None]] = {
    "matrix": _matrix_line,
    "cell": _cell_line,
    "run": lambda e: f"run {e['run']}  ({e['folder']})",
    "started": lambda e: f"  node {e['node']:<16} started",
    "ready": lambda e: f"  node {e['node']:<16} ready in {e['seconds']}s{_published(e)}",
    "not-ready": lambda e: f"  node {e['node']:<16} {e['state']}: {e['reason']}",
    "networks": lambda e: f"  creating {e['count']} network(s)",
    "phase": lambda e: f"- {e['phase']}",
    "side": lambda e: f"== {e['side']}",
    "step": lambda e: f"  [{e['attempt']}] {e['step']}: {e['description']}",
    "step-done": lambda e: f"  [{e['attempt']}] {e['step']}: {e['result']}",
    "attempt": lambda e: f"  attempt {e['attempt']}/{e['of']}: {attempt_state(e)}",
    "ansible": _ansible_line,
    "idempotence": idempotence_line,
    "teardown": lambda e: f"tearing down run {e['run']} ...",
}


def _node_state(event: Event) -> str:
    """A node's cell in the live panel: created, started, ready in N s, or how it failed."""
    kind = str(event["event"])
    if kind == "ready":
        return f"ready {event['seconds']}s{_published(event)}"
    if kind == "not-ready":
        return f"{event['state']}: {event['reason']}"[:100]
    return kind


def attempt_state(event: Event) -> str:
    state = outcomes.attempt_state(event.get("error"), event.get("observed"))
    return state if state == outcomes.ERROR else f"symptom {state}"


class LiveView(Plain):
    """A live panel: phases with timings, nodes coming up, the current attempt's steps, builds."""

    def __init__(self) -> None:
        super().__init__()
        from rich.console import Console
        from rich.live import Live

        self.console = Console(stderr=True)
        self.live = Live(console=self.console, refresh_per_second=8, transient=False)
        self.title = ""
        self.phases: list[list[Any]] = []  # [name, started, seconds or None]
        self.nodes: dict[str, str] = {}
        self.steps: list[str] = []
        self.attempts: list[str] = []
        self.image = ""
        self.cells: dict[str, str] | None = None  # a matrix: cell -> state

    def __enter__(self) -> LiveView:
        self.live.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._close_phase()
        final = self.render_cells(self.cells) if self.cells is not None else self.render()
        self.live.update(final, refresh=True)
        self.live.__exit__(exc_type, exc, tb)

    def _close_phase(self) -> None:
        if self.phases and self.phases[-1][2] is None:
            self.phases[-1][2] = time.monotonic() - self.phases[-1][1]

    def __call__(self, event: Event) -> None:
        if self._matrix_event(event):
            return
        kind = event.get("event")
        if kind == "run":
            self.title = f"run {event['run']}"
            self.nodes, self.steps, self.attempts = {}, [], []
        elif kind == "side":
            self.live.console.print(f"[bold]== {event['side']}[/bold]")
        elif kind == "phase":
            self._close_phase()
            self.phases.append([event["phase"], time.monotonic(), None])
            if event["phase"].startswith("attempt-"):
                self.steps = []
        elif kind in ("created", "started", "ready", "not-ready"):
            self.nodes[event["node"]] = _node_state(event)
        elif kind == "step-done":
            self.steps.append(f"{event['step']}: {event['result']}")
        elif kind == "step":
            self.steps.append(f"{event['step']}: {event['description']} ...")
        elif kind == "attempt":
            self.attempts.append(f"{event['attempt']}/{event['of']} {attempt_state(event)}")
        elif "image" in event:
            text = (event.get("line") or "").strip()
            self.image = f"{event['image']}: {event.get('phase', '')} {text}"[:120]
        elif kind in ("teardown", "idempotence"):  # printed above the panel, as they are
            self.live.console.print(_LINES[str(kind)](event))
        self.live.update(self.render())

    def _matrix_event(self, event: Event) -> bool:
        """A matrix shows its cells' table; True when the event was drawn there (not images)."""
        kind = event.get("event")
        if kind == "matrix":
            self.title = f"matrix {event['matrix']} ({event['cells']} cells, {where(event)})"
            self.cells = {}
        elif kind == "cell" and self.cells is not None:
            took = f" {event['seconds']}s" if "seconds" in event else ""
            self.cells[event["cell"]] = f"{event['state']}{took}"
        if self.cells is not None and "image" not in event:
            self.live.update(self.render_cells(self.cells))
            return True
        return False

    def render_cells(self, cells: dict[str, str]) -> Any:
        from rich.console import Group
        from rich.table import Table

        t = Table.grid(padding=(0, 2))
        t.add_column(style="bold")
        t.add_column()
        colour = {
            outcomes.PASS: "green",
            outcomes.FAIL: "red",
            outcomes.ERROR: "magenta",
            outcomes.SKIP: "dim",
        }
        for label, state in cells.items():
            c = colour.get(state.split()[0], "yellow")
            t.add_row(label, f"[{c}]{state}[/{c}]")
        return Group(f"[bold]{self.title}[/bold]", t)

    def render(self) -> Any:
        from rich.console import Group
        from rich.table import Table

        t = Table.grid(padding=(0, 2))
        t.add_column(style="bold")
        t.add_column()
        now = time.monotonic()
        for name, started, secs in self.phases[-12:]:
            took = secs if secs is not None else now - started
            mark = "[green]done[/green]" if secs is not None else "[yellow]...[/yellow]"
            t.add_row(name, f"{mark} {took:.1f}s")
        parts: list[Any] = [f"[bold]{self.title}[/bold]", t]
        if self.nodes:
            parts.append("nodes: " + ", ".join(f"{n} {s}" for n, s in self.nodes.items()))
        if self.image and not self.nodes:
            parts.append(f"image {self.image}")
        parts += [f"  {s}" for s in self.steps[-6:]]
        if self.attempts:
            parts.append("attempts: " + "; ".join(self.attempts))
        return Group(*parts)


def reporter(quiet: bool = False) -> Quiet:
    if quiet:
        return Quiet()
    if sys.stderr.isatty() and os.environ.get("TERM") != "dumb":
        return LiveView()
    return Plain()


def summary_table(rows: list[tuple[str, str]], title: str) -> None:
    """The end-of-run table: rich on a terminal, plain aligned text otherwise."""
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        t = Table(title=title, show_header=False)
        t.add_column(style="bold")
        t.add_column()
        for k, v in rows:
            t.add_row(k, v)
        Console().print(t)
        return
    width = max((len(k) for k, _ in rows), default=0)
    print(title)
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")


def findings_table(groups: list[tuple[str, list[list[str]]]], header: list[str]) -> None:
    """`lab analyze`'s findings, one table per source (title, rows): rich on a terminal,
    plain aligned text otherwise (no colour in CI logs)."""
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        console = Console()
        for title, rows in groups:
            if not rows:
                console.print(title, highlight=False)
                continue
            t = Table(title=title, title_justify="left")
            for h in header:
                t.add_column(h, overflow="fold")
            for r in rows:
                t.add_row(*r)
            console.print(t)
        return
    for title, rows in groups:
        print(title)
        widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(header)]
        for r in rows:
            cells = [c.ljust(w) for c, w in zip(r[:-1], widths, strict=False)]
            print("  " + "  ".join([*cells, r[-1]]).rstrip())

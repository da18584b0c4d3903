"""`lab watch FILE --on RUN`: a live rerun (`lab reproduce --on`) now, then again on every save
of the scenario or of a file it reads (node files, playbook folders, the customer's evidence, a
fix file), through watchfiles (the OS's file events, not a polling loop of ours).

Folders are watched rather than files, so an editor that saves by writing a new file and renaming
it over the old one is seen too; only the files the scenario reads set a rerun off (re-read after
each rerun: an edit may add a fixture). A rerun that fails on bad input or on the engine prints
its located message and the watch goes on; Ctrl-C between reruns ends it, the lab left up.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError, Interrupted, UsageError
from harness.run.folder import now_iso
from harness.run.provision import OnEvent, _quiet
from harness.scenario.catalog import Catalog, load_catalog
from harness.scenario.load import LoadedScenario, load_scenario
from harness.scenario.schema import PlaybookItem, VerifyRun
from harness.verbs.results import WatchRerun, WatchResult
from harness.verbs.why import decided

DEBOUNCE_MS = 150  # an editor's save is often several writes: one rerun for them
WAKE_MS = 200  # how long the OS's watcher waits for an event before handing back an empty set


def watched(
    loaded: LoadedScenario | None, scenario: Path, root: Path, fix_file: Path | None
) -> tuple[set[Path], set[Path]]:
    """(files, folders) a rerun reads: a change to one of the files, or anything under one of
    the folders, sets a rerun off."""
    files = {scenario.resolve()}
    folders: set[Path] = set()
    if fix_file is not None:
        files.add(fix_file.resolve())
    if loaded is None:  # the file does not load yet: its own save is what matters
        return files, folders
    for node in loaded.topology.nodes:
        files.update(f.source.resolve() for f in node.files)
    raw = loaded.raw
    for item in raw.configure:
        if isinstance(item, PlaybookItem):
            book = (root / item.playbook).resolve()
            files.add(book)
            if book.parent != root.resolve():
                folders.add(book.parent)
    for v in raw.verify:
        if not isinstance(v, VerifyRun):
            suite = (root / (v if isinstance(v, str) else v.suite)).resolve()
            (folders if suite.is_dir() else files).add(suite)
    for ev in raw.evidence:
        files.add((root / (ev if isinstance(ev, str) else ev.file)).resolve())
    return files, folders


def relevant(changed: Iterable[str], files: set[Path], folders: set[Path]) -> list[str]:
    """The changed paths a rerun reads (an editor's swap files and the run folders do not)."""
    out = []
    for c in changed:
        p = Path(c).resolve()
        if p in files or any(f in p.parents for f in folders):
            out.append(str(p))
    return sorted(set(out))


@dataclass
class _Reruns:
    """One `lab reproduce --on` per save, each one line: the verdict and the probe that
    decided, or the located error (bad input, a refused change, the engine): the watch goes on."""

    scenario: Path
    root: Path
    on: str
    params: dict[str, str] | None
    fix: str | None
    fix_file: Path | None
    untrusted: bool
    trust: bool
    on_rerun: Callable[[WatchRerun], None]
    on_event: OnEvent
    result: WatchResult
    loaded: LoadedScenario | None = None

    def one(self, changed: list[str]) -> None:
        from harness.verbs.reproduce import reproduce

        t0 = time.monotonic()
        line = WatchRerun(at=now_iso(), changed=changed)
        try:
            catalog = load_catalog(self.root)  # once per rerun: a lab.yaml may have changed
            self.loaded = _load(
                self.scenario, self.root, self.params, self.fix, self.fix_file, catalog=catalog
            )
            r = reproduce(
                self.scenario,
                root=self.root,
                params=self.params,
                fix=self.fix,
                fix_file=self.fix_file,
                on=self.on,
                untrusted=self.untrusted,
                trust=self.trust,
                on_event=self.on_event,
                catalog=catalog,
            )
            line = line.model_copy(
                update={"verdict": r.verdict, "rate": r.rate, "decided": decided(r)}
            )
            line.folder = r.folder
        except HarnessError as exc:
            line = line.model_copy(update={"error": exc.message, "hint": exc.hint})
        line.seconds = round(time.monotonic() - t0, 2)
        self.result.reruns.append(line)
        self.on_rerun(line)


def watch(
    scenario: Path,
    *,
    root: Path,
    on: str,
    params: dict[str, str] | None = None,
    fix: str | None = None,
    fix_file: Path | None = None,
    untrusted: bool = False,
    trust: bool = False,
    on_rerun: Callable[[WatchRerun], None] = lambda _: None,
    on_event: OnEvent = _quiet,
    stop: threading.Event | None = None,
) -> WatchResult:
    """Rerun now and on every relevant save until Ctrl-C (or `stop`, for tests). Each rerun is
    given to `on_rerun` as it ends; the result lists them all."""
    loaded: LoadedScenario | None = None
    with suppress(UsageError):  # a scenario that does not load yet is watched until it does
        loaded = _load(scenario, root, params, fix, fix_file)
    if loaded is not None:  # a lab that is not there (or not this scenario's) is exit 2 now
        from harness.engine.connection import connect_engine
        from harness.verbs.runs import find_live

        on = find_live(connect_engine(), on, loaded.topology.scenario).run
    result = WatchResult(run=on, ended="done", lab_down=f"lab down {on}")
    runs = _Reruns(
        scenario,
        root,
        on,
        params,
        fix,
        fix_file,
        untrusted,
        trust,
        on_rerun,
        on_event,
        result,
        loaded,
    )
    try:
        first = True  # the rerun it starts with, once the first watcher is up
        while stop is None or not stop.is_set():
            if not _watch_until_changed(runs, scenario, root, fix_file, stop, first=first):
                break  # stop was set
            first = False
    except KeyboardInterrupt:  # between reruns: the normal way to stop watching
        result.ended = "stopped"
    except Interrupted:  # during a rerun: it is recorded as interrupted, the lab stays up
        result.ended = "interrupted"
    return result


def _watch_until_changed(
    runs: _Reruns,
    scenario: Path,
    root: Path,
    fix_file: Path | None,
    stop: threading.Event | None,
    *,
    first: bool = False,
) -> bool:
    """One watcher for as long as the set of watched folders stays the same: saves made while
    a rerun runs are kept by it and set off the next rerun (none is lost between two). With
    `first`, the starting rerun runs once the watcher is up (a save right after its line is
    seen). Returns False when `stop` ended it, True when the watched set changed (an edit
    added a fixture, or the file loads now)."""
    import watchfiles

    files, folders = watched(runs.loaded, scenario, root, fix_file)
    targets = sorted({f.parent for f in files} | folders)
    for changes in watchfiles.watch(
        *[t for t in targets if t.is_dir()],
        stop_event=stop,
        debounce=DEBOUNCE_MS,
        step=50,
        rust_timeout=WAKE_MS,
        yield_on_timeout=True,  # an empty set now and then: the watcher is up (for `first`)
    ):
        hits = relevant((path for _, path in changes), files, folders)
        if first or hits:
            first = False
            runs.one(hits)
            if watched(runs.loaded, scenario, root, fix_file) != (files, folders):
                return True
    return False


def _load(
    scenario: Path,
    root: Path,
    params: dict[str, str] | None,
    fix: str | None,
    fix_file: Path | None,
    *,
    catalog: Catalog | None = None,
) -> LoadedScenario:
    """The scenario as it reads now (what to watch next); UsageError, located, when not."""
    return load_scenario(
        scenario,
        root=root,
        catalog=catalog if catalog is not None else load_catalog(root),
        params=params,
        fix=fix,
        fix_file=fix_file,
    )

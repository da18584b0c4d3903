"""Ticket trackers: hand a bundle and its report to a ticket (DESIGN.md layer 4).

One module per tracker (local.py, redmine.py, jira.py); this package's face is `get_tracker`,
the `Tracker` protocol, `AttachResult` and three errors. Every attach is recorded in the
escalations index (local.py), whatever the tracker, so `lab escalations` lists them all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from harness.errors import InfraError, UsageError


@dataclass
class AttachResult:
    tracker: str
    ticket: str
    attached: list[str] = field(default_factory=list)  # file names newly attached
    already: list[str] = field(default_factory=list)  # same name and content already there
    comment: str | None = None  # id/url of the comment added; None if nothing new to say
    url: str | None = None  # link to the ticket

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Tracker(Protocol):
    name: str

    def attach(self, ticket: str, files: list[Path], comment: str) -> AttachResult: ...


class TrackerAuthError(UsageError):
    """The tracker refused the credentials (401/403), or they are not configured. Exit 2."""


class TrackerNotFound(UsageError):
    """No such ticket or project on the tracker (404). Exit 2."""


class TrackerConfigError(UsageError):
    """trackers.yaml is wrong, or names an environment variable that is not set. Exit 2."""


class TrackerUnavailable(InfraError):
    """The tracker is down, timed out or kept answering 5xx after the retries. Exit 3.

    `attached` lists the files that did reach the ticket before it failed, `not_attached`
    those that did not (so a rerun, which skips what is already there, finishes the job).
    """

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        attached: Iterable[str] = (),
        not_attached: Iterable[str] = (),
    ) -> None:
        super().__init__(message, hint)
        self.attached = list(attached)
        self.not_attached = list(not_attached)


def get_tracker(name: str | None, *, root: Path, config: Path | None = None) -> Tracker:
    """The tracker called `name` in trackers.yaml (at `root`, or `config`); None is "local".

    Secrets are read from the environment variables the file names, here, so a missing one
    fails before anything is sent (TrackerConfigError, exit 2).
    """
    from harness.trackers.config import load_config

    cfg = load_config(root, config)
    entry = cfg.get(name or "local")
    if entry.kind == "local":
        from harness.trackers.local import LocalTracker

        return LocalTracker(name=entry.name, directory=cfg.escalations, root=root)
    if entry.kind == "redmine":
        from harness.trackers.redmine import RedmineTracker

        return RedmineTracker.from_config(entry, index_dir=cfg.escalations)
    from harness.trackers.jira import JiraTracker

    return JiraTracker.from_config(entry, index_dir=cfg.escalations)


__all__ = [
    "AttachResult",
    "Tracker",
    "TrackerAuthError",
    "TrackerConfigError",
    "TrackerNotFound",
    "TrackerUnavailable",
    "get_tracker",
]

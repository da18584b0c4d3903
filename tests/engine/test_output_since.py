"""A node's output "since" a moment is read to the microsecond (an attempt's log probes, a
live rerun's evidence after a reload): the SDK sends a datetime as whole seconds, which let
up to a second of earlier output (the previous attempt's, the old configuration's) count."""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from harness.engine import copyout, execs

pytestmark = pytest.mark.engine


def test_output_since_a_moment_leaves_out_what_came_just_before(docker_client: Any) -> None:
    image = next(
        t
        for i in docker_client.images.list(filters={"label": "labharness.kind=env"})
        for t in i.tags
    )
    c = docker_client.containers.run(
        image,
        ["sh", "-c", "echo one; sleep 0.4; echo two; sleep 30"],
        detach=True,
        labels={"labharness.test": "output-since"},
    )
    try:
        deadline = time.monotonic() + 20
        while b"two" not in c.logs() and time.monotonic() < deadline:
            time.sleep(0.05)
        stamped = c.logs(timestamps=True).decode()
        first = next(line for line in stamped.splitlines() if line.endswith(" one"))
        t_one = datetime.fromisoformat(first.split()[0][:26] + "+00:00")
        since = t_one + timedelta(seconds=0.2)  # between the two lines, often the same second
        assert execs.logs_since(c, since).split() == ["two"]
        chunks = b"".join(copyout.output_chunks(c, since=since)).decode()
        assert chunks.split() == ["two"]
        assert execs.logs_since(c, t_one.astimezone(UTC) - timedelta(seconds=1)).split() == [
            "one",
            "two",
        ]
    finally:
        with contextlib.suppress(Exception):
            c.remove(force=True)

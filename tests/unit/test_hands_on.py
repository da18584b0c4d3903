"""`lab cp`'s path rules (harness/verbs/nodes.py): which side is the node, where a member
lands, and that an entry from the node can never leave the destination folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.verbs.nodes import _endpoint, _InNode, _local_target, _safe_member, copy


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("web:/etc/hosts", _InNode("web", "/etc/hosts")),
        ("web:/", _InNode("web", "/")),
        ("./web:/x", Path("./web:/x")),  # a local path with a colon in it
        ("web:relative", Path("web:relative")),  # node paths are absolute
        ("/tmp/a", Path("/tmp/a")),
        ("C:/x", _InNode("C", "/x")),
    ],
)
def test_endpoint(text: str, want: object) -> None:
    assert _endpoint(text) == want


@pytest.mark.parametrize("name", ["../etc/passwd", "a/../../b", "/etc/passwd", "", "."])
def test_an_entry_that_leaves_the_destination_is_refused(name: str) -> None:
    with pytest.raises(UsageError, match="leaves the destination"):
        _safe_member(name)


def test_entries_keep_their_place() -> None:
    assert _safe_member("nginx/./conf.d//a.conf") == "nginx/conf.d/a.conf"
    dest = Path("/out")
    assert _local_target(dest, "nginx/conf.d/a.conf", into=True) == dest / "nginx/conf.d/a.conf"
    assert _local_target(dest, "nginx/conf.d/a.conf", into=False) == dest / "conf.d/a.conf"
    assert _local_target(dest, "hosts", into=False) == dest
    assert _local_target(dest, "hosts", into=True) == dest / "hosts"


@pytest.mark.parametrize(("a", "b"), [("./x", "./y"), ("web:/a", "db:/b")])
def test_exactly_one_side_is_in_a_node(a: str, b: str) -> None:
    with pytest.raises(UsageError, match="exactly one side in a node"):
        copy("run", a, b)

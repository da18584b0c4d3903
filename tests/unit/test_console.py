"""The plain reporter's lines for matrix events: local (-j N) and cluster (engines, no -j)."""

from __future__ import annotations

from harness.console import where


def test_local_matrix_says_its_jobs() -> None:
    assert where({"jobs": 2}) == "-j 2"


def test_cluster_matrix_says_its_engines_and_what_is_left() -> None:
    event = {"jobs": None, "engines": ["unix:///a.sock", "tcp://b:2376"], "todo": 4}
    assert where(event) == "on 2 engine(s), 4 to run"
    assert where({"engines": ["unix:///a.sock"]}) == "on 1 engine(s)"


def test_a_node_that_did_not_start_has_a_line_and_a_panel_cell() -> None:
    from harness.console import LiveView, Plain

    event = {"event": "not-ready", "node": "proxy", "state": "exited", "reason": "exit code 1"}
    assert Plain().line(event) == "  node proxy            exited: exit code 1"
    view = LiveView()
    with view:
        view({"event": "created", "node": "proxy"})
        view(event)
    assert view.nodes == {"proxy": "exited: exit code 1"}

"""What a changed scenario needs done to a live lab (harness/run/labstate.py): files copied,
nodes replaced, configure again, or refused; and that the record holds no value of the scenario
(issue 17, point 1)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.run import labstate
from harness.scenario.resolved import (
    Attachment,
    FileSpec,
    LabImage,
    NetworkSpec,
    NodeSpec,
    Topology,
)
from harness.scenario.schema import Scenario

SECRET = "s3cret-Value-91"


def _topology(tmp: Path, conf: bytes = b"listen 80;\n", **web: object) -> Topology:
    f = tmp / f"site-{conf.hex()[:32]}.conf"  # its own source: the old one stays as it was
    f.write_bytes(conf)
    node = NodeSpec(
        "web",
        LabImage("nginx", "1.22", "debian-12"),
        (Attachment("lan"),),
        files=(FileSpec("/etc/nginx/site.conf", f),),
        env=(("DB_PASSWORD", SECRET),),
    )
    node = replace(node, **web)  # type: ignore[arg-type]
    client = NodeSpec("client", LabImage("curl", "7.88", "debian-12"), (Attachment("lan"),))
    return Topology("t", (NetworkSpec("lan"),), (node, client))


def _raw(**extra: object) -> Scenario:
    data: dict[str, object] = {
        "scenario": "t",
        "topology": {"networks": {"lan": {}}, "nodes": {"web": {"os": "debian-12"}}},
    }
    data.update(extra)
    return Scenario.model_validate(data)


IMAGES = {"web": "lab-nginx:1", "client": "lab-curl:1"}


def _env(topology: Topology) -> dict[str, dict[str, str]]:
    return {n.name: dict(n.env) for n in topology.nodes}


def _plan(
    old_t: Topology,
    new_t: Topology,
    tmp: Path,
    *,
    old_raw: Scenario | None = None,
    new_raw: Scenario | None = None,
    images: dict[str, str] | None = None,
    live: dict[str, dict[str, str]] | None = None,
    down: tuple[str, ...] = (),
) -> labstate.SyncPlan:
    old = labstate.lab_state(old_t, IMAGES, old_raw or _raw(), tmp)
    new = labstate.lab_state(new_t, images or IMAGES, new_raw or _raw(), tmp)
    env = live if live is not None else _env(old_t)
    return labstate.plan_sync(old, new, new_t, lambda n: env.get(n), down)


def test_unchanged_lab_needs_nothing(tmp_path: Path) -> None:
    t = _topology(tmp_path)
    plan = _plan(t, t, tmp_path)
    assert plan.empty() and not plan.refused


def test_a_changed_file_is_copied_not_replaced(tmp_path: Path) -> None:
    old = _topology(tmp_path)
    new = _topology(tmp_path, b"listen 8080;\n")
    plan = _plan(old, new, tmp_path)
    assert list(plan.copy) == ["web"] and not plan.replace and plan.configure is None
    assert [f.target for f in plan.copy["web"]] == ["/etc/nginx/site.conf"]


def test_a_changed_mode_is_a_changed_file(tmp_path: Path) -> None:
    old = _topology(tmp_path)
    f = old.nodes[0].files[0]
    new = _topology(tmp_path, files=(replace(f, mode=0o600),))
    assert list(_plan(old, new, tmp_path).copy) == ["web"]


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"command": ("nginx", "-g", "daemon off;")}, "settings changed"),
        ({"cap_add": ("NET_ADMIN",)}, "settings changed"),
        ({"networks": (Attachment("lan", "10.9.0.5"),)}, "settings changed"),
        ({"env": (("DB_PASSWORD", "other"),)}, "env DB_PASSWORD changed"),
        ({"env": ()}, "env DB_PASSWORD removed"),
        ({"files": ()}, "no longer in the scenario"),
    ],
)
def test_node_changes_replace_just_that_node(
    tmp_path: Path, change: dict[str, object], why: str
) -> None:
    old = _topology(tmp_path)
    new = _topology(tmp_path, **change)
    plan = _plan(old, new, tmp_path)
    assert list(plan.replace) == ["web"] and why in plan.replace["web"]
    assert SECRET not in plan.replace["web"] and "other" not in plan.replace["web"]


def test_a_new_image_tag_replaces_the_node(tmp_path: Path) -> None:
    t = _topology(tmp_path)
    plan = _plan(t, t, tmp_path, images={**IMAGES, "client": "lab-curl:2"})
    assert list(plan.replace) == ["client"] and "image" in plan.replace["client"]


def test_env_is_compared_with_the_running_container(tmp_path: Path) -> None:
    """Changed by hand inside the lab (or the record is stale): the container says."""
    t = _topology(tmp_path)
    plan = _plan(t, t, tmp_path, live={"web": {"DB_PASSWORD": "edited"}, "client": {}})
    assert list(plan.replace) == ["web"]
    unreadable = _plan(t, t, tmp_path, live={"client": {}})
    assert "cannot be read" in unreadable.replace["web"]


def test_a_stopped_or_dirty_node_is_recreated(tmp_path: Path) -> None:
    t = _topology(tmp_path)
    assert _plan(t, t, tmp_path, down=("client",)).replace == {"client": "it is not running"}
    old = labstate.lab_state(t, IMAGES, _raw(), tmp_path).model_copy(update={"dirty": ["web"]})
    new = labstate.lab_state(t, IMAGES, _raw(), tmp_path)
    plan = labstate.plan_sync(old, new, t, lambda n: _env(t).get(n))
    assert "stopped while changing it" in plan.replace["web"]


@pytest.mark.parametrize(
    ("new_t", "why"),
    [
        (lambda t: replace(t, networks=(*t.networks, NetworkSpec("extra"))), "networks changed"),
        (lambda t: replace(t, networks=(NetworkSpec("lan", "10.7.0.0/24"),)), "networks"),
        (lambda t: replace(t, nodes=t.nodes[:1]), "removed: client"),
        (
            lambda t: replace(
                t, nodes=(*t.nodes, NodeSpec("db", LabImage("postgres", "15", "debian-12"), ()))
            ),
            "added: db",
        ),
    ],
)
def test_what_cannot_change_live_is_refused(tmp_path: Path, new_t: object, why: str) -> None:
    t = _topology(tmp_path)
    changed = new_t(t)  # type: ignore[operator]
    plan = _plan(t, changed, tmp_path)
    assert any(why in r for r in plan.refused), plan.refused
    old = labstate.lab_state(t, IMAGES, _raw(), tmp_path)
    with pytest.raises(UsageError, match="cannot take live") as err:
        labstate.refuse_early(old, changed, _raw(), tmp_path, "RUN")
    assert "lab reproduce FILE" in (err.value.hint or "")


def test_changed_impairments_are_refused(tmp_path: Path) -> None:
    t = _topology(tmp_path)
    lossy = _raw(
        topology={
            "networks": {"lan": {}},
            "nodes": {"web": {"os": "debian-12"}},
            "impairments": [{"node": "web", "loss": "10%"}],
        }
    )
    assert _plan(t, t, tmp_path, new_raw=lossy).refused == ["topology.impairments changed"]


def test_configure_runs_again_when_its_inputs_change(tmp_path: Path) -> None:
    t = _topology(tmp_path)
    books = tmp_path / "books"
    books.mkdir()
    (books / "site.yml").write_text("- hosts: all\n  tasks: []\n")
    (books / "templates").mkdir()
    (books / "templates" / "x.j2").write_text("a\n")
    raw = _raw(configure=[{"playbook": "books/site.yml", "vars": {"p": "TLSv1.2"}}])
    assert _plan(t, t, tmp_path, old_raw=raw, new_raw=raw).configure is None
    other_vars = _raw(configure=[{"playbook": "books/site.yml", "vars": {"p": "TLSv1.3"}}])
    assert _plan(t, t, tmp_path, old_raw=raw, new_raw=other_vars).configure
    old = labstate.lab_state(t, IMAGES, raw, tmp_path)
    (books / "templates" / "x.j2").write_text("b\n")  # a template the playbook reads
    new = labstate.lab_state(t, IMAGES, raw, tmp_path)
    assert labstate.plan_sync(old, new, t, lambda n: _env(t).get(n)).configure


def test_a_recreated_node_is_configured_again(tmp_path: Path) -> None:
    raw = _raw(configure=[{"run": "true", "on": "web"}])
    old = _topology(tmp_path)
    plan = _plan(old, _topology(tmp_path, env=()), tmp_path, old_raw=raw, new_raw=raw)
    assert plan.configure and "recreated" in plan.configure
    bare = _plan(old, _topology(tmp_path, env=()), tmp_path)
    assert bare.configure is None  # nothing to configure


def test_the_record_holds_no_value_of_the_scenario(tmp_path: Path) -> None:
    t = _topology(tmp_path, b"password " + SECRET.encode() + b"\n")
    labstate.lab_state(t, IMAGES, _raw(), tmp_path).write(tmp_path)
    text = (tmp_path / labstate.STATE_FILE).read_text()
    assert SECRET not in text and "DB_PASSWORD" in text  # key names only
    back = labstate.LabState.read(tmp_path)
    assert back == labstate.lab_state(t, IMAGES, _raw(), tmp_path)
    (tmp_path / labstate.STATE_FILE).write_text("{not json")
    assert labstate.LabState.read(tmp_path) is None

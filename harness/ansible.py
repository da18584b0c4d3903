"""Ansible: the one module that runs playbooks against a run's nodes (through ansible-runner).

Layer 4 (DESIGN.md): it imports only the scenario layer and harness.errors; ansible_runner is
imported inside run_playbook so `lab --help` stays fast. Nodes are reached with the
`community.docker.docker_api` connection plugin (the Docker API, no SSH, no docker CLI), from the
`ansible` PyPI package installed beside ansible-core.

What each call leaves on disk, under the caller's private_dir (one per run; calls in it are
sequential):

    private_dir/<ident>/inventory.yml      the inventory this call used
    private_dir/<ident>/extravars.json     the scenario `vars`, as passed with -e
    private_dir/<ident>/env/...           ansible-runner's own input files
    private_dir/<ident>/artifacts/<ident>/ stdout, rc, status, command, job_events/*.json
"""

from __future__ import annotations

import json
import math
import os
import re
import shlex
import shutil
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.errors import InfraError, UsageError
from harness.scenario.ansiblevars import reserved_var
from harness.scenario.resolved import LabImage, Topology

CONNECTION = "community.docker.docker_api"
PYTHON = "/usr/bin/python3"
COLLECTIONS = ("community/docker", "community/library_inventory_filtering_v1")
INSTALL_HINT = "pip install 'ansible>=12,<13' into the harness's venv (it carries community.docker)"

TASK_EVENTS = {
    "runner_on_ok": "ok",
    "runner_on_failed": "failed",
    "runner_on_unreachable": "unreachable",
    "runner_on_skipped": "skipped",
}

OnAnsibleEvent = Callable[[dict[str, Any]], None]


# -- inventory ---------------------------------------------------------------------------------


def group_name(name: str) -> str:
    """Ansible group names must be identifiers: '-' (allowed in lab names) becomes '_'."""
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def lab_group(lab: str) -> str:
    return group_name(lab)


def network_group(network: str) -> str:
    return "net_" + group_name(network)


def node_labs_of(topology: Topology) -> dict[str, str]:
    """node -> lab name, for the nodes built from a lab (not plain images or bare OS nodes)."""
    return {n.name: n.image.lab for n in topology.nodes if isinstance(n.image, LabImage)}


def inventory(
    topology: Topology,
    run_id: str,
    addresses: dict[str, dict[str, str]],
    node_labs: dict[str, str],
    addresses6: dict[str, dict[str, str]] | None = None,
) -> dict[str, Any]:
    """The run's inventory, as a YAML-able dict (Ansible's YAML inventory format).

    One host per node (inventory_hostname = node name) reached in its container
    `lab-<run>-<node>`; a group per lab (the lab name) and per network (`net_<network>`);
    host vars lab_node, lab_run and lab_addresses ({network: ipv4}), and lab_addresses6
    ({network: ipv6}) on a node with an address on an IPv6 network.
    """
    hosts: dict[str, Any] = {}
    children: dict[str, dict[str, Any]] = {}
    for node in topology.nodes:
        nets = [a.network for a in node.networks]
        got = addresses.get(node.name, {})
        hosts[node.name] = {
            "ansible_host": f"lab-{run_id}-{node.name}",
            "ansible_connection": CONNECTION,
            "ansible_python_interpreter": PYTHON,
            "lab_node": node.name,
            "lab_run": run_id,
            "lab_addresses": {n: got[n] for n in nets if got.get(n)},
        }
        got6 = (addresses6 or {}).get(node.name, {})
        if any(got6.get(n) for n in nets):
            hosts[node.name]["lab_addresses6"] = {n: got6[n] for n in nets if got6.get(n)}
        groups = [network_group(n) for n in nets]
        if node.name in node_labs:
            groups.insert(0, lab_group(node_labs[node.name]))
        for g in groups:
            children.setdefault(g, {"hosts": {}})["hosts"][node.name] = None
    inv: dict[str, Any] = {"all": {"hosts": hosts}}
    if children:
        inv["all"]["children"] = dict(sorted(children.items()))
    return inv


def write_inventory(inv: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(inv, sort_keys=False, default_flow_style=False))
    return path


def resolve_hosts(
    topology: Topology, node_labs: dict[str, str], hosts: str | Iterable[str]
) -> list[str] | None:
    """A configure item's `hosts` as node names for --limit; None means every node.

    Each name is, in this order of precedence, 'all', a node name, a lab name (its nodes) or a
    network name (the nodes on it). Unknown names are a UsageError (validation catches them
    first; this is the backstop)."""
    names = [hosts] if isinstance(hosts, str) else list(hosts)
    order = [n.name for n in topology.nodes]
    chosen: set[str] = set()
    for name in names:
        if name == "all":
            return None
        if name in order:
            chosen.add(name)
            continue
        by_lab = {n for n, lab in node_labs.items() if lab == name}
        by_net = {n.name for n in topology.nodes if any(a.network == name for a in n.networks)}
        if not (by_lab or by_net):
            raise UsageError(
                f"configure hosts: {name!r} is neither a node, a lab nor a network of this topology"
            )
        chosen |= by_lab or by_net
    return [n for n in order if n in chosen]


# -- the by-hand command -----------------------------------------------------------------------


def manual_command(
    playbook: Path | str,
    inventory_path: Path | str,
    limit: list[str] | None,
    extra_vars: dict[str, Any],
) -> str:
    """The `ansible-playbook` line a person runs by hand for the same effect (REPRODUCE.md).

    Run it in the harness's venv (its ansible-playbook finds community.docker there), with the
    run's nodes up and DOCKER_HOST pointing at the same engine."""
    argv = ["ansible-playbook", "-i", str(inventory_path)]
    if limit:
        argv += ["-l", ",".join(limit)]
    if extra_vars:
        argv += ["-e", json.dumps(extra_vars, sort_keys=True, separators=(",", ":"))]
    argv.append(str(playbook))
    return shlex.join(argv)


# -- the environment ---------------------------------------------------------------------------


def collections_paths() -> list[str]:
    """Folders holding `ansible_collections/` with community.docker and its dependency.

    ANSIBLE_COLLECTIONS_PATH when the user set it, else where pip put the `ansible` package
    (site-packages of this interpreter). InfraError when the collections are missing."""
    import importlib.util

    configured = os.environ.get("ANSIBLE_COLLECTIONS_PATH") or os.environ.get(
        "ANSIBLE_COLLECTIONS_PATHS"
    )
    roots: list[Path] = []
    if configured:
        for p in configured.split(os.pathsep):
            root = Path(p).expanduser()
            roots.append(root.parent if root.name == "ansible_collections" else root)
    spec = importlib.util.find_spec("ansible_collections")
    if spec is not None and spec.submodule_search_locations:
        roots += [Path(p).parent for p in spec.submodule_search_locations]
    found = [r for r in roots if all((r / "ansible_collections" / c).is_dir() for c in COLLECTIONS)]
    if not found:
        missing = ", ".join(c.replace("/", ".") for c in COLLECTIONS)
        raise InfraError(
            f"Ansible collections {missing} are not installed"
            f" (looked in: {', '.join(map(str, roots)) or 'nowhere'})",
            hint=INSTALL_HINT,
        )
    out: list[str] = []
    for r in found:
        if str(r) not in out:
            out.append(str(r))
    return out


def _bin_dir() -> str:
    """The folder of the ansible-playbook that belongs to this interpreter (the venv's bin)."""
    here = Path(sys.executable).parent
    if (here / "ansible-playbook").exists():
        return str(here)
    found = shutil.which("ansible-playbook")
    if found is None:
        raise InfraError("ansible-playbook is not installed", hint=INSTALL_HINT)
    return str(Path(found).parent)


def runner_env() -> dict[str, str]:
    """Environment for ansible-playbook: the venv's bin first on PATH, the collections found,
    pipelining on (one exec per task), no colour in the saved stdout."""
    path = os.environ.get("PATH", "")
    return {
        "PATH": os.pathsep.join([_bin_dir(), path]) if path else _bin_dir(),
        "ANSIBLE_COLLECTIONS_PATH": os.pathsep.join(collections_paths()),
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_HOST_KEY_CHECKING": "False",
    }


# -- running a playbook ------------------------------------------------------------------------


@dataclass
class PlaybookResult:
    playbook: str
    ident: str
    status: str  # ansible-runner's: successful | failed | timeout | canceled | error
    rc: int | None
    ok: bool
    tasks: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    failed: list[dict[str, Any]] = field(default_factory=list)  # {host, task, msg, kind}
    error: str | None = None  # ansible could not run the playbook at all (syntax, missing file)
    artifacts: str = ""  # the artifacts folder of this call
    inventory_path: str = ""
    limit: list[str] | None = None
    extra_vars: dict[str, Any] = field(default_factory=dict)
    command: str = ""  # manual_command(...) for this call
    duration: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["duration"] = round(self.duration, 3)
        return d

    def summary(self) -> str:
        """One line per failure, for the run's message; '' when ok."""
        if self.ok:
            return ""
        if self.failed:
            return "; ".join(
                f"{f['kind']} on {f['host']} in task {f['task']!r}: {f['msg']}" for f in self.failed
            )
        return self.error or f"ansible-playbook ended {self.status} (rc {self.rc})"


def _fresh_ident(private_dir: Path, ident: str) -> str:
    base = re.sub(r"[^A-Za-z0-9_.-]", "_", ident) or "playbook"
    candidate, n = base, 1
    while (private_dir / candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def _message(res: dict[str, Any]) -> str:
    parts: list[str] = []
    msg = res.get("msg")
    if msg:
        parts.append(str(msg))
    stderr = str(res.get("stderr") or "").strip()
    if stderr and stderr not in parts:
        parts.append(stderr)
    if not parts and res.get("results"):  # a loop: the first failing item's message
        for item in res["results"]:
            if isinstance(item, dict) and item.get("failed"):
                return _message(item)
    return " | ".join(parts)


def task_record(event: dict[str, Any]) -> dict[str, Any] | None:
    """A runner_on_* event as one task result; None for every other event."""
    status = TASK_EVENTS.get(str(event.get("event")))
    if status is None:
        return None
    data = event.get("event_data", {}) or {}
    res = data.get("res", {}) or {}
    if not isinstance(res, dict):
        res = {"msg": str(res)}
    rec: dict[str, Any] = {
        "host": data.get("host"),
        "task": data.get("task"),
        "action": data.get("resolved_action") or data.get("task_action"),
        "status": status,
        "changed": bool(res.get("changed", False)),
        "duration": round(float(data.get("duration") or 0.0), 3),
        "ignored": bool(data.get("ignore_errors")),
    }
    if "rc" in res:
        rec["rc"] = res.get("rc")
    if status in ("failed", "unreachable") or res.get("msg"):
        rec["msg"] = _cap(_message(res))
    if res.get("stderr"):
        rec["stderr"] = _cap(str(res["stderr"]))
    return rec


def _cap(text: str, limit: int = 2000) -> str:
    """Task output kept in the result (the full text stays in the artifacts' job_events)."""
    return text if len(text) <= limit else f"{text[: limit // 2]}\n...\n{text[-limit // 2 :]}"


def _startup_error(events: list[dict[str, Any]], status: str, timeout: float | None) -> str:
    """Why ansible ended without a task failing: its own error text (from its events' stdout;
    this is the one place where text, not structure, is all ansible gives)."""
    if status == "timeout":
        return f"ansible-playbook did not finish within {timeout} s"
    lines: list[str] = []
    for ev in events:
        if ev.get("event") in ("verbose", "error", "warning") and ev.get("stdout"):
            lines.extend(str(ev["stdout"]).splitlines())
    text = "\n".join(line for line in lines if line.strip()).strip()
    errors = [i for i, line in enumerate(lines) if line.lstrip("[").startswith("ERROR")]
    if errors:
        text = "\n".join(lines[errors[0] :]).strip()
    return text[-2000:] or f"ansible-playbook ended {status}"


def refuse_reserved_vars(playbook: Path | str, extra_vars: dict[str, Any]) -> None:
    """Extra vars beat the inventory: one named ansible_connection (or any ansible_*, or a
    magic variable such as hostvars) would send the playbook somewhere other than the nodes,
    the engineer's machine included. `lab validate` refuses them first; this is the backstop
    for whatever reaches a run another way (a bundle, a fix file, a caller of this module)."""
    bad = [(k, w) for k in extra_vars if (w := reserved_var(k)) is not None]
    if bad:
        raise UsageError(
            f"playbook {playbook}: " + "; ".join(w for _, w in bad),
            hint="rename the variable; the harness's inventory says how each node is reached",
        )


def _never() -> bool:
    return False


def run_playbook(
    playbook: Path,
    *,
    inventory: dict[str, Any],
    limit: list[str] | None,
    extra_vars: dict[str, Any],
    private_dir: Path,
    ident: str,
    on_event: OnAnsibleEvent | None = None,
    timeout: float | None = None,
    cancel: Callable[[], bool] | None = None,
) -> PlaybookResult:
    """Run one playbook against the inventory's nodes and say what each task did.

    `cancel`: asked while the playbook runs; True stops it (status "canceled"). Always passed
    to ansible-runner, which otherwise installs its own SIGINT/SIGTERM handlers for good and
    the harness would never see a later Ctrl-C.

    Returns ok False (never raises) when a task fails, a host is unreachable, the playbook is
    missing or does not parse, or the timeout passes: the caller decides what that means for
    the run. Raises InfraError only when this machine cannot run Ansible at all (ansible-runner,
    ansible-playbook or the community.docker collection missing), and UsageError, before
    anything runs, when extra_vars set an ansible_* or magic variable (refuse_reserved_vars)."""
    refuse_reserved_vars(playbook, extra_vars)
    t0 = time.monotonic()
    env = runner_env()  # InfraError first, before anything is written
    try:
        import ansible_runner
    except ImportError:
        raise InfraError("ansible-runner is not installed", hint=INSTALL_HINT) from None

    playbook = playbook.resolve()
    job_dir, result = _new_job(
        playbook,
        inventory=inventory,
        limit=limit,
        extra_vars=extra_vars,
        private_dir=private_dir,
        ident=ident,
    )
    why_not = _cannot_run(playbook, limit)
    if why_not is not None:
        result.error = why_not
    else:
        tasks = _Tasks(on_event)
        runner = ansible_runner.run(
            private_data_dir=str(job_dir),
            project_dir=str(playbook.parent),
            playbook=str(playbook),
            inventory=result.inventory_path,
            limit=",".join(limit) if limit else None,
            extravars=extra_vars or None,
            envvars=env,
            ident=result.ident,
            quiet=True,
            event_handler=tasks,
            timeout=max(1, math.ceil(timeout)) if timeout else None,
            cancel_callback=cancel or _never,
            # how often ansible-runner looks at `cancel` when the playbook prints nothing (5 s
            # by default): a Ctrl-C is honoured within this
            settings={"pexpect_timeout": 0.25},
        )
        _read_runner(result, runner, tasks.seen, timeout)
    result.duration = time.monotonic() - t0
    return result


def _cannot_run(playbook: Path, limit: list[str] | None) -> str | None:
    """Why there is nothing to hand to ansible-runner (a result's error), or None."""
    if not playbook.is_file():
        return f"playbook {playbook} does not exist"
    if limit is not None and not limit:
        return "no host to run the playbook on (empty limit)"
    return None


class _Tasks:
    """ansible-runner's event handler: each task's record, passed on to on_event as it ends."""

    def __init__(self, on_event: OnAnsibleEvent | None) -> None:
        self.on_event = on_event
        self.seen: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any]) -> bool:
        rec = task_record(event)
        if rec is not None:
            self.seen.append(rec)
            if self.on_event is not None:
                self.on_event({"event": "task", **rec})
        return True  # keep the event on disk too (job_events/)


def _new_job(
    playbook: Path,
    *,
    inventory: dict[str, Any],
    limit: list[str] | None,
    extra_vars: dict[str, Any],
    private_dir: Path,
    ident: str,
) -> tuple[Path, PlaybookResult]:
    """A fresh job folder (its inventory and extra vars written) and a failed result for it,
    which says already how to run the same playbook by hand."""
    private_dir = private_dir.resolve()
    private_dir.mkdir(parents=True, exist_ok=True)
    ident = _fresh_ident(private_dir, ident)
    job_dir = private_dir / ident
    job_dir.mkdir()
    inv_path = write_inventory(inventory, job_dir / "inventory.yml")
    (job_dir / "extravars.json").write_text(json.dumps(extra_vars, indent=2, sort_keys=True))
    return job_dir, PlaybookResult(
        playbook=str(playbook),
        ident=ident,
        status="failed",
        rc=None,
        ok=False,
        artifacts=str(job_dir / "artifacts" / ident),
        inventory_path=str(inv_path),
        limit=limit,
        extra_vars=extra_vars,
        command=manual_command(playbook, inv_path, limit, extra_vars),
    )


def _read_runner(
    result: PlaybookResult, runner: Any, tasks: list[dict[str, Any]], timeout: float | None
) -> None:
    """What ansible-runner said, into result: status, rc, stats, each task, which failed, ok."""
    result.status = str(runner.status)
    result.rc = runner.rc
    result.stats = dict(runner.stats or {})
    events: list[dict[str, Any]] = list(runner.events)
    if not tasks:  # the handler saw nothing (it should not happen): read them from disk
        tasks = [r for r in (task_record(e) for e in events) if r is not None]
    result.tasks = tasks
    result.failed = [
        {"host": t["host"], "task": t["task"], "msg": t.get("msg", ""), "kind": t["status"]}
        for t in tasks
        if t["status"] in ("failed", "unreachable") and not t["ignored"]
    ]
    result.ok = result.status == "successful" and result.rc == 0 and not result.failed
    if not result.ok and not result.failed:
        result.error = _startup_error(events, result.status, timeout)

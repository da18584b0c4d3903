"""The labharness pytest plugin (entry point pytest11 `labharness`): test a running topology.

Two ways in, both by option; without one the plugin does nothing (it is loaded in every pytest
run of this environment, so it imports nothing heavy and registers no behaviour of its own):

- `--lab-run RUN_OR_FOLDER`: attach to a live run (its folder, or a run id found under
  $LABHARNESS_REPORTS or ./reports). This is how `verify` runs the scenario's suites.
- `--lab-scenario FILE`: bring the scenario's topology up at session start (`lab up`), and
  down at the end per `--lab-destroy passing|always|never` (passing: down unless a test failed).

Fixtures: `lab` (the topology: nodes, networks, addresses, run folder), `host` (a testinfra Host
over the docker backend, parametrized over the nodes a test is meant for; the test id shows the
node name) and `node` (the harness's view of that same node: lab, version, os, exec()).
See docs/pytest-plugin.md.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from harness.engine.api import Engine

DESTROY = ("passing", "always", "never")
ENV_REPORTS = "LABHARNESS_REPORTS"
_NOT_ACTIVE = (
    "the `{name}` fixture needs a topology: run pytest with --lab-run RUN_OR_FOLDER (a live run, "
    "see `lab ls`) or --lab-scenario FILE (brought up for the session)"
)
# states in which a run's containers are gone for good
_GONE = ("down", "done", "failed", "interrupted", "collected")


# -- the topology as tests see it ------------------------------------------------------------


@dataclass
class Network:
    name: str
    subnet: str | None
    addresses: dict[str, str]  # node -> IPv4 on this network
    addresses6: dict[str, str] = field(default_factory=dict)  # node -> IPv6 (an IPv6 network)


@dataclass
class Node:
    """One node of the topology. `lab`, `version` and `os` are None for image or bare-OS nodes
    (`os` is set for bare-OS nodes)."""

    name: str
    container: str
    addresses: dict[str, str]  # network -> IPv4
    lab: str | None = None
    version: str | None = None
    os: str | None = None
    image: str | None = None
    addresses6: dict[str, str] = field(default_factory=dict)  # network -> IPv6, where any
    owner: Lab | None = field(default=None, repr=False, compare=False)

    def exec(self, command: str | list[str], timeout: float = 60.0) -> Any:
        """Run `sh -c command` in the node (a list is shell-quoted first) through the harness's
        engine. Returns an ExecResult: exit_code, stdout, stderr, duration_s, timed_out."""
        if self.owner is None:
            raise RuntimeError(f"node {self.name} belongs to no lab")
        return self.owner.exec(self.name, command, timeout)

    @property
    def host(self) -> Any:
        """The testinfra Host for this node (docker backend)."""
        if self.owner is None:
            raise RuntimeError(f"node {self.name} belongs to no lab")
        return self.owner.host(self.name)


class Lab:
    """A run's topology: read from its folder (run.json for containers and addresses, the
    journal's `topology` for what each node runs)."""

    def __init__(
        self,
        run: str,
        scenario: str,
        folder: Path,
        *,
        nodes: dict[str, Node],
        networks: dict[str, Network],
        state: str | None = None,
    ) -> None:
        self.run = run
        self.scenario = scenario
        self.folder = folder
        self.nodes = nodes
        self.networks = networks
        self.state = state
        self._hosts: dict[str, Any] = {}
        self._engine: Engine | None = None
        for n in nodes.values():
            n.owner = self

    def __repr__(self) -> str:
        return f"Lab(run={self.run!r}, scenario={self.scenario!r}, nodes={sorted(self.nodes)})"

    @classmethod
    def from_folder(cls, folder: Path) -> Lab:
        import json

        from harness import journal_model

        try:
            state = json.loads((folder / "run.json").read_text())
        except (OSError, ValueError) as exc:
            raise LabError(f"{folder}: no readable run.json ({exc})") from None
        topo = journal_model.load(folder / "journal.json").topology
        what = {n.name: n for n in topo.nodes}
        run = str(state.get("run") or folder.name)
        nodes: dict[str, Node] = {}
        for n in state.get("nodes") or []:
            info = what.get(n["name"])
            nodes[n["name"]] = Node(
                name=n["name"],
                container=n.get("container") or f"lab-{run}-{n['name']}",
                addresses=dict(n.get("addresses") or {}),
                lab=info.lab if info else None,
                version=info.version if info else None,
                os=info.os if info else None,
                image=n.get("image"),
                addresses6=dict(n.get("addresses6") or {}),
            )
        if not nodes:
            raise LabError(
                f"run {run} ({folder}) has no nodes in run.json (state "
                f"{state.get('state', 'unknown')}): it never finished coming up"
            )
        nets: dict[str, Network] = {}
        for net in topo.networks:
            nets[net.name] = Network(net.name, net.subnet, {})
        for node in nodes.values():
            for net_name, ip in node.addresses.items():
                nets.setdefault(net_name, Network(net_name, None, {})).addresses[node.name] = ip
            for net_name, ip in node.addresses6.items():
                nets.setdefault(net_name, Network(net_name, None, {})).addresses6[node.name] = ip
        return cls(
            run=run,
            scenario=str(state.get("scenario") or folder.parent.name),
            folder=folder,
            nodes=nodes,
            networks=nets,
            state=state.get("state"),
        )

    def node(self, name: str) -> Node:
        try:
            return self.nodes[name]
        except KeyError:
            raise LabError(
                f"run {self.run} has no node {name!r} (nodes: {', '.join(sorted(self.nodes))})"
            ) from None

    def nodes_running(self, lab: str) -> list[Node]:
        return [n for n in self.nodes.values() if n.lab == lab]

    def address(self, node: str, network: str | None = None) -> str:
        """A node's IPv4 address (on `network`, or its only/first network)."""
        addrs = self.node(node).addresses
        if network is None:
            return next(iter(addrs.values()))
        try:
            return addrs[network]
        except KeyError:
            raise LabError(f"node {node} is not on network {network!r}") from None

    def address6(self, node: str, network: str | None = None) -> str:
        """A node's IPv6 address (on `network`, or its first network with IPv6)."""
        addrs = self.node(node).addresses6
        if not addrs:
            raise LabError(f"node {node} has no IPv6 address (no network of it has IPv6)")
        if network is None:
            return next(iter(addrs.values()))
        try:
            return addrs[network]
        except KeyError:
            raise LabError(f"node {node} has no IPv6 address on network {network!r}") from None

    def host(self, name: str) -> Any:
        """A testinfra Host for the node, over the docker backend (the docker CLI)."""
        if name not in self._hosts:
            import testinfra

            self._hosts[name] = testinfra.get_host(f"docker://{self.node(name).container}")
        return self._hosts[name]

    def exec(self, name: str, command: str | list[str], timeout: float = 60.0) -> Any:
        node = self.node(name)  # a clear error for an unknown node, before the engine
        if self._engine is None:
            from harness.engine.connection import connect_engine

            self._engine = connect_engine()
        cmd = command if isinstance(command, str) else shlex.join(command)
        return self._engine.exec(self.run, node.name, cmd, timeout)


def same_version(found: str, wanted: str) -> bool:
    """A package version (Debian's `epoch:upstream-revision`) is the lab version `wanted`:
    the same upstream version, or one inside it (`1.22.1-9+deb12u9` is nginx 1.22)."""
    upstream = found.split(":", 1)[-1].rsplit("-", 1)[0] if "-" in found else found
    upstream = upstream.split(":", 1)[-1]
    return upstream == wanted or upstream.startswith(wanted + ".")


class LabError(Exception):
    """A lab the plugin cannot attach to, or a node it does not have."""


def find_run_folder(spec: str, roots: list[Path]) -> Path:
    """A run folder from a path, or from a run id (or unique prefix) under the reports roots."""
    p = Path(spec)
    if (p / "run.json").is_file():
        return p.resolve()
    hits: dict[str, Path] = {}
    for root in roots:
        if not root.is_dir():
            continue
        for run_json in root.glob("*/*/run.json"):
            run_id = run_json.parent.name
            if run_id == spec or run_id.startswith(spec):
                hits.setdefault(run_id, run_json.parent.resolve())
    if spec in hits:
        return hits[spec]
    if len(hits) == 1:
        return next(iter(hits.values()))
    where = ", ".join(str(r) for r in roots)
    if not hits:
        raise LabError(f"--lab-run {spec}: no run folder and no run with that id under {where}")
    raise LabError(f"--lab-run {spec} is ambiguous: {', '.join(sorted(hits))}")


# -- session state ----------------------------------------------------------------------------


@dataclass
class _Context:
    run_spec: str | None = None
    scenario: Path | None = None
    destroy: str = "passing"
    params: dict[str, str] = field(default_factory=dict)
    lab: Lab | None = None
    error: str | None = None  # why the lab could not be had (tests using it fail with this)
    up_run: str | None = None  # a run this session brought up (and owns)
    outcome: str | None = None  # what happened to it at the end, for the summary
    interrupted: bool = False  # Ctrl-C or SIGTERM


_CTX = pytest.StashKey[_Context]()
_LIVE: list[_Context] = []  # pytest_keyboard_interrupt gets no config: the active contexts


def _context(config: pytest.Config) -> _Context | None:
    return config.stash.get(_CTX, None)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("labharness", "labharness: test a running topology")
    group.addoption(
        "--lab-run",
        dest="lab_run",
        metavar="RUN_OR_FOLDER",
        help="attach to a live run: its folder, or its id (or a unique prefix) under "
        "$LABHARNESS_REPORTS or ./reports",
    )
    group.addoption(
        "--lab-scenario",
        dest="lab_scenario",
        metavar="FILE",
        help="bring this scenario's topology up for the session (down at the end, per "
        "--lab-destroy)",
    )
    group.addoption(
        "--lab-destroy",
        dest="lab_destroy",
        default="passing",
        metavar="POLICY",
        help="with --lab-scenario: passing (default: down unless a test failed), always, never",
    )
    group.addoption(
        "--lab-param",
        dest="lab_params",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="with --lab-scenario: a scenario parameter (repeatable)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "lab_node(*names): run this test's `host`/`node` on these nodes only"
    )
    config.addinivalue_line(
        "markers", "lab_lab(*labs): run this test's `host`/`node` on the nodes of these labs"
    )
    run_spec = config.getoption("lab_run", None)
    scenario = config.getoption("lab_scenario", None)
    destroy = config.getoption("lab_destroy", "passing") or "passing"
    raw_params: list[str] = config.getoption("lab_params", None) or []
    if run_spec is None and scenario is None:
        if raw_params or destroy != "passing":
            raise pytest.UsageError("--lab-param and --lab-destroy go with --lab-scenario FILE")
        return  # inert
    if run_spec is not None and scenario is not None:
        raise pytest.UsageError("give --lab-run or --lab-scenario, not both")
    if destroy not in DESTROY:
        raise pytest.UsageError(f"--lab-destroy {destroy!r}: expected one of {', '.join(DESTROY)}")
    if run_spec is not None and (raw_params or destroy != "passing"):
        raise pytest.UsageError(
            "--lab-param and --lab-destroy go with --lab-scenario; an attached run (--lab-run) "
            "is left as it is"
        )
    params: dict[str, str] = {}
    for p in raw_params:
        name, sep, value = p.partition("=")
        if not sep or not name:
            raise pytest.UsageError(f"--lab-param {p!r}: expected NAME=VALUE")
        params[name.strip()] = value
    ctx = _Context(
        run_spec=run_spec,
        scenario=Path(scenario) if scenario else None,
        destroy=destroy,
        params=params,
    )
    if ctx.scenario is not None and not ctx.scenario.is_file():
        raise pytest.UsageError(f"--lab-scenario {scenario}: no such file")
    config.stash[_CTX] = ctx
    _LIVE.append(ctx)
    config.add_cleanup(lambda: _LIVE.remove(ctx))
    # `host` becomes the node's testinfra Host; registered now, after every entry-point plugin
    # (testinfra's `host` included), so this definition is the one tests get.
    config.pluginmanager.register(_LabHostFixture(), "labharness-host")


def _reports_roots(config: pytest.Config) -> list[Path]:
    roots = []
    env = os.environ.get(ENV_REPORTS)
    if env:
        roots.append(Path(env))
    roots += [Path.cwd() / "reports", config.rootpath / "reports"]
    out: list[Path] = []
    for r in roots:
        if r.resolve() not in [o.resolve() for o in out]:
            out.append(r)
    return out


def _attach(config: pytest.Config, ctx: _Context) -> None:
    assert ctx.run_spec is not None
    try:
        folder = find_run_folder(ctx.run_spec, _reports_roots(config))
        lab = Lab.from_folder(folder)
    except LabError as exc:
        raise pytest.UsageError(str(exc)) from None
    if lab.state in _GONE:
        raise pytest.UsageError(
            f"--lab-run {ctx.run_spec}: run {lab.run} is {lab.state}; its nodes are gone "
            "(`lab ls` lists the runs that are up)"
        )
    ctx.lab = lab


def _project_root(scenario: Path, config: pytest.Config) -> Path:
    from harness.errors import UsageError
    from harness.scenario.catalog import find_project_root

    try:
        return find_project_root(scenario.resolve().parent)
    except UsageError:
        return find_project_root(config.rootpath)


def _bring_up(config: pytest.Config, ctx: _Context) -> None:
    from harness import outcomes
    from harness.errors import HarnessError, Interrupted
    from harness.run.folder import RunFolder
    from harness.verbs.up import up

    assert ctx.scenario is not None
    tr = config.pluginmanager.get_plugin("terminalreporter")
    if tr is not None:
        tr.write_line(f"labharness: bringing up {ctx.scenario} ...")
    try:
        root = _project_root(ctx.scenario, config)
        result = up(ctx.scenario, root=root, params=ctx.params or None)
    except HarnessError as exc:
        code = outcomes.failure_exit(exc.exit_code)
        pytest.exit(f"labharness: {exc}", returncode=code)
    except Interrupted as exc:  # up() removed what it had made
        pytest.exit(f"labharness: {exc.message}", returncode=exc.exit_code)
    ctx.up_run = result.run
    _term_as_interrupt()
    folder = Path(result.folder)
    # owned by this session now: a killed pytest leaves a run `lab gc` removes (not state up)
    RunFolder(folder).write(state="running", session="pytest")
    ctx.lab = Lab.from_folder(folder)
    if tr is not None:
        names = ", ".join(sorted(ctx.lab.nodes))
        tr.write_line(f"labharness: run {ctx.up_run} up ({names}); folder {folder}")


def _term_as_interrupt() -> None:
    """SIGTERM ends the session like Ctrl-C: pytest stops, and sessionfinish tears down."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)


def pytest_sessionstart(session: pytest.Session) -> None:
    ctx = _context(session.config)
    if ctx is None or hasattr(session.config, "workerinput"):
        return
    if ctx.run_spec is not None:
        _attach(session.config, ctx)
    elif ctx.scenario is not None:
        _bring_up(session.config, ctx)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    ctx = _context(session.config)
    if ctx is None or ctx.up_run is None or ctx.lab is None:
        return
    from harness.errors import HarnessError
    from harness.run.folder import RunFolder

    failed = session.testsfailed
    # Ctrl-C and SIGTERM tear down (unless never), as everywhere in the harness
    keep = ctx.destroy == "never" or (
        ctx.destroy == "passing" and failed > 0 and not ctx.interrupted
    )
    run = ctx.up_run
    if keep:
        RunFolder(ctx.lab.folder).write(state="up")  # kept on purpose: `lab gc` leaves it
        why = "--lab-destroy never" if ctx.destroy == "never" else f"{failed} failed"
        first = sorted(ctx.lab.nodes)[0]
        ctx.outcome = f"run {run} kept ({why}): lab shell {run} {first}  |  remove: lab down {run}"
        return
    from harness.verbs.runs import down

    try:
        down([run])
        ctx.outcome = f"run {run} removed"
    except HarnessError as exc:
        ctx.outcome = f"run {run}: teardown failed: {exc} (`lab gc` removes what is left)"


def pytest_keyboard_interrupt(excinfo: pytest.ExceptionInfo[BaseException]) -> None:
    # a real Ctrl-C / SIGTERM; pytest's own "N errors during collection" stop is a subclass
    if isinstance(excinfo.value, pytest.Session.Interrupted):
        return
    for ctx in _LIVE:
        ctx.interrupted = True


def pytest_terminal_summary(terminalreporter: Any) -> None:
    ctx = _context(terminalreporter.config)
    if ctx is not None and ctx.outcome:
        terminalreporter.write_line(f"labharness: {ctx.outcome}")


def pytest_report_header(config: pytest.Config) -> str | None:
    ctx = _context(config)
    if ctx is None or ctx.lab is None:
        return None
    lab = ctx.lab
    return f"labharness: run {lab.run} ({lab.scenario}), nodes {', '.join(sorted(lab.nodes))}"


# -- which nodes a test is for ------------------------------------------------------------------


def _lab_of_path(path: Path) -> str | None:
    """labs/<lab>/tests/... -> <lab>."""
    parts = path.parts
    for i in range(len(parts) - 2):
        if parts[i] == "labs" and parts[i + 2] == "tests":
            return parts[i + 1]
    return None


def targets(lab: Lab, path: Path, node_marks: list[str], lab_marks: list[str]) -> list[str]:
    """Node names a test's `host`/`node` runs on: marked nodes and labs, else the nodes running
    the lab whose tests/ folder holds the test, else every node."""
    if node_marks or lab_marks:
        names = list(node_marks)
        names += [n.name for lb in lab_marks for n in lab.nodes_running(lb)]
        return list(dict.fromkeys(names))
    owner = _lab_of_path(path)
    if owner is not None:
        return [n.name for n in lab.nodes_running(owner)]
    return sorted(lab.nodes)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "_lab_target" not in metafunc.fixturenames:
        return
    ctx = _context(metafunc.config)
    if ctx is None or ctx.lab is None:
        return  # the `lab` fixture reports why when the test runs
    node_marks = [str(a) for m in metafunc.definition.iter_markers("lab_node") for a in m.args]
    lab_marks = [str(a) for m in metafunc.definition.iter_markers("lab_lab") for a in m.args]
    names = targets(ctx.lab, Path(str(metafunc.definition.path)), node_marks, lab_marks)
    if names:
        metafunc.parametrize("_lab_target", names, ids=names, indirect=True)
        return
    owner = _lab_of_path(Path(str(metafunc.definition.path)))
    what = ", ".join(lab_marks) if lab_marks else owner
    reason = f"no node of this topology runs lab {what}"
    metafunc.parametrize(
        "_lab_target",
        [pytest.param(None, marks=pytest.mark.skip(reason=reason))],
        ids=["no-node"],
        indirect=True,
    )


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def lab(request: pytest.FixtureRequest) -> Lab:
    """The topology under test: .run, .scenario, .folder, .nodes (name -> Node), .networks,
    .node(name), .host(name) (testinfra), .address(node, network)."""
    ctx = _context(request.config)
    if ctx is None:
        pytest.fail(_NOT_ACTIVE.format(name=request.fixturename), pytrace=False)
    if ctx.lab is None:
        pytest.fail(ctx.error or "labharness: the topology is not up", pytrace=False)
    return ctx.lab


@pytest.fixture()
def _lab_target(request: pytest.FixtureRequest, lab: Lab) -> str:
    name = getattr(request, "param", None)
    if name is None:
        pytest.fail("labharness: this test was not parametrized over nodes", pytrace=False)
    try:
        lab.node(str(name))
    except LabError as exc:
        pytest.fail(str(exc), pytrace=False)
    return str(name)


@pytest.fixture()
def node(lab: Lab, _lab_target: str) -> Node:
    """The node this test instance runs on (the same one as `host`)."""
    return lab.node(_lab_target)


class _LabHostFixture:
    """Registered only when a topology is in play; replaces testinfra's `host`."""

    @pytest.fixture()
    def host(self, lab: Lab, _lab_target: str) -> Iterator[Any]:
        """A testinfra Host for the node this test instance runs on (docker backend)."""
        yield lab.host(_lab_target)

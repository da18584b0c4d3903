"""trackers.yaml: which trackers exist, where they are, which environment variables hold their
secrets. A secret written in the file itself is refused; secrets are read from the environment
only when a tracker is asked for, and never written anywhere.

    trackers:
      redmine-lab:
        kind: redmine
        url: http://127.0.0.1:3000
        project: support              # optional: refuse issues of another project
        api_key_env: LABHARNESS_REDMINE_KEY
        status: In Progress           # optional: set on the issue when attaching
        custom_fields: {Customer: acme}   # optional: by name or id
        retries: [0.5, 1, 2, 4]       # optional: waits between attempts (s)
        timeout: 30                   # optional: per request (s)
      jira:
        kind: jira
        url: https://example.atlassian.net
        email_env: LABHARNESS_JIRA_EMAIL   # Cloud: email + API token (basic auth)
        token_env: LABHARNESS_JIRA_TOKEN   # without email_env: a Data Center personal token
      local:
        kind: local
        path: escalations             # default; $LABHARNESS_ESCALATIONS overrides
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from harness.trackers import TrackerConfigError

CONFIG_NAME = "trackers.yaml"
ESCALATIONS_ENV = "LABHARNESS_ESCALATIONS"
KINDS = ("local", "redmine", "jira")

_COMMON = {"kind", "url", "retries", "timeout"}
_KEYS: dict[str, set[str]] = {
    "local": {"kind", "path"},
    "redmine": _COMMON | {"project", "api_key_env", "status", "custom_fields"},
    "jira": _COMMON | {"project", "email_env", "token_env"},
}
_REQUIRED: dict[str, tuple[str, ...]] = {
    "local": (),
    "redmine": ("url", "api_key_env"),
    "jira": ("url", "token_env"),
}
# keys that would hold a credential in the file itself -> the *_env key to use instead
_LITERAL_SECRETS = {
    "api_key": "api_key_env",
    "apikey": "api_key_env",
    "key": "api_key_env",
    "token": "token_env",
    "api_token": "token_env",
    "password": "token_env",
    "passwd": "token_env",
    "secret": "token_env",
    "pat": "token_env",
    "email": "email_env",
    "user": "email_env",
    "username": "email_env",
}
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_SECRET_ROLE = {"api_key_env": "API key", "email_env": "account email", "token_env": "API token"}


@dataclass(frozen=True)
class RetryPolicy:
    """Waits between attempts; len(delays) + 1 attempts in all. Connection errors, timeouts,
    429 and 5xx are retried; anything else is an answer."""

    delays: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)
    timeout: float = 30.0


@dataclass
class TrackerEntry:
    name: str
    kind: str
    source: Path | None
    url: str = ""
    project: str | None = None
    status: str | None = None
    custom_fields: dict[str, str] = field(default_factory=dict)
    path: Path | None = None
    secret_env: dict[str, str] = field(default_factory=dict)  # "api_key_env" -> VARIABLE
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def secret(self, key: str) -> str:
        """The value of the environment variable named by `key` (e.g. "api_key_env")."""
        var = self.secret_env[key]
        value = os.environ.get(var, "")
        if not value.strip():
            where = f" ({self.source})" if self.source else ""
            raise TrackerConfigError(
                f"tracker {self.name}: environment variable {var} is not set; it must hold the "
                f"{self.kind.capitalize()} {_SECRET_ROLE.get(key, 'secret')}{where}",
                hint=f"export {var}=... (the file names the variable; the secret stays out of it)",
            )
        return value.strip()

    def has_secret(self, key: str) -> bool:
        return key in self.secret_env


@dataclass
class TrackersConfig:
    source: Path | None
    escalations: Path
    entries: dict[str, TrackerEntry]

    def get(self, name: str) -> TrackerEntry:
        if name in self.entries:
            return self.entries[name]
        known = sorted(self.entries)
        near = difflib.get_close_matches(name, known, n=1)
        where = str(self.source) if self.source else f"no {CONFIG_NAME}"
        raise TrackerConfigError(
            f"no tracker named {name!r} ({where}); known: {', '.join(known)}",
            hint=f"did you mean {near[0]!r}?"
            if near
            else f"add it under trackers: in {CONFIG_NAME}",
        )


def escalations_dir(root: Path, config: Path | None = None) -> Path:
    """Where local escalations and the index live: $LABHARNESS_ESCALATIONS, else the local
    tracker's `path` in trackers.yaml, else escalations/ under the project."""
    return load_config(root, config).escalations


def load_config(root: Path, config: Path | None = None) -> TrackersConfig:
    path = config if config is not None else root / CONFIG_NAME
    data: Any = {}
    source: Path | None = None
    if config is not None or path.is_file():
        source = path
        data = _read_yaml(path)
    if data is None:
        data = {}
    if not isinstance(data, dict) or not isinstance(data.get("trackers", {}) or {}, dict):
        raise TrackerConfigError(f"{path}: expected a mapping `trackers: {{name: {{kind: ...}}}}`")
    unknown_top = sorted(set(data) - {"trackers"})
    if unknown_top:
        raise TrackerConfigError(
            f"{path}: unknown top-level key {unknown_top[0]!r}; expected trackers"
        )
    raw: dict[str, Any] = dict(data.get("trackers") or {})
    entries: dict[str, TrackerEntry] = {}
    for name, body in raw.items():
        entries[str(name)] = _entry(str(name), body, source, root)
    if "local" not in entries:
        entries["local"] = TrackerEntry(name="local", kind="local", source=source)
    elif entries["local"].kind != "local":
        raise TrackerConfigError(f"{source}: trackers.local is reserved for kind: local")
    escalations = _escalations(root, entries["local"])
    return TrackersConfig(source=source, escalations=escalations, entries=entries)


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TrackerConfigError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        at = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        raise TrackerConfigError(f"{path}{at}: not valid YAML ({exc.problem})") from None
    except yaml.YAMLError:
        raise TrackerConfigError(f"{path}: not valid YAML") from None


def _escalations(root: Path, local: TrackerEntry) -> Path:
    env = os.environ.get(ESCALATIONS_ENV, "").strip()
    if env:
        p = Path(env).expanduser()
        return p if p.is_absolute() else (Path.cwd() / p)
    if local.path is not None:
        return local.path if local.path.is_absolute() else root / local.path
    return root / "escalations"


def _entry(name: str, body: Any, source: Path | None, root: Path) -> TrackerEntry:
    at = f"{source}: trackers.{name}"
    if not isinstance(body, dict):
        raise TrackerConfigError(f"{at}: expected a mapping with kind: {' | '.join(KINDS)}")
    kind = _kind(at, body)
    _check_keys(at, name, kind, body)
    entry = TrackerEntry(name=name, kind=kind, source=source)
    entry.secret_env = _secret_envs(at, name, body)
    if "url" in body:
        entry.url = _url(at, body["url"])
    if body.get("project") is not None:
        entry.project = str(body["project"])
    if body.get("status") is not None:
        entry.status = str(body["status"])
    if body.get("custom_fields") is not None:
        cf = body["custom_fields"]
        if not isinstance(cf, dict):
            raise TrackerConfigError(f"{at}.custom_fields: expected a mapping name-or-id: value")
        entry.custom_fields = {str(k): "" if v is None else str(v) for k, v in cf.items()}
    if body.get("path") is not None:
        entry.path = Path(str(body["path"])).expanduser()
    entry.retry = _retry(at, body)
    return entry


def _kind(at: str, body: dict[Any, Any]) -> str:
    kind = body.get("kind")
    if kind not in KINDS:
        near = difflib.get_close_matches(str(kind), KINDS, n=1)
        raise TrackerConfigError(
            f"{at}.kind: expected one of {', '.join(KINDS)}, got {kind!r}",
            hint=f"did you mean {near[0]!r}?" if near else None,
        )
    return str(kind)


def _check_keys(at: str, name: str, kind: str, body: dict[Any, Any]) -> None:
    """Only the kind's keys, never a secret written in the file, and the required ones set."""
    allowed = _KEYS[kind]
    for key in body:
        k = str(key)
        if k in _LITERAL_SECRETS and k not in allowed:
            env_key = _LITERAL_SECRETS[k]
            raise TrackerConfigError(
                f"{at}.{k}: a secret written in {CONFIG_NAME} is refused; put it in an "
                f"environment variable and name that variable with {env_key}",
                hint=f"{env_key}: LABHARNESS_{name.upper().replace('-', '_')}_"
                f"{env_key[:-4].upper()}",
            )
        if k not in allowed:
            near = difflib.get_close_matches(k, sorted(allowed), n=1)
            raise TrackerConfigError(
                f"{at}: unknown key {k!r} for kind {kind}",
                hint=f"did you mean {near[0]!r}?"
                if near
                else f"known: {', '.join(sorted(allowed))}",
            )
    for key in _REQUIRED[kind]:
        if not body.get(key):
            raise TrackerConfigError(f"{at}: {key} is required for kind {kind}")


def _secret_envs(at: str, name: str, body: dict[Any, Any]) -> dict[str, str]:
    """key -> the NAME of the environment variable holding that secret."""
    out: dict[str, str] = {}
    for key in ("api_key_env", "email_env", "token_env"):
        if key in body:
            var = body[key]
            if not isinstance(var, str) or not _ENV_NAME.match(var):
                # never echo the value: it may be the secret itself
                raise TrackerConfigError(
                    f"{at}.{key}: must be the NAME of an environment variable (capitals, digits, "
                    "_), not the secret itself; a secret written in the file is refused",
                    hint=f"{key}: LABHARNESS_{name.upper().replace('-', '_')}_{key[:-4].upper()}",
                )
            out[key] = var
    return out


def _url(at: str, value: Any) -> str:
    if not isinstance(value, str):
        raise TrackerConfigError(f"{at}.url: expected an http(s) URL")
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TrackerConfigError(f"{at}.url: expected an http(s) URL like https://tracker.example")
    if parts.username or parts.password:
        raise TrackerConfigError(
            f"{at}.url: credentials in the URL are refused; name environment variables instead"
        )
    return value.strip().rstrip("/")


def _retry(at: str, body: dict[str, Any]) -> RetryPolicy:
    default = RetryPolicy()
    delays = default.delays
    timeout = default.timeout
    if "retries" in body:
        raw = body["retries"]
        if not isinstance(raw, list) or not all(
            isinstance(x, int | float) and not isinstance(x, bool) and x >= 0 for x in raw
        ):
            raise TrackerConfigError(
                f"{at}.retries: expected a list of waits in seconds, e.g. [0.5, 1, 2, 4]"
            )
        delays = tuple(float(x) for x in raw)
    if "timeout" in body:
        t = body["timeout"]
        if not isinstance(t, int | float) or isinstance(t, bool) or t <= 0:
            raise TrackerConfigError(f"{at}.timeout: expected seconds > 0")
        timeout = float(t)
    return RetryPolicy(delays=delays, timeout=timeout)

"""Secrets never reach disk: every text and file the run writes passes through a Redactor.

What counts as a secret: private key blocks, values of `password=`/`token:`-style assignments,
bearer tokens and URL credentials, values of env vars whose names say secret (PASSWORD, TOKEN,
SECRET, KEY...), and the scenario's own `redact:` regexes. Binary files (pcaps) get the known
secret values masked byte for byte, so their structure stays readable by tshark.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

MASK = "***REDACTED***"
SECRET_NAME = re.compile(
    r"(?i)(pass(word|wd)?|secret|token|api[_-]?key|private[_-]?key|credential)"
)


def _keep() -> Callable[[re.Match[str]], str]:
    """Replacement that keeps what surrounds the secret: key=***, user:***@host."""

    def repl(m: re.Match[str]) -> str:
        d = m.groupdict()
        q = d.get("q") or ""
        return f"{d.get('pre') or ''}{q}{MASK}{q}{d.get('post') or ''}"

    return repl


_KEYWORDS = r"password|passwd|passphrase|pass|pwd|secret|token|api[_-]?key|credential"


# (hint, pattern, replacement): a pattern runs only where its hint occurs, a plain search the
# pattern cannot match without, so most texts (logs, inspect output) skip the costly ones.
class Rule(NamedTuple):
    hint: re.Pattern[str]
    pattern: re.Pattern[str]
    repl: Callable[[re.Match[str]], str]


_PATTERNS: list[Rule] = [
    # PEM private keys, whole block
    Rule(
        re.compile(r"PRIVATE KEY-----"),
        re.compile(
            r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----.*?-----END \1PRIVATE KEY-----", re.DOTALL
        ),
        lambda m: MASK,
    ),
    # key=value / key: value / "key": "value" where the key names a secret
    Rule(
        re.compile(f"(?i){_KEYWORDS}"),
        # starts only where a word starts: from inside a word, `[\w.-]*` made it quadratic
        re.compile(
            rf"""(?i)(?P<pre>(?<![\w.-])["']?[\w.-]*(?:{_KEYWORDS})s?["']?\s*(?:=|:)\s*)"""
            r"""(?P<q>["']?)[^\s"',;&}\\]{1,512}(?P=q)"""
        ),
        _keep(),
    ),
    Rule(
        re.compile(r"(?i)authorization:"),
        re.compile(r"(?i)(?P<pre>authorization:\s*(?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]+"),
        _keep(),
    ),
    Rule(
        re.compile(r"(?i)\bbearer\s"),
        re.compile(r"(?i)(?P<pre>\bbearer\s+)[A-Za-z0-9._~+/=-]{8,}"),
        _keep(),
    ),
    # scheme://user:password@host
    Rule(
        re.compile(r"://[^/\s:@]+:[^@\s/]+@"),
        re.compile(r"(?i)(?P<pre>[a-z][a-z0-9+.-]*://[^/\s:@]+:)[^@\s/]+(?P<post>@)"),
        _keep(),
    ),
]


@dataclass
class Redactor:
    extra: list[re.Pattern[str]] = field(default_factory=list)
    values: set[str] = field(default_factory=set)

    @classmethod
    def build(cls, patterns: Iterable[str] = (), env: Iterable[tuple[str, str]] = ()) -> Redactor:
        values = {v for k, v in env if SECRET_NAME.search(k) and len(v) >= 4}
        return cls([re.compile(p) for p in patterns], values)

    def add_values(self, values: Iterable[str]) -> None:
        self.values.update(v for v in values if len(v) >= 4)

    def text(self, text: str) -> str:
        for v in sorted(self.values, key=len, reverse=True):
            text = text.replace(v, MASK)
        for hint, p, repl in _PATTERNS:
            if hint.search(text):
                text = p.sub(repl, text)
        for p in self.extra:
            text = p.sub(MASK, text)
        return text

    def binary(self, data: bytes) -> bytes:
        """Same-length masking of known values and extra-pattern matches (keeps offsets)."""
        for v in self.values:
            b = v.encode()
            data = data.replace(b, b"*" * len(b))
        for p in self.extra:
            bp = re.compile(p.pattern.encode(), p.flags & ~re.UNICODE)
            data = bp.sub(lambda m: b"*" * len(m.group(0)), data)
        return data

    def bytes_(self, data: bytes) -> bytes:
        """Text files are redacted as text; anything that does not decode, as binary."""
        try:
            return self.text(data.decode("utf-8")).encode("utf-8")
        except UnicodeDecodeError:
            return self.binary(data)

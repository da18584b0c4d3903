"""Secrets never reach disk: every text and file the run writes passes through a Redactor.

Three layers, all RE2 (time linear in the text, whatever the text or the pattern):

- known values, masked wherever they appear, in every form they travel in (secret_values.forms):
  env vars and params that are secrets (secret_values.is_secret_setting), and every secret the
  built-in rules find in the scenario's own files (`files:` contents, learned at build time);
- the built-in rules (secret_rules): detect-secrets' plugins (AWS, GitHub, Slack, Stripe, ...),
  JWTs, private key blocks, key=value assignments, secret-bearing headers, URL credentials and
  quoted high-entropy strings;
- the scenario's `redact:` patterns.

Binary files (pcaps) get the same three layers with a same-length mask (``*`` per byte), so
their structure stays readable by tshark.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import re2  # type: ignore[import-untyped]

from harness.run.secret_rules import FULL_RULES, compile_re2
from harness.run.secret_values import (
    MIN_LEARNED,
    MIN_VALUE,
    SECRET_NAME,
    decoded,
    forms,
    is_secret_setting,
)
from harness.scenario.load import LoadedScenario

MASK = "***REDACTED***"
__all__ = [
    "MASK",
    "SECRET_NAME",
    "Printed",
    "Redactor",
    "for_scenarios",
    "for_settings",
    "printing",
]
LEARN_MAX = 4 * 1024 * 1024  # bytes of input files read to learn their secrets
# `token=$SERVICE_TOKEN`, `password: {{ vault_pw }}`: a reference, not a value to mask everywhere
_REFERENCE = re.compile(r"\$|\{\{|%\(|<%|@@")
_BINARY = re.compile(rb"[^\t\n\r\x20-\x7e]+")  # the bytes of a binary file that are not text
_STARS = re.compile(rb"\*+")
_TO_STAR = bytes(0x2A if b in b"\t\n\r" or 0x20 <= b <= 0x7E else b for b in range(256))
_TO_QUOTE = bytes(b if b in b"\t\n\r" or 0x20 <= b <= 0x7E else 0x22 for b in range(256))
_PCAP_MAGIC = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\x0a\x0d\x0d\x0a")


def compile_patterns(patterns: Iterable[str]) -> list[Any]:
    """The scenario's `redact:` patterns, RE2 (validate has already refused what RE2 can't
    compile, with file and line; this raises re2.error for a caller that skipped validate)."""
    return [compile_re2(p) for p in patterns]


@dataclass
class Redactor:
    extra: list[Any] = field(default_factory=list)  # compiled RE2 `redact:` patterns
    values: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    _literal: Any = field(default=None, repr=False, compare=False)
    _literal_for: int = field(default=-1, repr=False, compare=False)
    _twin: Redactor | None = field(default=None, repr=False, compare=False)  # binary()'s
    _twin_for: int = field(default=-1, repr=False, compare=False)

    @classmethod
    def build(
        cls,
        patterns: Iterable[str] = (),
        env: Iterable[tuple[str, str]] = (),
        texts: Iterable[str] = (),
    ) -> Redactor:
        """patterns: `redact:`; env: (name, value) of env vars and params; texts: the contents
        of the files the scenario puts into nodes, whose secrets are learned."""
        r = cls(compile_patterns(patterns))
        r.add_values(v for k, v in env if is_secret_setting(k, v))
        for text in texts:
            r.learn(text)
        return r

    def add_values(self, values: Iterable[str]) -> None:
        new: set[str] = set()
        for v in values:
            if len(v) >= MIN_VALUE:
                new |= forms(v)
        with self._lock:
            self.values |= new

    def learn(self, text: str) -> list[str]:
        """Add every secret the built-in rules find in text (and a base64 one's decoded text)."""
        found = [
            s
            for s in FULL_RULES.find(text)
            if len(s) >= MIN_LEARNED and MASK not in s and not _REFERENCE.match(s)
        ]
        self.add_values(found)
        self.add_values(d for d in (decoded(s) for s in found) if d is not None)
        # a key block also travels a line at a time (a node's output, streamed to container.log),
        # where no line holds the whole block: each of its body lines is a value too
        self.add_values(
            line
            for s in found
            if "\n" in s
            for line in (ln.strip() for ln in s.splitlines())
            if len(line) >= MIN_LEARNED and not line.startswith("-----")
        )
        return found

    def _literals(self) -> Any:
        with self._lock:
            if self._literal_for != len(self.values):
                ordered = sorted(self.values, key=lambda v: (-len(v), v))
                self._literal = (
                    compile_re2("|".join(re2.escape(v) for v in ordered)) if ordered else None
                )
                self._literal_for = len(self.values)
            return self._literal

    def mask_values(self, text: str, mask: Callable[[str], str]) -> str:
        literal = self._literals()
        return (
            text
            if literal is None or not text
            else str(literal.sub(lambda m: mask(m.group(0)), text))
        )

    def mask_extra(self, text: str, mask: Callable[[str], str]) -> str:
        for p in self.extra:
            text = str(p.sub(lambda m: mask(m.group(0)), text))
        return text

    def _apply(self, text: str, mask: Callable[[str], str]) -> str:
        text = self.mask_values(text, mask)
        text = FULL_RULES.sub(text, lambda s: s if MASK in s else mask(s))
        return self.mask_extra(text, mask)

    def text(self, text: str) -> str:
        return self._apply(text, lambda s: MASK)

    def deep(self, data: Any) -> Any:
        """A copy of a JSON-like structure (an event) with every string redacted."""
        if isinstance(data, str):
            return self.text(data)
        if isinstance(data, dict):
            return {k: self.deep(v) for k, v in data.items()}
        if isinstance(data, list):
            return [self.deep(v) for v in data]
        if type(data) is tuple:
            return tuple(self.deep(v) for v in data)
        return data

    def binary(self, data: bytes) -> bytes:
        """Same-length masking (keeps offsets): the bytes are read as Latin-1, one character per
        byte. Known values (as their UTF-8 bytes) are masked anywhere; the rules and `redact:`
        patterns see binary bytes as `"` and never mask one, so a `token=` value never runs on
        into the binary header of the next packet and the pcap stays readable."""
        with self._lock:
            twin = self._twin
            if twin is None or self._twin_for != len(self.values):
                latin = {v.encode("utf-8").decode("latin-1") for v in self.values}
                twin = self._twin = Redactor(self.extra, latin)
                self._twin_for = len(self.values)

        def stars(secret: str) -> str:
            return "*" * len(secret)

        # binary bytes read as `"`, which ends every rule's value; only masked text is copied
        # back, and a binary byte inside a masked span (a rule that let `"` in) keeps its value
        mapped = data.translate(_TO_QUOTE).decode("latin-1")
        masked = twin.mask_extra(FULL_RULES.sub(mapped, stars), stars).encode("latin-1")
        out = bytearray(data)
        for m in _STARS.finditer(masked):
            a, b = m.span()
            seg = data[a:b]
            out[a:b] = m.group(0) if not _BINARY.search(seg) else seg.translate(_TO_STAR)
        return twin.mask_values(bytes(out).decode("latin-1"), stars).encode("latin-1")

    def bytes_(self, data: bytes) -> bytes:
        """Text files are redacted as text; pcaps and anything that does not decode, as binary."""
        if data[:4] in _PCAP_MAGIC:
            return self.binary(data)
        try:
            return self.text(data.decode("utf-8")).encode("utf-8")
        except UnicodeDecodeError:
            return self.binary(data)


def _texts(paths: Iterable[Path]) -> list[str]:
    """Text contents of the given files (and of the files under given directories), up to
    LEARN_MAX bytes in all; binary and unreadable files are skipped."""
    out: list[str] = []
    left = LEARN_MAX
    seen: set[Path] = set()
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for f in files:
            if f in seen or left <= 0:
                continue
            seen.add(f)
            try:
                data = f.read_bytes()[:left]
            except OSError:
                continue
            left -= len(data)
            try:
                out.append(data.decode("utf-8"))
            except UnicodeDecodeError:
                continue
    return out


def for_scenarios(scenarios: Iterable[LoadedScenario]) -> Redactor:
    """The Redactor of a run (or of a bundle, over every variant it carries): each scenario's
    `redact:` patterns, its secret env vars and params, and what the rules find in its own
    file and in the files it puts into nodes."""
    pairs: list[tuple[str, str]] = []
    patterns: list[str] = []
    paths: list[Path] = []
    for sc in scenarios:
        pairs += [(k, v) for n in sc.topology.nodes for k, v in n.env]
        pairs += [(k, str(v)) for k, v in sc.params.items() if v is not None]
        patterns += [p for p in sc.raw.redact if p not in patterns]
        paths += [sc.path] + [f.source for n in sc.topology.nodes for f in n.files]
    r = Redactor.build(patterns, pairs, _texts(paths))
    _note_printed(r)
    return r


def for_settings(pairs: Iterable[tuple[str, str]]) -> Redactor:
    """A Redactor of (name, value) settings that are not a scenario yet (a compose file's env
    and variables, for `lab import`); it joins what the command prints, like a run's."""
    r = Redactor.build(env=pairs)
    _note_printed(r)
    return r


@dataclass
class _PrintedRedactor(Redactor):
    """Messages are prose: a rule's hit after a secret-naming word that is a plain lowercase
    word (`member 'run/passwd': symbolic link`) or shorter than MIN_VALUE is a word, not a
    secret, and stays. Known values (the runs' env, params and learned file secrets, whatever
    they look like) and `redact:` patterns are masked as everywhere."""

    def _apply(self, text: str, mask: Callable[[str], str]) -> str:
        def rule_hit(s: str) -> str:
            prose = len(s) < MIN_VALUE or (s.isalpha() and s.islower())
            return s if MASK in s or prose else mask(s)

        text = self.mask_values(text, mask)
        text = FULL_RULES.sub(text, rule_hit)
        return self.mask_extra(text, mask)


class Printed:
    """The redactor of what one command prints (stdout and stderr): the built-in rules, plus
    the values and `redact:` patterns of every run redactor built while the command runs (a
    verify-fix's two sides, a matrix's cells, a bundle's variants)."""

    def __init__(self) -> None:
        self._noted: list[Redactor] = []
        self._lock = threading.Lock()
        self._merged: Redactor = _PrintedRedactor()
        self._merged_for: tuple[int, int] = (0, 0)

    def note(self, redactor: Redactor) -> None:
        with self._lock:
            self._noted.append(redactor)

    def _current(self) -> Redactor:
        with self._lock:
            key = (len(self._noted), sum(len(r.values) for r in self._noted))
            if key != self._merged_for:
                extra: list[Any] = []
                for r in self._noted:
                    extra += [p for p in r.extra if all(p is not q for q in extra)]
                values = set().union(*(r.values for r in self._noted))
                self._merged = _PrintedRedactor(extra, values)
                self._merged_for = key
            return self._merged

    def text(self, text: str) -> str:
        return self._current().text(text)

    def deep(self, data: Any) -> Any:
        return self._current().deep(data)


_PRINTING: list[Printed] = []  # the commands being served (one in `lab`; none in a library)


@contextmanager
def printing() -> Iterator[Printed]:
    """While a command runs: every run redactor built (for_scenarios) joins what it prints."""
    p = Printed()
    _PRINTING.append(p)
    try:
        yield p
    finally:
        _PRINTING.remove(p)


def _note_printed(r: Redactor) -> None:
    for p in list(_PRINTING):
        p.note(r)

"""The built-in secret rules: Yelp detect-secrets' plugin regexes plus our own context rules,
compiled with RE2 into one alternation, so a text of any size is scanned in one linear pass.

Why RE2: a backtracking engine can take exponential time on a crafted line (a customer's log
is untrusted input); RE2 guarantees time linear in the text. detect-secrets' own `analyze_line`
runs each plugin's Python regexes line by line (slow, and some of them backtrack), so we take the
plugins' `denylist` regexes, drop the look-arounds RE2 lacks (the rule then matches a little more,
which for redaction is the safe side), and run them all at once.

Each rule says which part of its match is the secret (`group`); the rest (``password=``,
``X-Auth-Token ``, quotes) is kept so the redacted text still reads. The high-entropy rule is a
second pass because it filters its candidates (Shannon entropy) after matching.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import re2  # type: ignore[import-untyped]
from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
from detect_secrets.plugins.base import RegexBasedDetector
from detect_secrets.plugins.keyword import DENYLIST

# detect-secrets plugins left out, and why
_SKIPPED = {
    "IPPublicDetector",  # a public IP is evidence, not a secret
    "JwtTokenDetector",  # ends in a lazy `*?`: matches without the signature; ours below
    "PrivateKeyDetector",  # matches the BEGIN line only; ours masks the whole block
}
# look-arounds RE2 does not support; dropping them only widens a match
_LOOKAROUND = re.compile(r"\(\?<[=!](?:[^()]|\([^()]*\))*\)|\(\?!(?:[^()]|\([^()]*\))*\)")
_LOOKBEHIND_START = "(?:(?<=\\W)|(?<=^))"

# secret-naming words: detect-secrets' keyword list (the name may go on: password_secure) and
# our additions, which must end the name (so `token_type`, `passed` and `bypass` stay)
_DS_KEYWORDS = "|".join(k for k in DENYLIST if k.isascii())
_OUR_KEYWORDS = (
    r"pass|passphrase|token|auth|credentials?|access[_-]?key|secret[_-]?key|session[_-]?key"
    r"|signing[_-]?key|api[_-]?token|bearer"
)
_NAME = rf"[\w.-]*(?:(?:{_DS_KEYWORDS})\w*|(?:{_OUR_KEYWORDS})s?)"
# a value: quoted (anything but the quote), JSON-escaped quoted, or bare
_VALUE = (
    r"""(?:"(?P<s>[^"\\\n]+)"|'(?P<s>[^'\\\n]+)'"""
    r"""|\\"(?P<s>[^"\\\n]+)\\"|(?P<s>[^\s"',;&}\\]+))"""
)


@dataclass(frozen=True)
class Rule:
    """One rule. `group` names the secret: 0 = the whole match minus context punctuation;
    n = the n-th group, or the whole match when that group is shorter than `min_group`."""

    name: str
    pattern: str
    group: int = 0
    min_group: int = 1


def _our_rules() -> list[Rule]:
    pem = r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"
    end = r"-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"
    body = r"[A-Za-z0-9+/=\s:,.\\-]*"  # base64, headers (Proc-Type: 4,ENCRYPTED), \n in JSON
    return [
        # the whole block; a block cut by a chunk boundary (or a packet) up to where its body
        # stops, never across binary bytes
        Rule("private-key", rf"({pem}(?:{body}?{end}|{body}))", 1),
        Rule("jwt", r"(eyJ[A-Za-z0-9_=-]{4,}\.[A-Za-z0-9_=-]{4,}\.?[A-Za-z0-9_.+/=-]*)", 1),
        # key=value, key: value, "key": "value", key = 'value'
        Rule(
            "keyword",
            rf"""(?i)(?:^|[^\w.-])\\?["']?{_NAME}\\?["']?\s*(?:=|:=|=>|:)\s*{_VALUE}""",
            -1,
        ),
        # headers: `X-Auth-Token: v`, nginx `proxy_set_header X-Api-Key v;`, `Cookie: v`
        Rule(
            "header",
            r"""(?i)\b(?:x-[\w-]*(?:token|auth|key|secret|password|session)[\w-]*"""
            r"""|authorization|proxy-authorization|cookie|set-cookie)(?:\s*:\s*|\s+)"""
            r"""["']?(?:(?:bearer|basic|token|digest)\s+)?([^\s"';]{4,})""",
            1,
        ),
        Rule("bearer", r"(?i)\bbearer\s+([A-Za-z0-9._~+/=-]{8,})", 1),
        # `name value` config directives that hold a secret (redis.conf and CONFIG GET *)
        Rule(
            "directive",
            r"""(?im)(?:^|[\n\r])\s*(?:requirepass|masterauth|tls-key-file-pass"""
            r"""|tls-client-key-file-pass)\s+["']?([^\s"']+)""",
            1,
        ),
        # scheme://user:password@host
        Rule("url-credentials", r"""(?i)[a-z][a-z0-9+.-]*://[^/\s:@"]+:([^@\s/"]+)@""", 1),
    ]


def _ds_rules() -> list[Rule]:
    """detect-secrets' regex plugins, as RE2 patterns."""
    rules: list[Rule] = []
    plugins: dict[str, type[Any]] = dict(get_mapping_from_secret_type_to_class())
    for cls in plugins.values():
        if not issubclass(cls, RegexBasedDetector) or cls.__name__ in _SKIPPED:
            continue
        plugin: Any = cls  # abstract to mypy; every registered plugin is concrete
        for rx in plugin().denylist:
            text = rx.pattern.replace(_LOOKBEHIND_START, "")
            text = _LOOKAROUND.sub("", text)
            if rx.flags & re.VERBOSE and re.search(r"\s|#", text):
                continue  # RE2 has no verbose mode; a pattern without spaces needs none
            if rx.flags & re.IGNORECASE:
                text = "(?i)" + text
            try:
                groups = compile_re2(text).groups
            except re2.error:
                continue  # a plugin newer than this code: skipped rather than half-translated
            # the plugin's first group is the secret when it is long (aws secret, basic auth
            # password), else a prefix like `ghp`: then the whole match is the secret
            rules.append(Rule(cls.__name__, text, 1 if groups else 0, 8))
    return rules


def shannon_entropy(text: str) -> float:
    """Bits per character; detect-secrets' measure (4.5 flags base64 strings by default)."""
    if not text:
        return 0.0
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in Counter(text).values())


Replace = Callable[[str], str]


DFA_MEMORY = 64 << 20  # RE2's default 8 MB is too small a DFA cache for ~40 rules at once:
# it falls back to its NFA, still linear but 100 times slower (measured: 2 s vs 0.02 s per MB)


def options(capture: bool = True) -> Any:
    """RE2 options for every redaction pattern: errors are ours to report, not RE2's to log."""
    o = re2.Options()
    o.log_errors = False
    o.max_mem = DFA_MEMORY
    o.never_capture = not capture
    return o


def compile_re2(pattern: str, capture: bool = True) -> Any:
    """Compile for redaction (a bad pattern raises re2.error, quietly)."""
    return re2.compile(pattern, options(capture))


_CONTEXT = " \t\r\n=:\"'"


class _Pass:
    """Rules compiled into one RE2 alternation; `sub` replaces each secret via `repl`."""

    def __init__(self, rules: list[Rule]) -> None:
        self.rules = rules
        # pass 1: one DFA scan without submatches (fast) finds where a rule matches; pass 2
        # tells which rule (an RE2 set) and where its secret is, on that match alone
        self._rx = compile_re2("|".join(f"(?:{r.pattern})" for r in rules), capture=False)
        self._set = re2.Set.FullMatchSet(options())
        self._full: list[tuple[Any, list[int]]] = []
        for rule in rules:
            self._set.Add(rule.pattern)
            body, n = rule.pattern, 0
            while "(?P<s>" in body:  # several alternatives may hold the secret: s_<n>
                body = body.replace("(?P<s>", f"(?P<s_{n}>", 1)
                n += 1
            rx = compile_re2(body)
            named = sorted(v for k, v in rx.groupindex.items() if k.startswith("s_"))
            self._full.append((rx, named or ([rule.group] if rule.group > 0 else [])))
        self._set.Compile()

    def sub(self, text: str, repl: Replace) -> str:
        return _sub_capped(self._rx, text, lambda m: self._one(m, repl), repl)

    def _one(self, m: Any, repl: Replace) -> str:
        whole: str = m.group(0)
        hits = self._set.Match(whole)
        span: tuple[int, int] | None = None
        if hits:
            i = min(hits)  # the alternation's own choice: the first rule that matches here
            rx, groups = self._full[i]
            fm = rx.fullmatch(whole)
            for g in groups if fm is not None else ():
                if fm.group(g) is not None:
                    span = fm.span(g)
                    break
            if span is not None and (span[1] - span[0]) < self.rules[i].min_group:
                span = None
        if span is None:
            a, b = 0, len(whole)
            while a < b and whole[a] in _CONTEXT:
                a += 1
            while b > a and whole[b - 1] in _CONTEXT:
                b -= 1
        else:
            a, b = span
        return whole[:a] + repl(whole[a:b]) + whole[b:]


class RuleSet:
    """Passes of rules, each one RE2 alternation, applied in turn. The keyword rule runs on its
    own: in one automaton with the long-match rules (a JWT, a key block) RE2's DFA runs out of
    states on a crafted text and falls back to its NFA (measured: 10 MB in 2.7 s instead of
    0.8 s); two passes cost 0.03 s more on 10 MB of typical text."""

    def __init__(self, passes: list[list[Rule]], entropy: bool) -> None:
        self.passes = [_Pass(rules) for rules in passes if rules]
        self.entropy = entropy

    def sub(self, text: str, repl: Replace) -> str:
        if not text:
            return text
        text = _end_without_begin(text, repl)
        for one in self.passes:
            text = one.sub(text, repl)
        if self.entropy:
            text = _sub_capped(_ENTROPY, text, lambda m: _entropy_repl(m, repl), repl)
        return text

    def find(self, text: str) -> list[str]:
        """The secret strings in text (what `sub` would replace)."""
        found: list[str] = []

        def keep(secret: str) -> str:
            found.append(secret)
            return secret

        self.sub(text, keep)
        return found


# A flood of matches (a text made of `X-Auth-Token ` repeated) costs the RE2 wrapper some
# microseconds per match in Python: past one match per DENSITY bytes, the rest of the text is
# masked whole. Time stays linear with a small constant; nothing leaks, a flood is not evidence.
DENSITY = 256
FLOOD_MIN = 256


def _sub_capped(rx: Any, text: str, one: Callable[[Any], str], repl: Replace) -> str:
    budget = FLOOD_MIN + len(text) // DENSITY
    parts: list[str] = []
    at = 0
    for m in rx.finditer(text):
        a, b = m.span()
        if budget <= 0:
            parts.append(text[at:a])
            parts.append(repl(text[a:]))
            return "".join(parts)
        budget -= 1
        parts.append(text[at:a])
        parts.append(one(m))
        at = b
    if not parts:
        return text
    parts.append(text[at:])
    return "".join(parts)


# detect-secrets' Base64HighEntropyString: a quoted base64 string above 4.5 bits per char
_ENTROPY = compile_re2(r"""(["'])([A-Za-z0-9+/=_-]{20,})["']""")
ENTROPY_LIMIT = 4.5


# a path, not base64: "/tmp/pytest-of-root/test_x0/reports/web/261201-2322" scores above 4.5
# too, and a run folder's path must stay usable (results carry it)
_PATHLIKE = re.compile(r"^\.{0,2}/|//|(?:^|/)[a-z0-9_-]*[a-z]{3}[a-z0-9_-]*(?:/|$)")


def _entropy_repl(m: Any, repl: Replace) -> str:
    value = m.group(2)
    if shannon_entropy(value) < ENTROPY_LIMIT or ("/" in value and _PATHLIKE.search(value)):
        return str(m.group(0))
    q = m.group(1)
    return f"{q}{repl(value)}{m.group(0)[-1]}"


_END = re.compile(r"-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")


_KEY_LINE = re.compile(r"[A-Za-z0-9+/=]*|[A-Za-z][A-Za-z-]*: .*")  # base64, or Proc-Type: ...


def _end_without_begin(text: str, repl: Replace) -> str:
    """A key block whose BEGIN was in an earlier chunk: mask its END's whole line and every line
    before it that can be key material (base64, PEM headers, blank), back to the first line that
    cannot; the prose before that stays. A text that is one line (escaped JSON) is masked whole
    up to the END."""
    if "PRIVATE KEY" not in text:
        return text
    end = _END.search(text)
    if end is None:
        return text
    begin = text.find("-----BEGIN ")
    if begin != -1 and begin < end.start():
        return text
    start = text.rfind("\n", 0, end.start()) + 1  # the END's line, whole
    while start > 0:
        prev = text.rfind("\n", 0, start - 1) + 1
        if not _KEY_LINE.fullmatch(text[prev : start - 1].strip()):
            break
        start = prev
    return text[:start] + repl(text[start : end.end()]) + text[end.end() :]


_OURS = _our_rules()
FULL_RULES = RuleSet(
    [
        [r for r in _OURS if r.name != "keyword"] + _ds_rules(),
        [r for r in _OURS if r.name == "keyword"],
    ],
    entropy=True,
)
KEY_BLOCKS = RuleSet([[r for r in _OURS if r.name == "private-key"]], entropy=False)

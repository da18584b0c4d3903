"""Which values of a scenario are secrets, and the forms a secret travels in.

A value found once (an env var, a param, a secret in a config file) is masked wherever it shows
up later, with or without context: a step that prints it bare, a pcap that carries it. So each
one is expanded into the forms programs write it in: base64 (standard and URL-safe, padded or
not, at each of the three byte alignments, since it may sit inside a longer base64 string such as
``Basic dXNlcjpzZWNyZXQ=``), URL-encoded and JSON-escaped; a secret that is itself base64 adds its
decoded text.

The rule for an env var or param (documented in docs/security.md, "Secrets"): it is a secret when
its name says so (SECRET_NAME), when a built-in rule flags ``NAME=value``, or when its value looks
random (`looks_random`), which catches ``SERVICE_AUTH=<token>``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from urllib.parse import quote, quote_plus

from harness.run.secret_rules import FULL_RULES, shannon_entropy

SECRET_NAME = re.compile(
    r"(?i)(pass(word|wd|phrase)?|secret|token|api[_-]?key|private[_-]?key|access[_-]?key"
    r"|cred(ential)?|auth(?!or))"
)
MIN_VALUE = 4  # shorter values are masked only in context (password=abc), never bare
MIN_LEARNED = 6  # a secret found in a file, or decoded, is masked bare from this length
MIN_FORM = 8  # an encoded fragment shorter than this would match by chance
_RANDOM_CHARS = re.compile(r"^[A-Za-z0-9+/=_-]+$")  # no '.' or ':': versions, hosts, paths
_WORD = re.compile(r"(?:^|[-_/])[a-z]{4,}(?:$|[-_/])")  # a plain word segment: app-prod-main
_B64 = re.compile(r"^[A-Za-z0-9+/_-]+={0,2}$")


def looks_random(value: str) -> bool:
    """A generated token, not a word, path or version: token alphabet only (no '.', ':', no
    all-lowercase word between '-', '_' or '/'), lower and upper case
    letters and digits mixed, and at least 12 characters with 3.2 bits of entropy per character
    (3.5 for values without all three classes, which must then be 16 long)."""
    if len(value) < 12 or not _RANDOM_CHARS.match(value) or _WORD.search(value):
        return False
    classes = sum(bool(re.search(c, value)) for c in ("[a-z]", "[A-Z]", "[0-9]"))
    if classes == 3:
        return shannon_entropy(value) >= 3.2
    return classes == 2 and len(value) >= 16 and shannon_entropy(value) >= 3.5


def is_secret_setting(name: str, value: str) -> bool:
    """An env var or param whose value must never be written."""
    if len(value) < MIN_VALUE:
        return False
    if SECRET_NAME.search(name) or looks_random(value):
        return True
    return bool(FULL_RULES.find(f"{name}={value}") or FULL_RULES.find(value))


def decoded(value: str) -> str | None:
    """The text a base64 secret stands for, when it decodes to printable UTF-8."""
    if len(value) < MIN_FORM or not _B64.match(value):
        return None
    padded = (value + "=" * (-len(value) % 4)).encode()
    alphabet = b"-_" if re.search("[-_]", value) else b"+/"
    try:
        out = base64.b64decode(padded, altchars=alphabet, validate=True).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    if len(out) >= MIN_LEARNED and out.isprintable():
        return out
    return None


def _base64_forms(raw: bytes) -> set[str]:
    forms: set[str] = set()
    for offset in range(3):
        enc = base64.b64encode(b"\0" * offset + raw).decode()
        whole = {enc, enc.rstrip("=")} if offset == 0 else set()
        skip = 4 if offset else 0
        groups = (len(raw) - ((3 - offset) % 3)) // 3
        stable = enc[skip : skip + 4 * groups]
        for f in {*whole, stable}:
            if len(f) >= MIN_FORM:
                forms.add(f)
                forms.add(f.replace("+", "-").replace("/", "_"))
    return forms


def forms(value: str) -> set[str]:
    """value and the encodings it may be written in."""
    out = {value}
    out |= _base64_forms(value.encode("utf-8"))
    out.add(quote(value, safe=""))
    out.add(quote_plus(value, safe=""))
    out.add(json.dumps(value)[1:-1])
    plain = decoded(value)
    if plain is not None:
        out.add(plain)
    return {f for f in out if f == value or len(f) >= MIN_FORM}

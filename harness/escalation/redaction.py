"""Redaction of the project files a bundle carries, so that they stay replayable.

A run folder is already redacted by the run (harness/run/redact.py); a bundle also carries the
scenario, its fixtures, playbooks and labs, straight from the project, where the customer's
secrets may sit. They go through the same detection as the run's Redactor, with two changes so
that the bundle can still be replayed:

- the replacement is the bare word ``REDACTED`` (``***REDACTED***`` would be a YAML alias and
  break the scenario), so YAML, shell and most config formats still parse;
- references are left alone: ``token=$SERVICE_TOKEN``, ``password: ${params.db_password}``,
  ``{{ vault_password }}``, ``password=env(...)``; the values they point to are redacted where
  they are written (the env, the params).

Labs and environments (the team's own build recipes, whose content is the image's tag) get only
the precise rules: the run's secret values, the scenario's ``redact:`` patterns and private key
blocks; the key=value heuristics would change default credentials in a Dockerfile and with
them the image and the replayed behaviour.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.run.redact import _PATTERNS, Redactor

PROJECT_MASK = "REDACTED"
FULL = "full"  # customer material: scenario, fix overlay, fixtures, playbooks, suites
PRECISE = "precise"  # labs/, environments/, schemas/

_PEM = _PATTERNS[0].pattern
_REFERENCE = re.compile(r"^(?:\$|\{\{|%\(|<%|@@)|\($|REDACTED")


def _value_of(m: re.Match[str]) -> str:
    d = m.groupdict()
    pre, q, post = d.get("pre") or "", d.get("q") or "", d.get("post") or ""
    text = m.group(0)
    return text[len(pre) + len(q) : len(text) - len(q) - len(post)]


def _keep_refs(m: re.Match[str]) -> str:
    value = _value_of(m)
    if _REFERENCE.search(value):
        return m.group(0)
    d = m.groupdict()
    q = d.get("q") or ""
    return f"{d.get('pre') or ''}{q}{PROJECT_MASK}{q}{d.get('post') or ''}"


@dataclass
class ProjectRedactor:
    """The run's Redactor (its known values and `redact:` patterns), applied to project files."""

    base: Redactor

    def text(self, text: str, rules: str = FULL) -> str:
        for v in sorted(self.base.values, key=len, reverse=True):
            text = text.replace(v, PROJECT_MASK)
        text = _PEM.sub(f"{PROJECT_MASK} (private key)", text)
        if rules == FULL:
            for rule in _PATTERNS[1:]:
                if rule.hint.search(text):
                    text = rule.pattern.sub(_keep_refs, text)
        for p in self.base.extra:
            text = p.sub(PROJECT_MASK, text)
        return text

    def bytes_(self, data: bytes, rules: str = FULL) -> bytes:
        try:
            return self.text(data.decode("utf-8"), rules).encode("utf-8")
        except UnicodeDecodeError:
            return self.base.binary(data)

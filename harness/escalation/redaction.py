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

from harness.run.redact import Redactor
from harness.run.secret_rules import FULL_RULES, KEY_BLOCKS

PROJECT_MASK = "REDACTED"
FULL = "full"  # customer material: scenario, fix overlay, fixtures, playbooks, suites
PRECISE = "precise"  # labs/, environments/, schemas/

_REFERENCE = re.compile(r"^(?:\$|\{\{|%\(|<%|@@)|\($|REDACTED")


def _keep_refs(value: str) -> str:
    """A reference to a secret (``$TOKEN``, ``{{ vault_password }}``) is not one."""
    return value if _REFERENCE.search(value) else PROJECT_MASK


@dataclass
class ProjectRedactor:
    """The run's Redactor (its known values and `redact:` patterns), applied to project files."""

    base: Redactor

    def text(self, text: str, rules: str = FULL) -> str:
        text = self.base.mask_values(text, lambda s: PROJECT_MASK)
        text = KEY_BLOCKS.sub(text, lambda s: f"{PROJECT_MASK} (private key)")
        if rules == FULL:
            text = FULL_RULES.sub(text, _keep_refs)
        return self.base.mask_extra(text, lambda s: PROJECT_MASK)

    def bytes_(self, data: bytes, rules: str = FULL) -> bytes:
        try:
            return self.text(data.decode("utf-8"), rules).encode("utf-8")
        except UnicodeDecodeError:
            return self.base.binary(data)

"""Escalation bundles: one tar.gz that carries a run and the project files that made it, so the
next level can check it, read it and replay it anywhere (docs/escalations.md).

- bundle.py: build a deterministic, redacted bundle and its manifest;
- safe_extract.py: verify every checksum and extract with every refusal (links out, devices...);
- comment.py: the ticket comment;
- redaction.py: redaction of project files that keeps them replayable.
"""

BUNDLE_VERSION = 1

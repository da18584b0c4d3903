"""What a run-making verb prints goes through its runs' redactors (redact.Printed), a line at a
time (cli._RedactedStream), so a secret split across two writes is still masked."""

from __future__ import annotations

import io

from harness.cli import _RedactedStream
from harness.run.redact import MASK, Redactor, printing
from harness.run.redact import _note_printed as note


def test_printed_joins_every_run_redactor_built_while_the_command_runs() -> None:
    outside = Redactor.build(env=[("DB_PASSWORD", "never-joins-1234")])
    note(outside)  # no command is being served: nothing to join
    with printing() as printed:
        note(Redactor.build(patterns=["CASE-REF-[0-9]{6}"]))
        note(Redactor.build(env=[("API_TOKEN", "tok-abc-998877")]))
        out = printed.text("ref CASE-REF-123456 token tok-abc-998877 other never-joins-1234")
    assert out == f"ref {MASK} token {MASK} other never-joins-1234"
    assert printed.deep({"a": ["tok-abc-998877"]}) == {"a": [MASK]}


def test_printed_applies_the_rules_but_leaves_prose_after_a_secret_word() -> None:
    with printing() as printed:
        line = "member 'bundle/run/passwd': symbolic link; password: Zx81-qQ-77aa"
        assert printed.text(line) == f"member 'bundle/run/passwd': symbolic link; password: {MASK}"


def test_the_stream_masks_a_secret_split_across_writes_and_forwards_the_rest() -> None:
    with printing() as printed:
        note(Redactor.build(env=[("DB_PASSWORD", "Vt8-Kd2-up-Zq5-Lw3")]))
        raw = io.StringIO()
        stream = _RedactedStream(raw, printed.text)
        stream.write("start Vt8-Kd2")
        assert raw.getvalue() == ""  # held until its line ends
        stream.write("-up-Zq5-Lw3 done\nnext ")
        assert raw.getvalue() == f"start {MASK} done\n"
        stream.flush()
        assert raw.getvalue() == f"start {MASK} done\nnext "
        assert stream.isatty() is False  # the wrapped stream answers the rest

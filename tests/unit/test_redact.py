"""Redaction: what must never reach a run folder."""

from __future__ import annotations

import pytest

from harness.run.redact import MASK, Redactor

R = Redactor.build(["SUP-SECRET-[0-9]+"], [("POSTGRES_PASSWORD", "hunter2-db"), ("HOME", "/root")])


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("password=abc123", "abc123"),
        ('POSTGRES_PASSWORD: "s3cret!"', "s3cret!"),
        ("api_token: eyJhbGciOiJIUzI1NiJ9.x", "eyJhbGciOiJIUzI1NiJ9.x"),
        ("Authorization: Bearer abcdefghijkl", "abcdefghijkl"),
        ("postgres://shop:pw123@db/shop", "pw123"),
        ("connected with hunter2-db", "hunter2-db"),
        ("ticket SUP-SECRET-42", "SUP-SECRET-42"),
        ('{"client_secret": "zzz999"}', "zzz999"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----", "MIIEow"),
        ("requirepass Xk8s2LmQp9", "Xk8s2LmQp9"),  # redis.conf and CONFIG GET *
        ("port 6379\nmasterauth 'Xk8s2LmQp9'\n", "Xk8s2LmQp9"),
    ],
)
def test_secrets_are_masked(text: str, secret: str) -> None:
    out = R.text(text)
    assert secret not in out
    assert MASK in out


def test_ordinary_text_is_left_alone() -> None:
    text = "GET /health 200 in 3ms; HOME=/root; nginx/1.22.1"
    assert R.text(text) == text


def test_binary_masking_keeps_length() -> None:
    data = b"\x00\xffuser hunter2-db\x01SUP-SECRET-7\x02"
    out = R.binary(data)
    assert len(out) == len(data)
    assert b"hunter2-db" not in out and b"SUP-SECRET-7" not in out


def test_bytes_picks_text_or_binary() -> None:
    assert b"abc123" not in R.bytes_(b"password=abc123\n")
    assert b"hunter2-db" not in R.bytes_(b"\xff\xfe hunter2-db")


def test_secrets_inside_json_escaped_text() -> None:
    import json

    out = R.text(json.dumps("db_password = Pa55\napi_token: tok-1\n"))
    assert "Pa55" not in out and "tok-1" not in out


def test_words_that_only_look_like_secrets_stay() -> None:
    text = '{"passed": true, "bypassed": 3, "token_type": "x"}'
    assert R.text(text) == text


def test_project_files_lose_whole_private_key_blocks() -> None:
    """Bundled project files (escalations) mask a PEM key block whole, body included."""
    from harness.escalation.redaction import PROJECT_MASK, ProjectRedactor

    body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"
    pem = f"-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n"
    out = ProjectRedactor(Redactor()).text(f"key: |\n{pem}done: true\n")
    assert body not in out and "BEGIN" not in out
    assert f"{PROJECT_MASK} (private key)" in out and out.endswith("done: true\n")


def test_a_key_begun_in_an_earlier_chunk_is_masked_and_the_prose_before_it_stays() -> None:
    from harness.run.secret_rules import FULL_RULES

    def star(s: str) -> str:
        return "*" * 3

    body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0t\n"
    text = f"copied the key, then:\nProc-Type: 4,ENCRYPTED\n\n{body}-----END PRIVATE KEY-----\nok"
    out = FULL_RULES.sub(text, star)
    assert out == "copied the key, then:\n***\nok", out
    assert FULL_RULES.sub(f"{body}-----END PRIVATE KEY----- tail", star) == "*** tail"
    escaped = 'log {"k": "MIIEvQIBADANBg\\nAQEAu1SU1Lf\\n-----END PRIVATE KEY-----"} end'
    out = FULL_RULES.sub(escaped, star)
    assert "MIIEvQ" not in out and "AQEAu1" not in out and out.startswith("***"), out

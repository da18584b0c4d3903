"""`finding:` probes, pure: held when the attempt's findings include the signature (a shell
pattern), as often as `count` asks; evidence that says what was seen instead; and validation
that names the key: a network that is not captured, a log signature the node's lab does not
declare (with the nearest), neither or both of network and on."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.run.probes import Seen, evaluate
from harness.scenario.schema import FindingProbe
from tests.conftest import ROOT

ALERT = Seen("tls.alert:protocol_version", 3, "captures/dmz.pcap frame 9")
OK = Seen("http.status:200", 1, "captures/dmz.pcap frame 4")


def probe(**kw: object) -> FindingProbe:
    return FindingProbe.model_validate({"finding": "tls.alert:*", "network": "dmz", **kw})


def obs(*seen: Seen) -> dict[tuple[str, str, str], object]:
    return {("capture-findings", "dmz", ""): list(seen)}


def test_held_by_pattern_and_count() -> None:
    r = evaluate(probe(), {}, obs(ALERT, OK))  # type: ignore[arg-type]
    assert r.held and r.evidence == ["tls.alert:protocol_version x3 (captures/dmz.pcap frame 9)"]
    assert evaluate(probe(count={"not": 3}), {}, obs(ALERT)).held is False  # type: ignore[arg-type]
    assert evaluate(probe(count=3), {}, obs(ALERT)).held  # type: ignore[arg-type]


def test_not_seen_says_what_was() -> None:
    r = evaluate(probe(), {}, obs(OK))  # type: ignore[arg-type]
    assert not r.held and r.evidence == ["not seen; the attempt showed: http.status:200"]
    unread = evaluate(probe(), {}, {("capture-findings", "dmz", ""): "captures/dmz.pcap: cut"})  # type: ignore[arg-type]
    assert not unread.held and unread.evidence == ["captures/dmz.pcap: cut"]


def _validate(tmp_path: Path, symptom: str, capture: str = "[dmz]") -> str:
    import subprocess
    import sys

    f = tmp_path / "s.yaml"
    f.write_text(
        "scenario: s\ntopology:\n  networks: {dmz: {}}\n  nodes:\n"
        "    web: {lab: nginx, networks: [dmz]}\n"
        "reproduce:\n  steps:\n    - {id: a, on: web, run: 'true'}\n"
        f"  symptom:\n    - {symptom}\ncollect:\n  capture: {capture}\n"
    )
    p = subprocess.run(
        [sys.executable, "-m", "harness", "validate", str(f), "--project", str(ROOT)],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    return f"{p.returncode}\n{p.stdout}{p.stderr}"


@pytest.mark.parametrize(
    ("symptom", "capture", "said"),
    [
        ("{finding: tcp.reset, network: dmz}", "[dmz]", "0\n"),
        ("{finding: 'log:nginx.body-too-large', on: web}", "[]", "0\n"),
        ("{finding: tcp.reset, network: dmz}", "[]", "network 'dmz' is not captured"),
        ("{finding: tcp.reset, network: dmx}", "[dmz]", "unknown network 'dmx'"),
        ("{finding: tcp.reset}", "[dmz]", "give exactly one"),
        ("{finding: tcp.reset, network: dmz, on: web}", "[dmz]", "give exactly one"),
        (
            "{finding: 'log:nginx.body-to-large', on: web}",
            "[]",
            "did you mean 'log:nginx.body-too-large'",
        ),
        (
            "{finding: 'log:postgres.too-many-clients', on: web}",
            "[]",
            "unknown log signature of node 'web'",
        ),
        (
            "{finding: 'log:nginx.emerg', on: web, path: var/log/x}",
            "[]",
            "expected an absolute path",
        ),
    ],
)
def test_validation_names_the_key(tmp_path: Path, symptom: str, capture: str, said: str) -> None:
    out = _validate(tmp_path, symptom, capture)
    assert said in out, out
    if said != "0\n":
        assert out.startswith("2\n") and "s.yaml:10:" in out, out

"""Which pcaps of a run folder are masked: collect's sweep records each (run.json
`masked_captures`, the sha256 of its masked bytes); anything else (a SIGKILLed run's pcap, one
changed since) is unmasked until `lab down`/`lab gc` masks it (collect.mask_captures)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

from harness.run import collect
from harness.run.folder import RunFolder
from harness.run.redact import Redactor

TOKEN = "Vq7Lm2Xc9Rt4Bn8Kw3Hs6Pz1"


def _pcap(payload: bytes) -> bytes:
    head = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    return head + struct.pack("<IIII", 1, 0, len(payload), len(payload)) + payload


def _run_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "run"
    (folder / "captures").mkdir(parents=True)
    RunFolder(folder).write(state="running")
    return folder


def test_sweep_records_the_masked_pcaps_and_a_change_unmasks_them(tmp_path: Path) -> None:
    folder = _run_folder(tmp_path)
    pcap = folder / "captures" / "lan.pcap"
    pcap.write_bytes(_pcap(f"GET /?auth={TOKEN} HTTP/1.1\r\n".encode()))
    redactor = Redactor.build(env=[("SERVICE_AUTH", TOKEN)])
    assert collect.unmasked_captures(folder) == ["captures/lan.pcap"]
    collect.sweep(folder, redactor)
    assert TOKEN.encode() not in pcap.read_bytes()
    recorded = json.loads((folder / "run.json").read_text())[collect.MASKED_CAPTURES]
    assert list(recorded) == ["captures/lan.pcap"]
    assert collect.unmasked_captures(folder) == []
    pcap.write_bytes(pcap.read_bytes() + _pcap(TOKEN.encode())[24:])  # written to since
    assert collect.unmasked_captures(folder) == ["captures/lan.pcap"]


def test_mask_captures_masks_only_what_is_unmasked_in_place(tmp_path: Path) -> None:
    folder = _run_folder(tmp_path)
    killed = folder / "captures" / "lan.pcap"
    raw = _pcap(f"X-Auth-Token: {TOKEN}\r\n".encode())
    killed.write_bytes(raw)
    (folder / "captures" / "empty.pcap").write_bytes(b"")  # tcpdump killed before its header
    redactor = Redactor.build(env=[("SERVICE_AUTH", TOKEN)])
    done = collect.mask_captures(folder, redactor)
    assert done == ["captures/empty.pcap", "captures/lan.pcap"]
    masked = killed.read_bytes()
    assert len(masked) == len(raw) and TOKEN.encode() not in masked
    assert b"X-Auth-Token: ****" in masked
    assert collect.unmasked_captures(folder) == []
    assert collect.mask_captures(folder, redactor) == []  # nothing left to do
    assert not list(folder.glob("captures/.*"))  # no temporary file left


def test_a_linked_pcap_is_not_a_capture(tmp_path: Path) -> None:
    folder = _run_folder(tmp_path)
    outside = tmp_path / "outside.pcap"
    outside.write_bytes(_pcap(TOKEN.encode()))
    (folder / "captures" / "lan.pcap").symlink_to(outside)
    assert collect.capture_files(folder) == []
    assert collect.mask_captures(folder, Redactor()) == []
    assert TOKEN.encode() in outside.read_bytes()  # never written through the link


def test_a_redactor_factory_is_called_only_when_a_pcap_needs_masking(tmp_path: Path) -> None:
    """`lab down`/`lab gc` pass a factory: the scenario is not reloaded for a masked run."""
    folder = _run_folder(tmp_path)
    pcap = folder / "captures" / "lan.pcap"
    pcap.write_bytes(_pcap(f"auth={TOKEN}".encode()))
    calls: list[int] = []

    def factory() -> Redactor:
        calls.append(1)
        return Redactor.build(env=[("SERVICE_AUTH", TOKEN)])

    assert collect.mask_captures(folder, factory) == ["captures/lan.pcap"]
    assert calls == [1] and TOKEN.encode() not in pcap.read_bytes()
    assert collect.mask_captures(folder, factory) == [] and calls == [1]

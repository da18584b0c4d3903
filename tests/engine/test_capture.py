"""A host-side capture of a whole network, read back with tshark (or the pcap header)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.engine import capture, impair
from tests.engine.netlab import Lab, lab


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with lab("net-capture", tmp_path_factory.mktemp("reports")) as lb:
        yield lb


def _tshark_count(path: Path, display_filter: str) -> int | None:
    tshark = shutil.which("tshark")
    if tshark is None:
        return None
    out = subprocess.run(
        [tshark, "-r", str(path), "-Y", display_filter, "-T", "fields", "-e", "frame.number"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return len(out.split())


def test_capture_sees_pings_and_http_also_under_loss(net: Lab, tmp_path: Path) -> None:
    if capture.host_tcpdump() is None:
        pytest.skip(capture.MISSING_TCPDUMP)
    server = net.addresses["server"]["wire"]
    net.containers["server"].exec_run(
        ["python3", "-m", "http.server", "8000", "--directory", "/etc"], detach=True
    )
    out = tmp_path / "captures" / "wire.pcap"
    cap = capture.start(net.client, net.networks["wire"], out)
    assert cap.warning is None and cap.active, cap.warning
    try:
        assert net.ping_loss("client", server, count=5) == 0
        rc, _ = net.sh(
            "client",
            f"for i in $(seq 50); do curl -sf -o /dev/null http://{server}:8000/hostname"
            " && exit 0; sleep 0.1; done; exit 1",
        )
        assert rc == 0
        impair.apply(net.containers["server"], "wire", server, loss="30%")
        lossy = net.ping_loss("client", server, count=20)
    finally:
        result = cap.stop()
        impair.clear(net.containers["server"])
    assert cap.stop() == result  # idempotent
    assert not cap.active
    assert result["path"] == str(out) and result["warning"] is None
    assert result["packets"] >= 5 * 2 + 20 + 6, result
    assert result["bytes"] == out.stat().st_size
    assert capture.pcap_summary(out)["linktype"] == 1  # Ethernet

    requests = _tshark_count(out, f"icmp.type == 8 && ip.dst == {server}")
    if requests is None:
        return  # no tshark on this host: the Python count above has to do
    replies = _tshark_count(out, f"icmp.type == 0 && ip.src == {server}")
    http = _tshark_count(out, "tcp.port == 8000")
    assert requests == 5 + 20  # every request reaches the bridge (loss is in the server)
    assert replies is not None and replies < requests  # some replies dropped on the way out
    assert http is not None and http >= 6
    print(
        f"capture: {result['packets']} packets, {requests} echo requests, {replies} replies,"
        f" {http} http packets; ping loss under 30% both ways: {lossy}%"
    )


def test_missing_tcpdump_is_a_warning_not_a_failure(
    net: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(capture, "host_tcpdump", lambda: None)
    cap = capture.start(net.client, net.networks["wire"], tmp_path / "x.pcap")
    assert cap.warning is not None and "no tcpdump on this host" in cap.warning
    res = cap.stop()
    assert res["path"] is None and res["packets"] == 0 and "apt-get install" in res["warning"]

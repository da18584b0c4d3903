"""Remote Docker engines on this machine, reached the way a real remote one is:

- `tls_engine()`: a dockerd in its own network namespace (tests/engine/second_engine.py's way:
  own data root, own cgroup mounts, bridges from 10.215.128.0/17) serving `tcp://IP:2376` with
  `--tlsverify`, reachable from the host over a veth pair (10.215.N.1/30 here, .2 in the netns),
  with a CA, a server certificate for that IP and a client certificate made here by `openssl`;
  also a second CA that signed nothing (the wrong-CA case). Its unix socket stays for the checks.
- `private_sshd()`: an sshd of our own on 127.0.0.1:PORT (own config, host key, authorized_keys
  under a temporary folder; not the system service) where root logs in with a key made here;
  its `docker system dial-stdio` reaches the host engine.

Each stops what it started and removes what it made, then checks that nothing is left (its
netns, veth, processes): a leftover fails the test's teardown.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from tests.engine.second_engine import CONTROLLERS, SecondEngine, stop

NET = "10.215"  # host engine pools: 10.213.0.0/16, second engine: 10.214.0.0/16
TLS_PORT = 2376


# -- certificates ------------------------------------------------------------------------------


def _openssl(*args: str, cwd: Path) -> None:
    p = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed:\n{p.stderr}")


def _ca(d: Path, name: str) -> None:
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-days", "2", "-subj", f"/CN=labharness test {name}",
             "-keyout", f"{name}-key.pem", "-out", f"{name}.pem", cwd=d)  # fmt: skip


def _signed(d: Path, name: str, ca: str, ext: str) -> None:
    (d / f"{name}.ext").write_text(ext + "\n")
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-subj", f"/CN={name}", "-keyout", f"{name}-key.pem",
             "-out", f"{name}.csr", cwd=d)  # fmt: skip
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}-key.pem",
             "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext",
             "-out", f"{name}.pem", cwd=d)  # fmt: skip


def make_certs(d: Path, ip: str) -> None:
    """ca.pem; server.pem/server-key.pem for IP; client.pem/client-key.pem; wrong-ca.pem."""
    d.mkdir(parents=True, exist_ok=True)
    _ca(d, "ca")
    _ca(d, "wrong-ca")
    _signed(d, "server", "ca", f"subjectAltName=IP:{ip}\nextendedKeyUsage=serverAuth")
    _signed(d, "client", "ca", "extendedKeyUsage=clientAuth")
    for key in d.glob("*-key.pem"):
        key.chmod(0o600)


# -- the TLS engine ----------------------------------------------------------------------------


@dataclass
class TlsEngine:
    engine: SecondEngine  # its netns, data root and unix socket (stop, leftovers checks)
    ip: str
    host_if: str
    certs: Path

    @property
    def url(self) -> str:
        return f"tcp://{self.ip}:{TLS_PORT}"

    def cli(self) -> list[str]:
        """The docker CLI against it over TLS, as a user would."""
        c = self.certs
        return ["docker", "-H", self.url, "--tlsverify", f"--tlscacert={c / 'ca.pem'}",
                f"--tlscert={c / 'client.pem'}", f"--tlskey={c / 'client-key.pem'}"]  # fmt: skip


def _free_slot() -> int:
    """N for 10.215.N.0/30 that no interface on the host uses yet."""
    used = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    for n in range(1, 64):
        if f" {NET}.{n}." not in used:
            return n
    raise RuntimeError(f"no free {NET}.N.0/30 for a veth pair")


def _dockerd_script(base: Path, sock: Path, pidfile: Path, ip: str, certs: Path) -> str:
    cmds = ["mount -t tmpfs cgroup_root /sys/fs/cgroup"]
    cmds += [
        f"mkdir -p /sys/fs/cgroup/{c} && mount -t cgroup -o {c} cgroup /sys/fs/cgroup/{c}"
        for c in CONTROLLERS
    ]
    cmds.append(
        "mkdir -p /sys/fs/cgroup/systemd && "
        "mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd"
    )
    cmds.append("ip link set lo up")
    cmds.append(
        f"exec dockerd --data-root {base}/data --exec-root {base}/exec --pidfile {pidfile} "
        f"-H unix://{sock} -H tcp://{ip}:{TLS_PORT} --tlsverify --tlscacert {certs}/ca.pem "
        f"--tlscert {certs}/server.pem --tlskey {certs}/server-key.pem "
        f"--default-address-pool base={NET}.128.0/17,size=24 --bip {NET}.64.1/24 "
        f"--iptables=true >{base}/dockerd.log 2>&1"
    )
    return " && ".join(cmds)


def _link_exists(name: str) -> bool:
    return subprocess.run(["ip", "link", "show", name], capture_output=True).returncode == 0


def _netns_exists(name: str) -> bool:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return any(line.split()[0] == name for line in out.splitlines() if line.strip())


@contextmanager
def tls_engine(timeout: float = 60) -> Iterator[TlsEngine]:
    n = _free_slot()
    netns, host_if, ns_if = f"labtls{os.getpid()}", f"lrh{os.getpid()}", f"lrn{os.getpid()}"
    host_ip, ip = f"{NET}.{n}.1", f"{NET}.{n}.2"
    base = Path(tempfile.mkdtemp(prefix="lab-engine-tls-"))
    certs = base / "certs"
    make_certs(certs, ip)
    sock, pidfile = base / "docker.sock", base / "docker.pid"
    eng = SecondEngine(netns, base, sock, pidfile)
    proc: subprocess.Popen[bytes] | None = None
    try:
        subprocess.run(["ip", "netns", "add", netns], check=True)
        subprocess.run(["ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if,
                        "netns", netns], check=True)  # fmt: skip
        subprocess.run(["ip", "addr", "add", f"{host_ip}/30", "dev", host_if], check=True)
        subprocess.run(["ip", "link", "set", host_if, "up"], check=True)
        subprocess.run(["ip", "-n", netns, "addr", "add", f"{ip}/30", "dev", ns_if], check=True)
        subprocess.run(["ip", "-n", netns, "link", "set", ns_if, "up"], check=True)
        proc = subprocess.Popen(
            ["ip", "netns", "exec", netns, "sh", "-c",
             _dockerd_script(base, sock, pidfile, ip, certs)],
            start_new_session=True,
        )  # fmt: skip
        tls = TlsEngine(eng, ip, host_if, certs)
        deadline = time.monotonic() + timeout
        while True:
            up = subprocess.run([*tls.cli(), "version"], capture_output=True, timeout=10)
            if up.returncode == 0:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                log = (base / "dockerd.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"the TLS dockerd did not answer at {tls.url}:\n{log}")
            time.sleep(0.5)
        yield tls
    finally:
        if proc is not None:
            stop(eng, proc)  # containers, dockerd, the netns (its veth end goes with it)
        else:
            subprocess.run(["ip", "netns", "delete", netns], capture_output=True)
            shutil.rmtree(base, ignore_errors=True)
        if _link_exists(host_if):
            subprocess.run(["ip", "link", "delete", host_if], capture_output=True)
        left = [x for x, there in ((netns, _netns_exists(netns)), (host_if, _link_exists(host_if)),
                                   (str(base), base.exists())) if there]  # fmt: skip
        pid = eng.pid()
        if pid is not None and Path(f"/proc/{pid}").exists():
            left.append(f"dockerd pid {pid}")
        assert not left, f"the TLS engine left behind: {left}"


# -- the private sshd --------------------------------------------------------------------------


@dataclass
class Sshd:
    folder: Path
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"ssh://root@127.0.0.1:{self.port}"

    @property
    def identity(self) -> Path:
        return self.folder / "id_ed25519"  # in authorized_keys

    @property
    def wrong_identity(self) -> Path:
        return self.folder / "wrong_ed25519"  # not in authorized_keys

    @property
    def known_hosts(self) -> Path:
        return self.folder / "known_hosts"

    def log(self) -> str:
        return (self.folder / "sshd.log").read_text(errors="replace")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name,
                    "-f", str(path)], check=True)  # fmt: skip


def _descendants(pid: int) -> list[int]:
    """Every process below pid (sshd forks one session per connection, each in a new session)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


@contextmanager
def private_sshd(timeout: float = 20) -> Iterator[Sshd]:
    folder = Path(tempfile.mkdtemp(prefix="lab-sshd-"))
    port = _free_port()
    for key in ("host_ed25519", "id_ed25519", "wrong_ed25519"):
        _keygen(folder / key)
    shutil.copy(folder / "id_ed25519.pub", folder / "authorized_keys")
    host_pub = (folder / "host_ed25519.pub").read_text().split()
    (folder / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    config = folder / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {folder}/host_ed25519\n"
        f"PidFile {folder}/sshd.pid\nAuthorizedKeysFile {folder}/authorized_keys\n"
        "PermitRootLogin prohibit-password\nPubkeyAuthentication yes\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        # the keys live under /tmp (world-writable): StrictModes would refuse them
        "StrictModes no\nUsePAM no\nLogLevel VERBOSE\n"
    )
    made_run = not Path("/run/sshd").exists()
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation folder
    proc = subprocess.Popen(
        ["/usr/sbin/sshd", "-D", "-f", str(config), "-E", str(folder / "sshd.log")],
        start_new_session=True,
    )
    sshd = Sshd(folder, port, proc)
    pids: list[int] = []
    try:
        deadline = time.monotonic() + timeout
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sshd did not listen on 127.0.0.1:{port}:\n{sshd.log()}")
            time.sleep(0.1)
        yield sshd
    finally:
        pids = _descendants(proc.pid)  # sessions still open (each a new session: not our group)
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        for p in pids:
            with suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
        shutil.rmtree(folder, ignore_errors=True)
        if made_run:
            with suppress(OSError):
                Path("/run/sshd").rmdir()
        time.sleep(0.1)
        alive = [p for p in [proc.pid, *pids] if _running(p)]
        assert not alive, f"sshd processes left behind: {alive}"


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"

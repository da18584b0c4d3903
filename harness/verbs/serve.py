"""`lab serve`: the results index as a read-only web dashboard (harness.web) on uvicorn.

The store is the one every verb writes (`--store`, $LABHARNESS_STORE, `results_store:` in the
local configuration, else <reports>/index.sqlite), opened read-only: a missing SQLite index is
exit 2 with the hint to run `lab index`, an unreachable database exit 3. The socket is bound
here, before anything is printed, so a port in use is one clear message (exit 2). It listens on
127.0.0.1 unless another --host is asked for; Ctrl-C or SIGTERM stops it cleanly (exit 0)."""

from __future__ import annotations

import ipaddress
import signal
import socket
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from harness.errors import UsageError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from harness.store.db import Store

LOOPBACK = "127.0.0.1"
LOOPBACK_NAMES = ("127.0.0.1", "localhost")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class Dashboard:
    """A dashboard ready to serve: the app over the open store, and its bound socket."""

    app: FastAPI
    store: Store
    sock: socket.socket
    url: str
    loopback: bool


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host.strip("[]"), port), family=family, reuse_port=False)
    except OSError as exc:
        raise UsageError(
            f"lab serve cannot listen on {host}:{port}: {exc.strerror or exc}",
            hint="give another --port (0 picks a free one), or stop what holds it",
        ) from None


def open_dashboard(*, root: Path, store: str | None, host: str, port: int) -> Dashboard:
    from harness.run.folder import reports_root
    from harness.store.db import Store
    from harness.store.location import store_url
    from harness.web import create_app

    reports = reports_root(root)
    opened = Store.open(store_url(reports, store), readonly=True)
    try:
        sock = _listen(host, port)
    except BaseException:
        opened.close()
        raise
    loopback = is_loopback(host)
    # a loopback dashboard answers only its own names: a web page elsewhere that rebinds its
    # DNS name onto 127.0.0.1 gets 400, not the index
    allowed = [*LOOPBACK_NAMES, host] if loopback and ":" not in host else None
    bound = sock.getsockname()[1]
    shown = f"[{host.strip('[]')}]" if ":" in host else host
    return Dashboard(
        app=create_app(opened, reports, allowed_hosts=allowed),
        store=opened,
        sock=sock,
        url=f"http://{shown}:{bound}/",
        loopback=loopback,
    )


class _Stopped(Exception):
    """SIGTERM, after uvicorn's own graceful shutdown."""


def _stop(_sig: int, _frame: FrameType | None) -> None:
    raise _Stopped


def serve(d: Dashboard) -> None:
    """Serve until Ctrl-C or SIGTERM; uvicorn finishes the requests in flight first."""
    import uvicorn

    config = uvicorn.Config(
        d.app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        server_header=False,
        proxy_headers=False,
    )
    server = uvicorn.Server(config)
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        server.run(sockets=[d.sock])
    except (KeyboardInterrupt, _Stopped):
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        d.sock.close()
        d.store.close()

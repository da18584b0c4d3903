"""Hand-made sosreports for the import tests: a Debian 12 host's members (os-release, `dpkg
-l`, `ip -o addr`, nginx's folder with links inside and out of the report, a binary file, a
secret), as a folder or a tarball."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path
from typing import Any

SECRET = "Zq8vLr2xWm4tPa9k"  # a password in the customer's config

OS_RELEASE_12 = (
    'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\n'
    'VERSION_ID="12"\nVERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n'
)
DPKG = """Desired=Unknown/Install/Remove/Purge/Hold
| Status=Not/Inst/Conf-files/Unpacked/halF-conf/Half-inst/trig-aWait/Trig-pend
|/ Err?=(none)/Reinst-required (Status,Err: uppercase=bad)
||/ Name              Version                 Architecture Description
+++-=================-=======================-============-=====================
ii  adduser           3.134                   all          add and remove users
ii  curl              7.88.1-10+deb12u5       amd64        command line tool
ii  nginx             1.22.1-9                all          small, powerful server
ii  nginx-core        1.22.1-9                amd64        nginx web/proxy server
rc  redis-server      5:7.0.15-1~deb12u1      amd64        removed, config kept
ii  postgresql-15     15.5-0+deb12u1          amd64        object-relational SQL
ii  libc6:amd64       2.36-9+deb12u4          amd64        GNU C Library
"""
IP_O_ADDR = """1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever
1: lo    inet6 ::1/128 scope host \\       valid_lft forever preferred_lft forever
2: eth0    inet 10.70.3.5/24 brd 10.70.3.255 scope global eth0\\       valid_lft forever
2: eth0    inet6 fe80::42:aff:fe46:305/64 scope link \\       valid_lft forever
3: eth1    inet 10.71.0.1/24 brd 10.71.0.255 scope global eth1\\       valid_lft forever
4: docker0    inet 172.17.0.1/16 brd 172.17.255.255 scope global docker0\\       valid_lft
5: tun0    inet 10.9.9.9/32 scope global tun0\\       valid_lft forever
2: eth0    inet6 2001:db8::5/64 scope global \\       valid_lft forever
2: eth0    inet6 2001:db8::6/64 scope global \\       valid_lft forever
3: eth1    inet6 fd00:71::1/64 scope global \\       valid_lft forever
6: wg0    inet6 fd00:77::2/64 scope global \\       valid_lft forever
"""
NGINX_CONF = "user www-data;\nevents {}\nhttp {\n  include /etc/nginx/sites-enabled/*;\n}\n"
SITE = (
    "server {\n  listen 80;\n  location / { proxy_pass http://app; }\n"
    f"  # upstream login: password={SECRET}\n}}\n"
)


def report(**over: Any) -> dict[str, Any]:
    """A report's members: path -> text/bytes, ("link", target) or None (left out)."""
    members: dict[str, Any] = {
        "version.txt": "sosreport: 4.0\n",
        "sos_commands/dpkg/dpkg_-l": DPKG,
        "installed-debs": ("link", "sos_commands/dpkg/dpkg_-l"),
        "sos_commands/networking/ip_-o_addr": IP_O_ADDR,
        "sos_commands/host/hostname": "web1.example.com\n",
        "usr/lib/os-release": OS_RELEASE_12,
        "etc/os-release": ("link", "../usr/lib/os-release"),
        "etc/nginx/nginx.conf": NGINX_CONF,
        "etc/nginx/sites-available/default": SITE,
        "etc/nginx/sites-enabled/default": ("link", "../sites-available/default"),
        "etc/nginx/modules-enabled/50-mod-geoip.conf": (
            "link",
            "/usr/share/nginx/modules-available/mod-geoip.conf",
        ),
        "etc/nginx/escape": ("link", "../../../../../etc/shadow"),
        "etc/nginx/logo.png": b"\x89PNG\r\n\x1a\n\0\0\0binary",
        "etc/redis/redis.conf": "requirepass hunter2hunter2\n",
        "etc/postgresql/15/main/postgresql.conf": "max_connections = 50\n",
    }
    members.update(over)
    return {k: v for k, v in members.items() if v is not None}


TOP = "sosreport-web1-2026-12-03-abcdefg"


def as_folder(tmp: Path, members: dict[str, Any]) -> Path:
    root = tmp / TOP
    for path, value in members.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(value, tuple):
            os.symlink(value[1], target)
        else:
            target.write_bytes(value.encode() if isinstance(value, str) else value)
    return root


def as_tarball(tmp: Path, members: dict[str, Any], mode: str = "w:xz", top: str = TOP) -> Path:
    out = tmp / f"{top}.tar.{mode.split(':')[-1] or 'tar'}"
    with tarfile.open(out, mode) as tar:
        d = tarfile.TarInfo(top)
        d.type = tarfile.DIRTYPE
        tar.addfile(d)
        for path, value in members.items():
            ti = tarfile.TarInfo(f"{top}/{path}" if top else path)
            if isinstance(value, tuple):
                ti.type = tarfile.SYMTYPE
                ti.linkname = value[1]
                tar.addfile(ti)
                continue
            data = value.encode() if isinstance(value, str) else value
            ti.size = len(data)
            tar.addfile(ti, io.BytesIO(data))
    return out

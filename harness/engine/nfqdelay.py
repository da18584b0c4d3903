"""Per-packet delay and jitter in user space, on an NFQUEUE (the "nfqueue" backend).

This file is also the program the delay helper container runs (`python3 nfqdelay.py --queue N
--delay MS [--jitter MS] [--limit P]`), with the system python3 of a Debian image and
libnetfilter_queue through ctypes: no harness import, nothing beyond the standard library.

Each packet the kernel queues (iptables `-j NFQUEUE --queue-num N`) gets a release time =
arrival + delay + a jitter sample, uniform in [-jitter, +jitter] (netem's default without a
distribution table), never before arrival. Packets are accepted in order of release time, so
jitter larger than the gap between two packets reorders them, as netem does. At most `limit`
packets wait (netem's default limit is 1000 too): one more is dropped and counted. The kernel
keeps the packets; the program only holds their ids and issues the verdicts (COPY_META: no
payload crosses into user space).

It prints `ready queue=N` once bound, and on SIGTERM/SIGINT releases what it holds and prints
`stats accepted=A dropped=D max_held=M`.
"""

from __future__ import annotations

import heapq
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

DEFAULT_LIMIT = 1000  # packets held at once; one more is dropped


@dataclass
class Schedule:
    """Release times of the packets held, earliest first (pure: the clock is passed in)."""

    delay: float  # seconds
    jitter: float = 0.0  # seconds, uniform in [-jitter, +jitter]
    limit: int = DEFAULT_LIMIT
    rng: random.Random = field(default_factory=random.Random)
    accepted: int = 0
    dropped: int = 0
    max_held: int = 0
    _heap: list[tuple[float, int, int]] = field(default_factory=list)
    _seq: int = 0

    def release_time(self, now: float) -> float:
        sample = self.rng.uniform(-self.jitter, self.jitter) if self.jitter else 0.0
        return now + max(0.0, self.delay + sample)

    def arrive(self, packet_id: int, now: float) -> bool:
        """Hold the packet until its release time; False when the queue is full (drop it)."""
        if len(self._heap) >= self.limit:
            self.dropped += 1
            return False
        self._seq += 1
        heapq.heappush(self._heap, (self.release_time(now), self._seq, packet_id))
        self.max_held = max(self.max_held, len(self._heap))
        return True

    def due(self, now: float) -> list[int]:
        """The ids whose release time has come, in release order."""
        out = []
        while self._heap and self._heap[0][0] <= now:
            out.append(heapq.heappop(self._heap)[2])
        self.accepted += len(out)
        return out

    def drain(self) -> list[int]:
        """Every id still held (on exit: accepted at once rather than lost)."""
        return self.due(float("inf"))

    def wait(self, now: float, idle: float = 1.0) -> float:
        """Seconds until the next release (idle when nothing is held)."""
        return max(0.0, self._heap[0][0] - now) if self._heap else idle

    @property
    def held(self) -> int:
        return len(self._heap)


# -- the program ------------------------------------------------------------------------------

NF_DROP, NF_ACCEPT = 0, 1
NFQNL_COPY_META = 1
SOL_NETLINK, NETLINK_NO_ENOBUFS = 270, 5
SO_RCVBUFFORCE = 33


class _Queue:
    """libnetfilter_queue through ctypes: bind queue N, read packets, issue verdicts."""

    def __init__(self, num: int, on_packet: Callable[[int], None], maxlen: int) -> None:
        import ctypes
        import socket

        c = ctypes
        self.lib = lib = c.CDLL("libnetfilter_queue.so.1", use_errno=True)
        lib.nfq_open.restype = c.c_void_p
        lib.nfq_create_queue.restype = c.c_void_p
        self.cb_type = c.CFUNCTYPE(c.c_int, c.c_void_p, c.c_void_p, c.c_void_p, c.c_void_p)
        lib.nfq_create_queue.argtypes = [c.c_void_p, c.c_uint16, self.cb_type, c.c_void_p]
        lib.nfq_get_msg_packet_hdr.restype = c.POINTER(c.c_uint32)
        lib.nfq_get_msg_packet_hdr.argtypes = [c.c_void_p]
        lib.nfq_set_verdict.argtypes = [c.c_void_p, c.c_uint32, c.c_uint32, c.c_uint32, c.c_void_p]
        lib.nfq_set_mode.argtypes = [c.c_void_p, c.c_uint8, c.c_uint32]
        lib.nfq_set_queue_maxlen.argtypes = [c.c_void_p, c.c_uint32]
        lib.nfq_handle_packet.argtypes = [c.c_void_p, c.c_char_p, c.c_int]
        lib.nfq_fd.argtypes = [c.c_void_p]
        lib.nfq_destroy_queue.argtypes = [c.c_void_p]
        lib.nfq_close.argtypes = [c.c_void_p]
        self.h = lib.nfq_open()
        if not self.h:
            raise OSError(c.get_errno(), "nfq_open failed (is nfnetlink_queue there?)")

        def callback(qh: object, nfmsg: object, nfad: object, data: object) -> int:
            hdr = lib.nfq_get_msg_packet_hdr(nfad)
            on_packet(socket.ntohl(hdr[0]))
            return 0

        self.cb = self.cb_type(callback)  # kept: ctypes must not free it
        self.qh = lib.nfq_create_queue(self.h, num, self.cb, None)
        if not self.qh:
            raise OSError(c.get_errno(), f"cannot bind queue {num} (NET_ADMIN? another binder?)")
        lib.nfq_set_mode(self.qh, NFQNL_COPY_META, 0)
        lib.nfq_set_queue_maxlen(self.qh, maxlen)
        self.fd = int(lib.nfq_fd(self.h))

    def verdict(self, packet_id: int, verdict: int) -> None:
        self.lib.nfq_set_verdict(self.qh, packet_id, verdict, 0, None)

    def read(self) -> int:
        """Handle what the socket holds now; the number of messages."""
        import os

        n = 0
        while True:
            try:
                buf = os.read(self.fd, 65536)
            except BlockingIOError:
                return n
            except OSError as e:  # ENOBUFS: the kernel dropped messages, go on
                if e.errno == 105:
                    continue
                raise
            self.lib.nfq_handle_packet(self.h, buf, len(buf))
            n += 1

    def close(self) -> None:
        self.lib.nfq_destroy_queue(self.qh)
        self.lib.nfq_close(self.h)


def _tune(fd: int) -> None:
    import socket

    s = socket.socket(fileno=fd)
    try:
        s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 8 << 20)
        s.setsockopt(SOL_NETLINK, NETLINK_NO_ENOBUFS, 1)
    except OSError:
        pass
    s.setblocking(False)
    s.detach()


def serve(num: int, sched: Schedule, clock: Callable[[], float] = time.monotonic) -> None:
    """Bind queue num and release packets by the schedule until SIGTERM/SIGINT."""
    import select
    import signal
    import sys

    now = clock
    stop: list[int] = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    signal.signal(signal.SIGINT, lambda *a: stop.append(1))
    q: _Queue

    def on_packet(pid: int) -> None:
        if not sched.arrive(pid, now()):
            q.verdict(pid, NF_DROP)

    q = _Queue(num, on_packet, maxlen=max(sched.limit * 2, 1024))
    _tune(q.fd)
    print(f"ready queue={num}", flush=True)
    try:
        while not stop:
            try:
                ready, _, _ = select.select([q.fd], [], [], sched.wait(now()))
            except InterruptedError:
                continue
            if ready:
                q.read()
            for pid in sched.due(now()):
                q.verdict(pid, NF_ACCEPT)
    finally:
        for pid in sched.drain():
            q.verdict(pid, NF_ACCEPT)
        print(
            f"stats accepted={sched.accepted} dropped={sched.dropped} max_held={sched.max_held}",
            flush=True,
        )
        q.close()
        sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(description="delay and jitter on an NFQUEUE")
    p.add_argument("--queue", type=int, required=True)
    p.add_argument("--delay", type=float, required=True, help="milliseconds")
    p.add_argument("--jitter", type=float, default=0.0, help="milliseconds, uniform +-")
    p.add_argument("--limit", type=int, default=DEFAULT_LIMIT, help="packets held at most")
    a = p.parse_args(argv)
    serve(a.queue, Schedule(a.delay / 1000, a.jitter / 1000, a.limit))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

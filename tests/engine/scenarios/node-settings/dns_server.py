"""A tiny DNS server for the node-settings test: answers every A query with 10.1.2.3 (and
NXDOMAIN for anything else), so a node whose `dns:` points here resolves customer.corp."""

import socket
import struct

ANSWER = bytes([10, 1, 2, 3])


def reply(query: bytes) -> bytes:
    tid, _flags, qd = struct.unpack("!HHH", query[:6])
    end = 12
    while query[end] != 0:
        end += query[end] + 1
    question = query[12 : end + 5]
    qtype = struct.unpack("!H", query[end + 1 : end + 3])[0]
    if qtype != 1:
        return struct.pack("!HHHHHH", tid, 0x8183, qd, 0, 0, 0) + question
    head = struct.pack("!HHHHHH", tid, 0x8180, qd, 1, 0, 0)
    answer = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + ANSWER
    return head + question + answer


sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("0.0.0.0", 53))
print("dns server ready", flush=True)
while True:
    data, peer = sock.recvfrom(512)
    try:
        sock.sendto(reply(data), peer)
    except Exception as exc:  # a malformed query: ignore it, keep serving
        print(f"bad query from {peer}: {exc}", flush=True)

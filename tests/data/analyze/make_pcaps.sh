#!/bin/sh
# Re-make the committed captures of tests/data/analyze/ from real traffic (no Docker engine):
# a throwaway network namespace with its own loopback, tcpdump on it, real clients and servers
# (openssl s_server/s_client, python's http.server, curl), and iptables rules local to the
# namespace (nothing of the host's network is touched). Run as root from the project folder:
#   sh tests/data/analyze/make_pcaps.sh
# Writes evidence.pcap (every kind of capture finding), evidence.pcapng (the same, pcapng) and
# truncated.pcap (evidence.pcap cut in the middle of a packet).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
ns=labh-analyze-pcaps
work=$(mktemp -d)
trap 'ip netns del $ns 2>/dev/null || true; rm -rf "$work"' EXIT
ip netns add $ns
run() { ip netns exec $ns "$@"; }
# background jobs go through `exec`, so $! is the program itself and a kill reaches it
bg() { exec ip netns exec $ns "$@"; }
run ip link set lo up
cd "$work"
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=proxy -keyout k.pem -out c.pem -days 2 2>/dev/null
head -c 300000 /dev/urandom > big.bin
cat > srv.py <<'PY'
import http.server, socketserver, sys
class H(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/upstream"):
            self.send_response(502); self.send_header("Content-Length", "0"); self.end_headers()
        else:
            super().do_GET()
    def log_message(self, *a): pass
socketserver.TCPServer.allow_reuse_address = True
socketserver.TCPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
cat > dns.py <<'PY'
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 53))
for _ in range(int(sys.argv[1])):
    q, peer = s.recvfrom(512)
    s.sendto(q[:2] + struct.pack(">HHHHH", 0x8183, 1, 0, 0, 0) + q[12:], peer)
PY
cat > ask.py <<'PY'
import socket, struct, sys
name = b"".join(bytes([len(p)]) + p.encode() for p in sys.argv[1].split(".")) + b"\0"
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); c.settimeout(2)
c.sendto(struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + name + b"\0\1\0\1", ("127.0.0.1", 53))
c.recvfrom(512)
PY
cat > zw.py <<'PY'
import socket, time
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
srv.bind(("127.0.0.1", 9000)); srv.listen(1)
cli = socket.socket(); cli.connect(("127.0.0.1", 9000)); conn, _ = srv.accept()
cli.setblocking(False)
try:
    for _ in range(200):
        cli.send(b"x" * 4096)
except BlockingIOError:
    pass
time.sleep(0.5); conn.recv(65536); time.sleep(0.2); cli.close(); conn.close()
PY
(bg tcpdump -i lo -U -s 0 -w "$work/evidence.pcap" 2>/dev/null) &
dump=$!
sleep 1
(bg openssl s_server -accept 443 -tls1_2 -cert c.pem -key k.pem -quiet >/dev/null 2>&1) &
tls=$!
(bg python3 srv.py 80) & web=$!
(bg python3 srv.py 8080) & bulk=$!
(bg python3 dns.py 1) & dns=$!
sleep 1
run openssl s_client -connect 127.0.0.1:443 -tls1_3 </dev/null >/dev/null 2>&1 || true
run curl -s -o /dev/null http://127.0.0.1/ || true
run curl -s -o /dev/null http://127.0.0.1/missing || true
run curl -s -o /dev/null http://127.0.0.1/upstream || true
run curl -s -o /dev/null http://127.0.0.1:81/ || true
run python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(b"hi", ("127.0.0.1", 9999))'
run python3 ask.py nosuch.example.invalid
run iptables -A INPUT -p tcp --sport 8080 -m statistic --mode nth --every 5 --packet 2 -j DROP
run curl -s -o /dev/null --max-time 20 http://127.0.0.1:8080/big.bin || true
run iptables -F INPUT
run python3 zw.py
sleep 1
kill $tls $web $bulk 2>/dev/null || true
wait $dns 2>/dev/null || true
kill -INT $dump; wait $dump || true
cp "$work/evidence.pcap" "$here/evidence.pcap"
editcap -F pcapng "$here/evidence.pcap" "$here/evidence.pcapng"
size=$(stat -c %s "$here/evidence.pcap")
head -c $((size - 37)) "$here/evidence.pcap" > "$here/truncated.pcap"
ls -l "$here"

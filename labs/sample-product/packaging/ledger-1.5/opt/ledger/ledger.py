#!/usr/bin/env python3
"""ledger 1.5: the labharness sample product (a stand-in for a vendor's product).

A small ledger service: clients post entries, one per line (`account<SEP>amount[<SEP>memo]`;
the memo may itself contain the separator), which are queued in Redis; POST /settle applies
the queued entries to the balances and keeps each account's history. Account names are
case-insensitive (kept in lower case).

GET  /health          200 "ok" (does not touch Redis)
GET  /version         {"product": "ledger", "version": ...}
POST /entries         body: entries, one per line; queues them: {"queued": n, "rejected": n}
                      (STRICT: any bad line rejects the whole body with 400 {"error", "errors"})
GET  /pending         {"pending": n}: entries queued, not yet settled
POST /settle          applies every queued entry, in batches taken atomically from the queue
                      (Redis LMPOP; before Redis 7.0, LRANGE+LTRIM in one MULTI) and
                      applied in one transaction each: {"settled": n}
GET  /balances        {"tenant": ..., "balances": {account: "12.50", ...}}
GET  /history/<acct>  {"account": ..., "entries": [{"amount": "12.50", "memo": ...}, ...]}

Errors: 400 bad input, 404 no route, 503 {"error"} when Redis fails, 500 anything else.

Configuration (environment): PORT (8080), REDIS_HOST (redis), REDIS_PORT (6379),
LEDGER_TENANT (default), ENTRY_SEPARATOR (,), STRICT (1; 0/false/no/off: bad lines are
skipped and reported instead of failing the request), SETTLE_BATCH (100: entries per
settlement batch), LEDGER_LOG (/var/log/ledger/ledger.log).
"""

import json
import logging
import os
import signal
import sys
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

__version__ = "1.5"

log = logging.getLogger("ledger")


def setting(name, default):
    return os.environ.get(name) or default


def setting_flag(name, default):
    return setting(name, default).strip().lower() in ("1", "true", "yes", "on")


SEPARATOR = setting("ENTRY_SEPARATOR", ",")
TENANT = setting("LEDGER_TENANT", "default")
STRICT = setting_flag("STRICT", "1")
SETTLE_BATCH = max(1, int(setting("SETTLE_BATCH", "100")))
PENDING = f"ledger:{TENANT}:pending"
BALANCES = f"ledger:{TENANT}:balances"
HISTORY = f"ledger:{TENANT}:history:"  # + account


def connect():
    import redis

    return redis.Redis(
        host=setting("REDIS_HOST", "redis"),
        port=int(setting("REDIS_PORT", "6379")),
        socket_connect_timeout=3,
        socket_timeout=3,
        decode_responses=True,
    )


def to_cents(text):
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"not an amount: {text!r}") from None
    if not amount.is_finite() or amount != amount.quantize(Decimal("0.01")):
        raise ValueError(f"not an amount with at most 2 decimals: {text!r}")
    return int(amount * 100)


def format_cents(cents):
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def split_fields(line, *, sep):
    """(account, amount, memo) of one line; the memo may contain the separator."""
    fields = [f.strip() for f in line.split(sep, 2)]
    if len(fields) < 2 or not fields[0]:
        raise ValueError(f"expected account{sep}amount[{sep}memo]")
    return fields[0], fields[1], fields[2] if len(fields) > 2 else ""


def parse_line(line, *, sep):
    """One entry: {"account", "cents", "memo"}; ValueError when the line is not one."""
    account, amount, memo = split_fields(line, sep=sep)
    return {"account": account.lower(), "cents": to_cents(amount), "memo": memo}


def parse_entries(text):
    """(entries, errors) from the posted text: one `account<SEP>amount[<SEP>memo]` per line."""
    entries, errors = [], []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            entries.append(parse_line(line, sep=SEPARATOR))
        except ValueError as exc:
            errors.append(f"line {number}: {exc}: {line!r}")
    return entries, errors


def post_entries(text):
    entries, errors = parse_entries(text)
    for error in errors:
        log.warning("entry rejected: %s", error)
    if errors and STRICT:
        return 400, {"error": errors[0], "errors": errors, "queued": 0}
    if entries:
        connect().rpush(PENDING, *(json.dumps(e) for e in entries))
    return 200, {"queued": len(entries), "rejected": len(errors), "errors": errors}


_has_lmpop = True  # until Redis says otherwise (LMPOP came with Redis 7.0)


def take_batch(client):
    """Up to SETTLE_BATCH queued entries, taken atomically: LMPOP, or on a Redis without it
    (before 7.0) LRANGE and LTRIM in one MULTI/EXEC, so two settlers still never split one."""
    global _has_lmpop
    if _has_lmpop:
        import redis

        try:
            reply = client.execute_command("LMPOP", 1, PENDING, "LEFT", "COUNT", SETTLE_BATCH)
        except redis.exceptions.ResponseError as exc:
            if "unknown command" not in str(exc).lower():
                raise
            _has_lmpop = False
            log.warning("Redis has no LMPOP (before 7.0): settling with LRANGE and LTRIM")
        else:
            return reply[1] if reply else []
    with client.pipeline(transaction=True) as pipe:
        pipe.lrange(PENDING, 0, SETTLE_BATCH - 1)
        pipe.ltrim(PENDING, SETTLE_BATCH, -1)
        batch, _trimmed = pipe.execute()
    return batch


def settle():
    client = connect()
    settled = 0
    while True:
        batch = take_batch(client)
        if not batch:
            break
        with client.pipeline(transaction=True) as pipe:
            for raw in batch:
                entry = json.loads(raw)
                pipe.hincrby(BALANCES, entry["account"], entry["cents"])
                record = {"amount": format_cents(entry["cents"]), "memo": entry.get("memo", "")}
                pipe.rpush(HISTORY + entry["account"], json.dumps(record))
            pipe.execute()
        settled += len(batch)
    return 200, {"settled": settled}


def pending():
    return 200, {"pending": connect().llen(PENDING)}


def history(account):
    records = [json.loads(r) for r in connect().lrange(HISTORY + account, 0, -1)]
    return 200, {"account": account, "entries": records}


def balances():
    raw = connect().hgetall(BALANCES)
    shown = {account: format_cents(int(cents)) for account, cents in sorted(raw.items())}
    return 200, {"tenant": TENANT, "balances": shown}


ROUTES = {
    ("GET", "/version"): lambda body: (200, {"product": "ledger", "version": __version__}),
    ("POST", "/entries"): post_entries,
    ("GET", "/pending"): lambda body: pending(),
    ("POST", "/settle"): lambda body: settle(),
    ("GET", "/balances"): lambda body: balances(),
}


class Handler(BaseHTTPRequestHandler):
    server_version = f"ledger/{__version__}"

    def send_body(self, status, text, content_type):
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def handle_route(self, method):
        path = self.path.split("?", 1)[0]
        if method == "GET" and path == "/health":
            self.send_body(200, "ok", "text/plain")
            return
        route = ROUTES.get((method, path))
        if route is None and method == "GET" and path.startswith("/history/"):
            account = unquote(path[len("/history/") :]).lower()
            route = lambda body: history(account)  # noqa: E731
        if route is None:
            status, reply = 404, {"error": f"no route {method} {path}"}
        else:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8", "replace")
            try:
                status, reply = route(body)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                status = 503 if type(exc).__module__.startswith("redis") else 500
                log.error("%s %s failed: %s", method, path, error)
                reply = {"error": error}
        self.send_body(status, json.dumps(reply, sort_keys=True) + "\n", "application/json")

    def do_GET(self):
        self.handle_route("GET")

    def do_POST(self):
        self.handle_route("POST")

    def log_message(self, format, *args):
        log.info("%s %s", self.address_string(), format % args)


def main():
    if "--version" in sys.argv[1:]:
        print(__version__)
        return 0
    handlers = [logging.StreamHandler(sys.stderr)]
    logfile = setting("LEDGER_LOG", "/var/log/ledger/ledger.log")
    try:
        os.makedirs(os.path.dirname(logfile), exist_ok=True)
        handlers.append(logging.FileHandler(logfile))
    except OSError as exc:
        print(f"ledger: not logging to {logfile}: {exc}", file=sys.stderr)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", handlers=handlers
    )
    port = int(setting("PORT", "8080"))
    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    log.info(
        "ledger %s listening on 0.0.0.0:%d (tenant %s, separator %r, strict %s, batch %d)",
        __version__,
        port,
        TENANT,
        SEPARATOR,
        STRICT,
        SETTLE_BATCH,
    )
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

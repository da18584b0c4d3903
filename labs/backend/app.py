#!/usr/bin/env python3
"""The web-tier example backend (labharness lab `backend`).

GET /health -> 200 "ok"
GET /db     -> runs `select version()` on PostgreSQL, JSON {"version": ...} (503 JSON on error)
GET /cache  -> INCR a Redis key, JSON {"key": ..., "count": n} (503 JSON on error; with
               CACHE_OPTIONAL=1, 200 JSON {"key": ..., "count": null, "cache": "unavailable",
               "error": ...} instead: the cache is optional and the request degrades)

Configuration from the environment: PORT (8080), POSTGRES_HOST (postgres), POSTGRES_PORT
(5432), POSTGRES_DB (app), POSTGRES_USER (app), POSTGRES_PASSWORD (app), REDIS_HOST (redis),
REDIS_PORT (6379), REDIS_KEY (hits), BACKEND_LOG (/var/log/backend/backend.log),
CACHE_TIMEOUT (3: seconds for connecting to Redis and for each reply, so a lost cache fails a
request fast instead of hanging), CACHE_OPTIONAL (0; 1/true/yes/on: a Redis failure degrades
/cache to 200 with "cache": "unavailable" instead of 503).
"""

import json
import logging
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__version__ = "1.0"

log = logging.getLogger("backend")


def env(name, default):
    return os.environ.get(name) or default


def env_flag(name):
    return env(name, "0").strip().lower() in ("1", "true", "yes", "on")


def cache_timeout():
    """Seconds for the Redis connect and each reply (CACHE_TIMEOUT, default 3, at least 0.1)."""
    try:
        return max(0.1, float(env("CACHE_TIMEOUT", "3")))
    except ValueError:
        return 3.0


def query_db():
    import psycopg2

    conn = psycopg2.connect(
        host=env("POSTGRES_HOST", "postgres"),
        port=int(env("POSTGRES_PORT", "5432")),
        dbname=env("POSTGRES_DB", "app"),
        user=env("POSTGRES_USER", "app"),
        password=env("POSTGRES_PASSWORD", "app"),
        connect_timeout=3,
    )
    try:
        with conn.cursor() as cur:
            cur.execute("select version()")
            return {"version": cur.fetchone()[0]}
    finally:
        conn.close()


def incr_cache():
    import redis

    key = env("REDIS_KEY", "hits")
    timeout = cache_timeout()
    client = redis.Redis(
        host=env("REDIS_HOST", "redis"),
        port=int(env("REDIS_PORT", "6379")),
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        retry_on_timeout=False,
    )
    try:
        count = int(client.incr(key))
    except Exception as exc:
        if not env_flag("CACHE_OPTIONAL"):
            raise
        error = f"{type(exc).__name__}: {exc}".strip()
        log.warning("/cache: cache unavailable, degrading (CACHE_OPTIONAL): %s", error)
        return {"key": key, "count": None, "cache": "unavailable", "error": error}
    finally:
        close = getattr(client, "close", None)  # redis-py >= 3.5; older: the pool is dropped
        if close is not None:
            close()
    return {"key": key, "count": count}


class Handler(BaseHTTPRequestHandler):
    server_version = f"labharness-backend/{__version__}"

    def send_body(self, status, body, content_type):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send_json(self, status, obj):
        self.send_body(status, json.dumps(obj) + "\n", "application/json")

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path == "/health":
            self.send_body(200, "ok", "text/plain")
            return
        if path in ("/db", "/cache"):
            try:
                self.send_json(200, query_db() if path == "/db" else incr_cache())
            except Exception as exc:
                log.error("%s failed: %s: %s", path, type(exc).__name__, exc)
                self.send_json(503, {"error": f"{type(exc).__name__}: {exc}".strip()})
            return
        self.send_json(404, {"error": f"no route {path}"})

    def log_message(self, format, *args):
        log.info("%s %s", self.address_string(), format % args)


def main():
    if "--version" in sys.argv[1:]:
        print(__version__)
        return 0
    handlers = [logging.StreamHandler(sys.stderr)]
    logfile = env("BACKEND_LOG", "/var/log/backend/backend.log")
    try:
        os.makedirs(os.path.dirname(logfile), exist_ok=True)
        handlers.append(logging.FileHandler(logfile))
    except OSError as exc:
        print(f"backend: not logging to {logfile}: {exc}", file=sys.stderr)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", handlers=handlers
    )
    port = int(env("PORT", "8080"))
    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    server.daemon_threads = True

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    log.info("backend %s listening on 0.0.0.0:%d", __version__, port)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

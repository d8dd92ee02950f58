"""A local webhook sink for Alertmanager: every page it receives is kept and can be read back.

The compose stack wires it by default, so that the shipped routing pages *something* before any
real receiver (Slack, PagerDuty, e-mail, a webhook) is configured:

* ``POST /<receiver>`` (``/pager``, ``/chat``, ``/deadman``: the paths of alerts/alertmanager.yml)
  takes Alertmanager's webhook JSON, prints one line per page on stdout
  (``docker compose logs alert-sink``) and appends it to ``--log`` (JSON lines);
* ``GET /`` answers the last pages received, newest last (``curl -s localhost:9095/``);
* ``GET /healthz`` answers ``ok``.

Standard library only: it runs with any Python 3.11+ (``python3 deploy/alert_sink.py``).
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

MAX_BODY_BYTES = 1024 * 1024
KEPT_PAGES = 200


def summary(path: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The page as one readable record: receiver path, group status, and each alert's name,
    severity, status and summary."""
    alerts = payload.get("alerts") if isinstance(payload.get("alerts"), list) else []
    return {
        "received_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "path": path,
        "receiver": payload.get("receiver"),
        "status": payload.get("status"),
        "alerts": [
            {
                "alertname": (a.get("labels") or {}).get("alertname"),
                "severity": (a.get("labels") or {}).get("severity"),
                "status": a.get("status"),
                "summary": (a.get("annotations") or {}).get("summary"),
            }
            for a in alerts if isinstance(a, dict)
        ],
    }


class Sink:
    """The pages received so far (the last ``KEPT_PAGES``), and where they are appended."""

    def __init__(self, log: Path | None) -> None:
        self.log = log
        self.pages: collections.deque[dict[str, Any]] = collections.deque(maxlen=KEPT_PAGES)
        self.lock = threading.Lock()

    def keep(self, page: dict[str, Any]) -> None:
        """Print the page, keep it in memory and append it to the log file (a file that cannot
        be written is said on stderr; the page is still printed and listed)."""
        line = json.dumps(page, ensure_ascii=False)
        print(line, flush=True)
        with self.lock:
            self.pages.append(page)
            if self.log is not None:
                try:
                    with self.log.open("a", encoding="utf-8") as out:
                        out.write(line + "\n")
                except OSError as exc:
                    print(f"alert sink: cannot append to {self.log}: {exc.strerror or exc}", file=sys.stderr, flush=True)


def handler(sink: Sink) -> type[BaseHTTPRequestHandler]:
    """The request handler class bound to ``sink``."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: Any) -> None:
            data = (body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)).encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain" if isinstance(body, str) else "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/healthz":
                self._answer(200, "ok\n")
            elif self.path == "/":
                with sink.lock:
                    self._answer(200, list(sink.pages))
            else:
                self._answer(404, {"error": "GET / lists the pages received"})

        def do_POST(self) -> None:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if not 0 < length <= MAX_BODY_BYTES:
                self._answer(400, {"error": f"a JSON body of at most {MAX_BODY_BYTES} bytes"})
                return
            try:
                payload = json.loads(self.rfile.read(length))
            except (UnicodeDecodeError, json.JSONDecodeError):
                self._answer(400, {"error": "the body is not JSON"})
                return
            if not isinstance(payload, dict):
                self._answer(400, {"error": "Alertmanager's webhook JSON object expected"})
                return
            sink.keep(summary(self.path, payload))
            self._answer(200, {"status": "received"})

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the pages themselves are the log."""

    return Handler


def main(argv: list[str] | None = None) -> int:
    """Serve until interrupted."""
    parser = argparse.ArgumentParser(description="Alertmanager webhook sink: prints and keeps every page received")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=9095, help="port to listen on (default 9095)")
    parser.add_argument("--log", type=Path, default=None, help="JSON-lines file the pages are appended to (default: none)")
    args = parser.parse_args(argv)
    server = ThreadingHTTPServer((args.host, args.port), handler(Sink(args.log)))
    print(f"alert sink listening on http://{args.host}:{args.port}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

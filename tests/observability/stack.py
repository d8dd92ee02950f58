"""A local monitoring stack for the end-to-end test: processes, a webhook sink, Prometheus' API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import httpx

T = TypeVar("T")
STOP_TIMEOUT_SECONDS = 10.0


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, every: float = 0.25) -> T:
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = probe()
            if value:
                return value
        except (httpx.HTTPError, OSError) as exc:  # not up yet
            last_error = exc
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last error: {last_error!r})")


class Proc:
    """One child process with its output in a log file; stopped by its own pid only."""

    def __init__(self, name: str, args: list[str], log_dir: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
            )

    def check_alive(self) -> None:
        """Fail with the process' output if it exited."""
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{self.log()}")

    def wait_ready(self, url: str, timeout: float = 30.0) -> None:
        """Wait until ``url`` answers 200 while the process is alive."""

        def probe() -> bool:
            self.check_alive()
            return httpx.get(url, timeout=1.0).status_code == 200

        wait_for(f"{self.name} at {url}", probe, timeout, every=0.1)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers."""
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(STOP_TIMEOUT_SECONDS)

    def log(self) -> str:
        """Everything the process wrote so far (the tail)."""
        return self.log_path.read_text(errors="replace")[-4000:]


class Webhook:
    """An HTTP server in a thread that records every Alertmanager notification by path."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with sink._lock:
                    sink.received.append((self.path, json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        """The URL of one receiver path."""
        return f"http://127.0.0.1:{self.port}{path}"

    def alerts(self, path: str, alertname: str, status: str) -> list[dict[str, Any]]:
        """Alerts named ``alertname`` with ``status`` notified to ``path`` so far."""
        with self._lock:
            notes = list(self.received)
        return [
            alert for where, note in notes if where == path for alert in note["alerts"]
            if alert["labels"].get("alertname") == alertname and alert["status"] == status
        ]

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


class PrometheusApi:
    """The few calls of Prometheus' HTTP API the test needs."""

    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant vector (or scalar) result of ``expr`` now; fails on a query error."""
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10.0)
        body = response.json()
        assert response.status_code == 200 and body["status"] == "success", (expr, body)
        result = body["data"]["result"]
        if body["data"]["resultType"] == "scalar":
            return [{"metric": {}, "value": result}]
        return list(result)

    def value(self, expr: str) -> float | None:
        """The single value of ``expr`` now, or None when the result is empty."""
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def last_evaluation(self, alertname: str) -> str | None:
        """When Prometheus last evaluated the alerting rule ``alertname`` (its own clock)."""
        response = httpx.get(f"{self.url}/api/v1/rules", params={"type": "alert"}, timeout=10.0)
        body = response.json()
        assert response.status_code == 200 and body["status"] == "success", body
        for group in body["data"]["groups"]:
            for rule in group["rules"]:
                if rule["name"] == alertname:
                    return str(rule["lastEvaluation"])
        return None

    def exemplars(self, expr: str, seconds: float) -> list[dict[str, Any]]:
        """Exemplars of ``expr`` over the last ``seconds``."""
        now = time.time()
        response = httpx.get(
            f"{self.url}/api/v1/query_exemplars",
            params={"query": expr, "start": now - seconds, "end": now}, timeout=10.0,
        )
        body = response.json()
        assert body["status"] == "success", body
        return [e for series in body["data"] for e in series["exemplars"]]

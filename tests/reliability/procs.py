"""Real ``rdv serve`` processes on free local ports, for multi-replica and crash tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support import free_port

START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 15.0


def base_env(data_dir: Path, extra: dict[str, str]) -> dict[str, str]:
    """The process environment: this one without any rdv setting, plus ``extra``."""
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith("RDV_") and k not in ("SESSION_TTL_MINUTES", "PROMETHEUS_MULTIPROC_DIR")
    }
    env.update({"RDV_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


class Replica:
    """One ``rdv serve`` process; restartable on the same port after a kill."""

    def __init__(
        self,
        name: str,
        tmp_path: Path,
        env: dict[str, str],
        *,
        drain_seconds: float = 0.5,
        graceful_seconds: int = 10,
        workers: int = 1,
    ) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        data_dir = tmp_path / "data"
        data_dir.mkdir(exist_ok=True)
        self.env = base_env(data_dir, env)
        self.log_path = tmp_path / f"{name}.log"
        self.args = [
            sys.executable, "-m", "service.cli", "serve",
            "--host", "127.0.0.1", "--port", str(self.port),
            "--drain-seconds", str(drain_seconds), "--graceful-seconds", str(graceful_seconds),
            *(["--workers", str(workers)] if workers > 1 else []),
        ]
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        """Spawn the process and wait until ``/readyz`` answers 200."""
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.args, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, cwd=Path(__file__).resolve().parents[2],
        )
        log.close()
        self.starts += 1
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"{self.name} not ready after {START_TIMEOUT_SECONDS}s:\n{self.log()}")

    @property
    def pid(self) -> int:
        """The running process id."""
        assert self.proc is not None
        return self.proc.pid

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the process."""
        assert self.proc is not None
        os.kill(self.proc.pid, sig)

    def kill(self) -> None:
        """``kill -9``: no drain, no cleanup."""
        self.signal(signal.SIGKILL)
        self.wait(STOP_TIMEOUT_SECONDS)

    def wait(self, timeout: float) -> int:
        """Wait for the process to exit by itself; its exit code."""
        assert self.proc is not None
        return self.proc.wait(timeout)

    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not exit in time."""
        if not self.alive():
            return
        assert self.proc is not None
        try:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(STOP_TIMEOUT_SECONDS)

    def log(self) -> str:
        """Everything the process wrote so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def metrics(self) -> str:
        """The Prometheus exposition text of this replica."""
        response = httpx.get(f"{self.url}/metrics", timeout=5.0)
        assert response.status_code == 200, response.text
        return response.text


def metric_sum(exposition: str, name: str, **labels: Any) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name != name:
                continue
            if all(sample.labels.get(k) == str(v) for k, v in labels.items()):
                total += sample.value
    return total

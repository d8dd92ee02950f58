"""Start-up as a platform runs it: ``rdv serve`` listens on ``$PORT``, an ambiguous SQLite URL
is refused with one line naming the variable, and ``rdv check-config`` catches the same
failures before a deploy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.reliability.procs import base_env
from tests.support import free_port, wait_ready

ROOT = Path(__file__).resolve().parents[2]


def rdv(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``rdv <args>`` as its own process in ``cwd``."""
    return subprocess.run([sys.executable, "-m", "service.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def test_serve_listens_on_port_from_the_environment(tmp_path: Path) -> None:
    """Without ``--port``, ``rdv serve`` takes ``$PORT`` (what Railway sets) and answers /readyz."""
    port = free_port()
    env = base_env(tmp_path / "data", {"PORT": str(port)})
    proc = subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--host", "127.0.0.1"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_ready(f"http://127.0.0.1:{port}", proc)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert f"rdv listening on http://127.0.0.1:{port}" in err


@pytest.mark.parametrize("command", [("check-config",), ("serve",)])
def test_a_relative_sqlite_path_outside_the_data_dir_is_refused(tmp_path: Path, command: tuple[str, ...]) -> None:
    """``sqlite:///data/rdv.db`` with the data directory on a volume at another place: one line
    naming RDV_DATABASE_URL and the four-slash form, exit 2, nothing served."""
    volume = tmp_path / "volume"
    env = base_env(volume, {"RDV_DATABASE_URL": "sqlite:///data/rdv.db", "PORT": str(free_port())})
    done = rdv(tmp_path, env, *command)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rdv: configuration error: RDV_DATABASE_URL='sqlite:///data/rdv.db'")
    assert "sqlite:////data/rdv.db" in lines[0] and "RDV_DATA_DIR" in lines[0]
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    ("url", "data_dir"),
    [("sqlite:///{tmp}/abs/rdv.db", "data"), ("sqlite:///data/rdv.db", "data"), (None, "data")],
    ids=["absolute", "relative-inside-data-dir", "default"],
)
def test_check_config_accepts_unambiguous_sqlite_files(tmp_path: Path, url: str | None, data_dir: str) -> None:
    """An absolute file, a relative one inside the data directory, or none: valid, the store
    opens and its file is named."""
    extra = {"RDV_DATA_DIR": data_dir}
    if url is not None:
        extra["RDV_DATABASE_URL"] = url.format(tmp=tmp_path)
    done = rdv(tmp_path, base_env(tmp_path / data_dir, extra), "check-config")
    assert done.returncode == 0, done.stderr
    assert "configuration valid" in done.stdout and "port 8000" in done.stdout
    if url is not None and url.startswith("sqlite:///{tmp}"):
        absolute = tmp_path / "abs" / "rdv.db"
        assert absolute.is_file() and str(absolute) in done.stdout


@pytest.mark.parametrize(
    ("extra", "variable"),
    [({"PORT": "eighty"}, "PORT='eighty'"), ({"RDV_DATABASE_URL": "sqlite:////proc/rdv/rdv.db"}, "RDV_DATABASE_URL")],
    ids=["bad-port", "store-does-not-open"],
)
def test_check_config_catches_start_up_failures(tmp_path: Path, extra: dict[str, str], variable: str) -> None:
    """A bad ``$PORT`` or a store that cannot open fails ``rdv check-config`` as it would
    fail ``rdv serve``: exit 2, one line naming the variable."""
    done = rdv(tmp_path, base_env(tmp_path / "data", extra), "check-config")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and variable in lines[0], done.stderr


def test_railway_configuration_builds_the_image_and_checks_readiness() -> None:
    """railway.json builds the Dockerfile, starts without a fixed port (so $PORT applies), checks
    /readyz and requires the volume the SQLite file lives on."""
    config = json.loads((ROOT / "railway.json").read_text("utf-8"))
    assert config["build"] == {"builder": "DOCKERFILE", "dockerfilePath": "Dockerfile"}
    deploy = config["deploy"]
    assert deploy["startCommand"] == "rdv serve --host 0.0.0.0" and "--port" not in deploy["startCommand"]
    assert deploy["healthcheckPath"] == "/readyz"
    assert deploy["requiredMountPath"] == "/data"
    assert "RDV_DATA_DIR=/data" in (ROOT / "Dockerfile").read_text("utf-8")


# Each start-up failure, the variable its line must name, and a word of the cause.
START_UP_FAILURES = {
    "data-dir-is-a-file": ({"RDV_DATA_DIR": "{tmp}/volume-file"}, "RDV_DATA_DIR", "not a directory"),
    "data-dir-cannot-be-created": ({"RDV_DATA_DIR": "/proc/rdv-data"}, "RDV_DATA_DIR", "cannot write"),
    "postgresql-unreachable": ({"RDV_DATABASE_URL": "postgresql://rdv:hunter2-password@127.0.0.1:1/rdv"},
                               "RDV_DATABASE_URL", "cannot connect"),
    "unknown-traces-exporter": ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER", "otlp, console, none"),
    "trace-ui-url-without-scheme": ({"RDV_TRACE_UI_URL": "localhost:16686"}, "RDV_TRACE_UI_URL", "http://"),
    "trace-ui-url-bad-port": ({"RDV_TRACE_UI_URL": "http://jaeger:port/"}, "RDV_TRACE_UI_URL", "http://"),
}


@pytest.mark.parametrize("command", ["serve", "check-config"])
@pytest.mark.parametrize("case", sorted(START_UP_FAILURES))
def test_every_start_up_failure_is_one_line_naming_the_variable(tmp_path: Path, case: str, command: str) -> None:
    """``rdv serve`` and ``rdv check-config`` stop on the same bad values: exit 2, stderr is one
    line naming the variable and the cause, no traceback, no password echoed, nothing served."""
    (tmp_path / "volume-file").write_text("not a directory", "utf-8")
    extra, variable, cause = START_UP_FAILURES[case]
    env = base_env(tmp_path / "data", {k: v.format(tmp=tmp_path) for k, v in extra.items()})
    env["PORT"] = str(free_port())
    done = rdv(tmp_path, env, command)
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"rdv: configuration error: {variable}") and cause in lines[0], lines[0]
    assert "Traceback" not in done.stderr and "hunter2" not in done.stderr
    assert "listening" not in done.stdout + done.stderr


def test_valid_tracing_settings_are_accepted(tmp_path: Path) -> None:
    """The values the README documents pass: a trace UI base URL and each exporter name."""
    for exporter in ("none", "console", "OTLP"):
        env = base_env(tmp_path / "data", {"OTEL_TRACES_EXPORTER": exporter,
                                           "RDV_TRACE_UI_URL": "https://jaeger.example.org:16686/"})
        done = rdv(tmp_path, env, "check-config")
        assert done.returncode == 0, done.stderr


# Railway's config-as-code reference (docs.railway.com, "Config as Code"): the keys it documents.
RAILWAY_BUILD_KEYS = {"builder", "watchPatterns", "buildCommand", "dockerfilePath", "railpackVersion",
                      "nixpacksConfigPath", "nixpacksPlan", "nixpacksVersion"}
RAILWAY_DEPLOY_KEYS = {"startCommand", "preDeployCommand", "multiRegionConfig", "healthcheckPath",
                       "healthcheckTimeout", "restartPolicyType", "restartPolicyMaxRetries", "cronSchedule",
                       "overlapSeconds", "drainingSeconds"}
# Not on that page, but fields of the service deploy configuration Railway itself writes (its
# CLI's DeployConfig, its database templates): the README says so.
RAILWAY_DEPLOY_MANIFEST_KEYS = {"requiredMountPath", "numReplicas"}


def test_railway_configuration_uses_only_known_keys() -> None:
    """railway.json: the schema URL Railway documents, documented build keys and values, and
    deploy keys that are documented or part of Railway's own deploy manifest."""
    config = json.loads((ROOT / "railway.json").read_text("utf-8"))
    assert config["$schema"] == "https://railway.com/railway.schema.json"
    assert set(config) == {"$schema", "build", "deploy"}
    assert set(config["build"]) <= RAILWAY_BUILD_KEYS and config["build"]["builder"] in ("RAILPACK", "DOCKERFILE")
    deploy = config["deploy"]
    assert set(deploy) <= RAILWAY_DEPLOY_KEYS | RAILWAY_DEPLOY_MANIFEST_KEYS, set(deploy) - RAILWAY_DEPLOY_KEYS
    assert deploy["restartPolicyType"] in ("ON_FAILURE", "ALWAYS", "NEVER")
    assert isinstance(deploy["healthcheckTimeout"], int) and isinstance(deploy["restartPolicyMaxRetries"], int)
    readme = (ROOT / "README.md").read_text("utf-8")
    for key in set(deploy) & RAILWAY_DEPLOY_MANIFEST_KEYS:
        assert f"`deploy.{key}`" in readme, key

"""docker-compose.yml read as compose would, without a Docker daemon: every dependency waits for a
health check, every URL a service uses names a service and a port it listens on, published
ports agree with the listeners, services without a login stay on 127.0.0.1, Grafana asks for a
password, and the default receiver (the local alert sink) really receives Alertmanager's pages."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from tests.observability.conftest import ROOT, load_yaml, run, tool
from tests.observability.stack import Proc, wait_for
from tests.observability.test_deploy import (
    COMPOSE,
    SERVICES,
    host_path,
    mounts,
    published,
    substituted,
)
from tests.support import free_port

# Ports an image listens on by its own default (not set by a command line or a mounted file).
IMAGE_DEFAULTS = {"grafana": {3000}, "jaeger": {16686, 13133}}
# Services without a login of their own: published on 127.0.0.1 unless the variable says otherwise.
LOCAL_BY_DEFAULT = {"prometheus": "RDV_PROMETHEUS_BIND", "alertmanager": "RDV_ALERTMANAGER_BIND",
                    "jaeger": "RDV_JAEGER_BIND"}
# Links opened by the operator's browser on the host, not by a container.
BROWSER_LINKS = {("rdv", "RDV_TRACE_UI_URL")}
_HOST_PORT = re.compile(r"\b(?:https?://)?([a-z][a-z0-9.-]*|\d+\.\d+\.\d+\.\d+):(\d{2,5})\b")


def namespace(service: str) -> str:
    """The service whose network namespace ``service`` runs in (``network_mode: service:X``)."""
    mode = SERVICES[service].get("network_mode", "")
    return str(mode).removeprefix("service:") if str(mode).startswith("service:") else service


def _flag_ports(args: list[str], *names: str) -> set[int]:
    found = set()
    for i, arg in enumerate(args):
        for name in names:
            value = arg.split("=", 1)[1] if arg.startswith(f"{name}=") else (
                args[i + 1] if arg == name and i + 1 < len(args) else None)
            if value is not None:
                found.add(int(value.rsplit(":", 1)[-1]))
    return found


def own_listeners(service: str) -> set[int]:
    """Ports the service's process listens on: from its command line, its mounted configuration,
    or its image's default."""
    spec = SERVICES[service]
    command = [str(a) for a in spec.get("command", [])]
    ports = set(IMAGE_DEFAULTS.get(service, set()))
    ports |= _flag_ports(command, "--port", "--web.listen-address")
    ports |= {int(m.group(1)) for a in command for m in [re.search(r"endpoint=[\d.]+:(\d+)$", a)] if m}
    if service == "otel-collector":
        config = load_yaml(host_path(service, command[0].removeprefix("--config=")))
        for proto in config["receivers"]["otlp"]["protocols"].values():
            ports.add(int(proto["endpoint"].rsplit(":", 1)[-1]))
        ports.add(int(config["extensions"]["health_check"]["endpoint"].rsplit(":", 1)[-1]))
        for reader in config["service"]["telemetry"]["metrics"]["readers"]:
            ports.add(int(reader["pull"]["exporter"]["prometheus"]["port"]))
    if service == "radicale":
        dockerfile = (ROOT / spec["build"] / "Dockerfile").read_text("utf-8")
        ports |= {int(p) for p in re.findall(r"--server-hosts=[\d.]+:(\d+)", dockerfile)}
    return ports


def listeners(service: str) -> set[int]:
    """Ports answering in the service's network namespace (services sharing it included)."""
    home = namespace(service)
    return set().union(*(own_listeners(s) for s in SERVICES if namespace(s) == home))


def urls_used_by(service: str) -> list[tuple[str, str, str, int]]:
    """(where, text, host, port) of every host:port the service is configured to reach: its
    environment, its command and health check, and the configuration files mounted into it."""
    spec = SERVICES[service]
    found: list[tuple[str, str, str, int]] = []
    texts: list[tuple[str, str]] = [(f"environment {k}", substituted(str(v))) for k, v in
                                    (spec.get("environment") or {}).items()]
    texts += [("command", str(a)) for a in spec.get("command", [])]
    texts += [("healthcheck", str(a)) for a in (spec.get("healthcheck") or {}).get("test", [])]
    for source in mounts(service).values():
        path = ROOT / source
        # Mounted directories: Grafana reads every provisioning file; Prometheus reads only the
        # rule files its configuration names from alerts/ (rules reach no host), not the
        # Alertmanager configuration that sits beside them.
        if path.is_dir() and "provisioning" not in source:
            continue
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.suffix in (".yml", ".toml"))
        # Comments are for people (e.g. "open http://localhost:5232"), not what the service reaches.
        texts += [(str(f.relative_to(ROOT)), "\n".join(
            line for line in f.read_text("utf-8").splitlines() if not line.lstrip().startswith("#")
        )) for f in files]
    for where, text in texts:
        for match in _HOST_PORT.finditer(text):
            host, port = match.group(1), int(match.group(2))
            if host in ("0.0.0.0",) or host.endswith((".example", ".example.org")):
                continue
            found.append((where, match.group(0), host, port))
    return found


def test_every_dependency_waits_for_a_health_check() -> None:
    """``depends_on`` in the long form with ``condition: service_healthy``, on a service that
    exists and declares a health check; a shared network names an existing service."""
    seen = 0
    for name, spec in SERVICES.items():
        depends = spec.get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions"
        for target, rule in depends.items():
            assert target in SERVICES, (name, target)
            assert rule == {"condition": "service_healthy"}, (name, target, rule)
            assert SERVICES[target].get("healthcheck", {}).get("test"), f"{target} has no healthcheck"
            assert not SERVICES[target].get("profiles"), f"{name} depends on optional {target}"
            seen += 1
        if namespace(name) != name:
            assert namespace(name) in SERVICES and namespace(name) in depends
    assert seen >= 4


def test_published_and_exposed_ports_are_listened_on() -> None:
    """Every container port published or exposed is one the service (or the service whose
    network it shares) listens on, and health checks probe such a port."""
    for name, spec in SERVICES.items():
        ports = listeners(name)
        for mapping in spec.get("ports", []):
            assert published(mapping)[2] in ports, (name, mapping, ports)
        for port in spec.get("expose", []):
            assert int(port) in ports, (name, port, ports)
        for arg in (spec.get("healthcheck") or {}).get("test", []):
            for match in _HOST_PORT.finditer(str(arg)):
                assert match.group(1) in ("127.0.0.1", "localhost") and int(match.group(2)) in ports, (name, arg)
        if namespace(name) != name:
            assert not spec.get("ports"), f"{name} shares a network: its ports are published by {namespace(name)}"


def test_every_url_names_a_service_and_a_port_it_listens_on() -> None:
    """URLs and host:port pairs in the environment, commands, health checks and mounted files:
    another service's name with one of its listening ports, or this container's own namespace
    (127.0.0.1 / localhost); browser links point at a port published on the host."""
    checked = 0
    host_ports = {published(m)[1] for s in SERVICES.values() for m in s.get("ports", [])}
    for name in SERVICES:
        for where, text, host, port in urls_used_by(name):
            if (name, where.removeprefix("environment ")) in BROWSER_LINKS:
                assert host == "localhost" and port in host_ports, (name, where, text)
            elif host in ("127.0.0.1", "localhost"):
                assert port in listeners(name), (name, where, text)
            else:
                assert host in SERVICES, (name, where, text)
                assert port in listeners(host), (name, where, text, listeners(host))
            checked += 1
    assert checked >= 15


def test_services_without_a_login_listen_on_localhost_unless_asked() -> None:
    """Prometheus, Alertmanager (and the sink in its network) and Jaeger: ``127.0.0.1`` by default,
    another address only through their variable; rdv and Grafana (which asks a password) are public."""
    for name, variable in LOCAL_BY_DEFAULT.items():
        for mapping in SERVICES[name]["ports"]:
            assert str(mapping).startswith(f"${{{variable}:-127.0.0.1}}:"), (name, mapping)
            assert published(mapping)[0] == "127.0.0.1"
    assert published(SERVICES["rdv"]["ports"][0])[0] == "0.0.0.0"


def test_grafana_asks_for_the_admin_password_from_the_environment() -> None:
    """No anonymous access, no sign-up, and compose refuses to start Grafana without
    GRAFANA_ADMIN_PASSWORD (``${…:?…}``): never the image's admin/admin."""
    env = SERVICES["grafana"]["environment"]
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false" and env["GF_USERS_ALLOW_SIGN_UP"] == "false"
    assert "GF_AUTH_ANONYMOUS_ORG_ROLE" not in env
    assert re.fullmatch(r"\$\{GRAFANA_ADMIN_PASSWORD:\?[^}]+\}", env["GF_SECURITY_ADMIN_PASSWORD"])


@pytest.mark.parametrize(("service", "binary"), [("prometheus", "promtool"), ("alertmanager", "amtool")])
def test_monitoring_images_are_the_versions_that_check_the_configuration(service: str, binary: str) -> None:
    """The pinned image runs the version whose promtool/amtool checks the rules and routing."""
    version = re.search(r"version (\d+\.\d+\.\d+)", run(tool(binary), "--version").stdout + run(
        tool(binary), "--version").stderr)
    assert version, binary
    assert SERVICES[service]["image"].endswith(f":v{version.group(1)}")


def _sink_flags() -> tuple[str, int, str]:
    command = [str(a) for a in SERVICES["alert-sink"]["command"]]
    value = {command[i]: command[i + 1] for i in range(len(command) - 1) if command[i].startswith("--")}
    return value["--host"], int(value["--port"]), value["--log"]


def test_the_default_receiver_is_the_local_sink() -> None:
    """The mounted routing pages 127.0.0.1:9095 from inside Alertmanager's network, where the
    sink listens (it shares that network), and the sink keeps its pages on a named volume."""
    host, port, log = _sink_flags()
    assert namespace("alert-sink") == "alertmanager"
    config = load_yaml(host_path("alertmanager", "/etc/alertmanager/alertmanager.yml"))
    urls = [w["url"] for r in config["receivers"] for w in r.get("webhook_configs", [])]
    assert {r["name"] for r in config["receivers"]} == {"pager", "chat", "deadman"}
    for url in urls:
        parts = urlsplit(url)
        assert (parts.hostname, parts.port) == (host, port) and port in listeners("alertmanager"), url
    assert host_path("alert-sink", "/etc/rdv/alert_sink.py") == (ROOT / "deploy/alert_sink.py").resolve()
    volume, target = next(v for v in SERVICES["alert-sink"]["volumes"] if not v.startswith(".")).split(":")[:2]
    assert volume in (COMPOSE.get("volumes") or {}) and str(Path(log).parent) == target
    # A named volume takes the ownership of the image's directory: the image's user must own it.
    dockerfile = (ROOT / "Dockerfile").read_text("utf-8")
    assert re.search(rf"mkdir -p {re.escape(target)}\b", dockerfile) and re.search(rf"chown rdv {re.escape(target)}\b",
                                                                                   dockerfile)
    assert re.search(r"^USER rdv$", dockerfile, re.MULTILINE)


def test_documented_real_receivers_pass_amtool(tmp_path: Path) -> None:
    """The Slack, PagerDuty, e-mail and webhook receivers of the shipped example, put in place of
    the generated ones, make a configuration amtool accepts, with the same three names."""
    example = load_yaml(ROOT / "deploy/alertmanager-receivers.example.yml")["receivers"]
    assert {r["name"] for r in example} == {"pager", "chat", "deadman"}
    kinds = {key for r in example for key in r if key.endswith("_configs")}
    assert kinds == {"pagerduty_configs", "email_configs", "slack_configs", "webhook_configs"}
    config = load_yaml(ROOT / "alerts/alertmanager.yml")
    config["receivers"] = example
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config), "utf-8")
    checked = run(tool("amtool"), "check-config", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_sink_keeps_pages_and_refuses_what_is_not_a_page(tmp_path: Path) -> None:
    """A page is printed, appended to the log file and listed by ``GET /``; a body that is not
    Alertmanager's JSON object is refused with 400 and kept nowhere."""
    port = free_port()
    log = tmp_path / "pages.jsonl"
    sink = Proc("alert-sink", [sys.executable, str(ROOT / "deploy/alert_sink.py"), "--port", str(port),
                               "--log", str(log)], tmp_path)
    try:
        sink.wait_ready(f"http://127.0.0.1:{port}/healthz")
        base = f"http://127.0.0.1:{port}"
        assert httpx.post(f"{base}/pager", content=b"not json").status_code == 400
        assert httpx.post(f"{base}/pager", json=[1, 2]).status_code == 400
        page = {"receiver": "pager", "status": "firing", "alerts": [
            {"status": "firing", "labels": {"alertname": "RdvDown", "severity": "critical"},
             "annotations": {"summary": "rdv is down"}}]}
        assert httpx.post(f"{base}/pager", json=page).status_code == 200
        kept = httpx.get(f"{base}/").json()
    finally:
        sink.stop()
    assert [(p["path"], p["alerts"][0]["alertname"], p["alerts"][0]["summary"]) for p in kept] == [
        ("/pager", "RdvDown", "rdv is down")]
    assert [json.loads(line)["alerts"][0]["severity"] for line in log.read_text("utf-8").splitlines()] == ["critical"]
    assert '"alertname": "RdvDown"' in sink.log()


def test_the_shipped_routing_pages_the_sink(tmp_path: Path) -> None:
    """A real Alertmanager with the mounted routing (only the sink's port and the waits made
    short) and the sink: a critical alert reaches /pager, the watchdog /deadman, a warning /chat."""
    alertmanager_bin = tool("prometheus-alertmanager")
    _, sink_port, _ = _sink_flags()
    port, am_port = free_port(), free_port()
    text = (ROOT / "alerts/alertmanager.yml").read_text("utf-8")
    text = text.replace(f"127.0.0.1:{sink_port}/", f"127.0.0.1:{port}/")
    text = re.sub(r"group_wait: \S+", "group_wait: 1s", text)
    assert f"127.0.0.1:{port}/pager" in text
    config = tmp_path / "alertmanager.yml"
    config.write_text(text, "utf-8")
    sink = Proc("alert-sink", [sys.executable, str(ROOT / "deploy/alert_sink.py"), "--port", str(port)], tmp_path)
    am = Proc("alertmanager", [
        alertmanager_bin, f"--config.file={config}", f"--storage.path={tmp_path / 'am-data'}",
        f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address=",
    ], tmp_path)
    try:
        sink.wait_ready(f"http://127.0.0.1:{port}/healthz")
        am.wait_ready(f"http://127.0.0.1:{am_port}/-/ready")
        alerts = [{"labels": {"alertname": name, "severity": severity}, "annotations": {"summary": name}}
                  for name, severity in (("RdvDown", "critical"), ("RdvWatchdog", "none"),
                                         ("RdvSlotTakenHigh", "warning"))]
        assert httpx.post(f"http://127.0.0.1:{am_port}/api/v2/alerts", json=alerts).status_code == 200

        def routed() -> dict[str, set[str]] | None:
            got: dict[str, set[str]] = {}
            for page in httpx.get(f"http://127.0.0.1:{port}/").json():
                got.setdefault(page["path"], set()).update(a["alertname"] for a in page["alerts"])
            return got if len(got) == 3 else None

        got = wait_for("pages at the sink", routed, 45.0)
    finally:
        am.stop()
        sink.stop()
    assert got == {"/pager": {"RdvDown"}, "/deadman": {"RdvWatchdog"}, "/chat": {"RdvSlotTakenHigh"}}

"""docker-compose stack: structure, pinned images, mounted files present and exercised, wiring."""

from __future__ import annotations

import inspect
import posixpath
import re
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

import telemetry.metrics
from telemetry import dashboards as d
from tests.observability.conftest import ROOT, load_yaml, run, tool

COMPOSE = load_yaml(ROOT / "docker-compose.yml")
SERVICES: dict[str, Any] = COMPOSE["services"]
PINNED = re.compile(r"^[a-z0-9./-]+:v?\d+\.\d+\.\d+$")


def mounts(service: str) -> dict[str, str]:
    """Bind mounts of a service: container path → host path (relative to the repository)."""
    out = {}
    for volume in SERVICES[service].get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            out[target] = source
    return out


def flag(service: str, name: str) -> str:
    """The value of ``--name=value`` in a service's command."""
    values = [arg.split("=", 1)[1] for arg in SERVICES[service]["command"] if arg.startswith(f"{name}=")]
    assert len(values) == 1, (service, name)
    return values[0]


def host_path(service: str, container_path: str) -> Path:
    """The repository file a container path of ``service`` resolves to through its bind mounts."""
    target = PurePosixPath(container_path)
    for mounted, source in mounts(service).items():
        if target == PurePosixPath(mounted) or PurePosixPath(mounted) in target.parents:
            return (ROOT / source / target.relative_to(mounted)).resolve()
    raise AssertionError(f"{container_path} is not mounted into {service}")


def container_ports(service: str) -> set[int]:
    """Container-side ports a service publishes or exposes."""
    ports = {published(p)[2] for p in SERVICES[service].get("ports", [])}
    return ports | {int(p) for p in SERVICES[service].get("expose", [])}


_VARIABLE = re.compile(r"\$\{(\w+)(?::?-([^}]*)|:?\?[^}]*)?\}")


def substituted(text: str) -> str:
    """``text`` as compose reads it with no variable set: ``${X:-default}`` → default."""
    return _VARIABLE.sub(lambda m: m.group(2) or "", text)


def published(mapping: object) -> tuple[str, int, int]:
    """(host address, host port, container port) of a ``ports`` entry, defaults applied."""
    parts = substituted(str(mapping)).split(":")
    address = parts[0] if len(parts) == 3 else "0.0.0.0"
    return address, int(parts[-2]), int(parts[-1])


def test_the_stack_has_every_service() -> None:
    """Service, collector, trace store, Prometheus, Alertmanager and Grafana; Radicale only in
    the ``calendar`` profile."""
    assert set(SERVICES) == {
        "rdv", "otel-collector", "jaeger", "prometheus", "alertmanager", "alert-sink", "grafana", "radicale",
    }
    assert [n for n, s in SERVICES.items() if s.get("profiles")] == ["radicale"]
    assert SERVICES["radicale"]["profiles"] == ["calendar"]


def test_every_image_is_pinned_to_an_exact_version() -> None:
    """No ``latest``, no floating major tag; the service itself (and the alert sink, a script
    run by its Python) is built from the Dockerfile, Radicale from deploy/radicale with the
    version the tests run."""
    for name, service in SERVICES.items():
        if name in ("rdv", "alert-sink"):
            assert service["build"] == "." and "image" not in service
            continue
        if name == "radicale":
            assert service["build"] == "./deploy/radicale" and "image" not in service
            continue
        assert PINNED.match(service["image"]), service["image"]
    dockerfile = (ROOT / "deploy/radicale/Dockerfile").read_text("utf-8")
    pinned = re.search(r"radicale==([\d.]+)", dockerfile)
    assert pinned and f'"radicale=={pinned.group(1)}"' in (ROOT / "pyproject.toml").read_text("utf-8")


def test_the_calendar_profile_books_into_its_seeded_calendar(tmp_path: Path) -> None:
    """The compose practice file points at the Radicale service's seeded calendar, and a real
    Radicale on that seed serves a calendar of that display name where the file says."""
    import json
    import shutil
    from urllib.parse import urlsplit

    from service.config import load_practice
    from tests.calendars.conftest import Radicale

    practice = load_practice(ROOT / "deploy/radicale/practice.toml").calendar
    assert practice.kind == "caldav" and urlsplit(practice.url or "").hostname == "radicale"
    assert urlsplit(practice.url or "").port in container_ports("radicale")
    assert SERVICES["rdv"]["environment"]["RDV_PRACTICE_FILE"] == "${RDV_PRACTICE_FILE:-}"
    assert practice.password_env in SERVICES["rdv"]["environment"]
    seed = ROOT / "deploy/radicale/collections"
    props = json.loads(next(seed.rglob(".Radicale.props")).read_text("utf-8"))
    assert props["D:displayname"] == practice.calendar and props["tag"] == "VCALENDAR"
    server = Radicale(tmp_path)
    shutil.copytree(seed, tmp_path / "collections")
    server.start()
    try:
        import caldav

        with caldav.DAVClient(url=server.url, username=practice.username, password="any") as client:
            names = [c.get_display_name() for c in client.principal().calendars()]
    finally:
        server.stop()
    assert practice.calendar in names


def test_every_mounted_file_exists_and_named_volumes_are_declared() -> None:
    """Bind-mount sources exist in the repository; other volumes are declared at the top level."""
    declared = set(COMPOSE.get("volumes") or {})
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), (name, source)
            else:
                assert source in declared, (name, source)


def test_published_ports_are_well_formed_and_unique() -> None:
    """``[address:]host:container`` with valid ports, no host port used twice."""
    hosts = []
    for service in SERVICES.values():
        for mapping in service.get("ports", []):
            _, host, container = published(mapping)
            assert 0 < host < 65536 and 0 < container < 65536
            hosts.append(host)
    assert len(hosts) == len(set(hosts))
    assert {3000, 8000, 9090, 9093, 9095, 16686} <= set(hosts)


def test_service_command_matches_the_dockerfile() -> None:
    """The image serves on 0.0.0.0:8000; compose publishes that port."""
    dockerfile = (ROOT / "Dockerfile").read_text("utf-8")
    assert re.search(r"^FROM python:3\.11-slim$", dockerfile, re.MULTILINE)
    assert "pip install ." in dockerfile
    assert 'CMD ["rdv", "serve", "--host", "0.0.0.0", "--port", "8000"]' in dockerfile
    for source in re.findall(r"^COPY (.+) \S+$", dockerfile, re.MULTILINE):
        assert all((ROOT / part).exists() for part in source.split()), source
    ignored = (ROOT / ".dockerignore").read_text("utf-8").split()
    assert {".venv", ".git", "data"} <= set(ignored)
    assert SERVICES["rdv"]["command"] == ["rdv", "serve", "--host", "0.0.0.0", "--port", "8000"]
    assert 8000 in container_ports("rdv")


def test_prometheus_config_is_valid_and_mounted_as_checked() -> None:
    """``promtool check config`` passes, and relative rule paths resolve the same in the container."""
    config_in_container = flag("prometheus", "--config.file")
    config = host_path("prometheus", config_in_container)
    assert config == (ROOT / "deploy/prometheus.yml").resolve()
    checked = run(tool("promtool"), "check", "config", str(config))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 1 rule files found" in checked.stdout
    for rule_file in load_yaml(config)["rule_files"]:
        in_container = posixpath.normpath(posixpath.join(posixpath.dirname(config_in_container), rule_file))
        assert host_path("prometheus", in_container) == (config.parent / rule_file).resolve()
    assert "--enable-feature=exemplar-storage" in SERVICES["prometheus"]["command"]


def test_prometheus_scrapes_rdv_and_alerts_alertmanager() -> None:
    """Targets name compose services on the ports they listen on."""
    config = load_yaml(ROOT / "deploy/prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["rdv"]["static_configs"][0]["targets"] == ["rdv:8000"]
    for job in jobs.values():
        for target in job["static_configs"][0]["targets"]:
            host, port = target.split(":")
            if host != "localhost":
                assert int(port) in container_ports(host), target
    managers = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert managers == ["alertmanager:9093"] and 9093 in container_ports("alertmanager")


def test_alertmanager_mounts_the_checked_configuration() -> None:
    """The mounted file is alerts/alertmanager.yml, and amtool accepts it."""
    config = host_path("alertmanager", flag("alertmanager", "--config.file"))
    assert config == (ROOT / "alerts/alertmanager.yml").resolve()
    checked = run(tool("amtool"), "check-config", str(config))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_collector_pipeline_is_complete_and_wired() -> None:
    """OTLP in from rdv, every pipeline component defined, OTLP out to Jaeger's port."""
    config_in_container = SERVICES["otel-collector"]["command"][0].removeprefix("--config=")
    config = load_yaml(host_path("otel-collector", config_in_container))
    pipeline = config["service"]["pipelines"]["traces"]
    for kind in ("receivers", "processors", "exporters"):
        assert pipeline[kind] and set(pipeline[kind]) <= set(config[kind]), kind
    assert set(config["service"]["extensions"]) <= set(config["extensions"])
    assert pipeline["processors"][0] == "memory_limiter" and pipeline["processors"][-1] == "batch"
    endpoint = SERVICES["rdv"]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"]
    assert endpoint == "http://otel-collector:4318"
    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"] == "0.0.0.0:4318"
    host, port = config["exporters"]["otlp/jaeger"]["endpoint"].split(":")
    assert host == "jaeger" and port == "4317"
    assert any("grpc.endpoint=0.0.0.0:4317" in arg for arg in SERVICES["jaeger"]["command"])


def test_grafana_provisioning_is_mounted_and_consistent() -> None:
    """Datasources with fixed uids and compose URLs; the provider reads the mounted dashboards."""
    datasources_dir = host_path("grafana", "/etc/grafana/provisioning/datasources")
    providers_dir = host_path("grafana", "/etc/grafana/provisioning/dashboards")
    sources = [ds for f in sorted(datasources_dir.glob("*.yml")) for ds in load_yaml(f)["datasources"]]
    by_uid = {ds["uid"]: ds for ds in sources}
    assert {d.PROMETHEUS_UID, d.TRACES_UID, d.ALERTMANAGER_UID} <= set(by_uid)
    expected = {d.PROMETHEUS_UID: ("prometheus", 9090), d.TRACES_UID: ("jaeger", 16686),
                d.ALERTMANAGER_UID: ("alertmanager", 9093)}
    for uid, (service, port) in expected.items():
        assert by_uid[uid]["url"] == f"http://{service}:{port}" and port in container_ports(service)
    providers = [p for f in sorted(providers_dir.glob("*.yml")) for p in load_yaml(f)["providers"]]
    assert len(providers) == 1
    dashboards_dir = host_path("grafana", providers[0]["options"]["path"])
    assert dashboards_dir == (ROOT / "dashboards").resolve()
    assert (dashboards_dir / d.DASHBOARD_FILE.name).is_file()


def test_exemplars_link_to_the_trace_store() -> None:
    """Prometheus exemplars labelled ``trace_id`` (as metrics.py writes them) open the Jaeger uid."""
    datasources = load_yaml(ROOT / "deploy/grafana/provisioning/datasources/datasources.yml")["datasources"]
    prometheus = next(ds for ds in datasources if ds["uid"] == d.PROMETHEUS_UID)
    destinations = prometheus["jsonData"]["exemplarTraceIdDestinations"]
    assert destinations == [{"name": "trace_id", "datasourceUid": d.TRACES_UID,
                             "urlDisplayLabel": "Open the conversation's trace"}]
    assert 'exemplar={"trace_id": trace_id}' in inspect.getsource(telemetry.metrics)
    assert next(ds for ds in datasources if ds["uid"] == d.TRACES_UID)["type"] == "jaeger"


@pytest.mark.parametrize("path", ["deploy/otel-collector.yml", "deploy/prometheus.yml",
                                  "deploy/grafana/provisioning/datasources/datasources.yml",
                                  "deploy/grafana/provisioning/dashboards/rdv.yml",
                                  "deploy/radicale/practice.toml", "deploy/alert_sink.py"])
def test_every_deploy_file_is_mounted(path: str) -> None:
    """No configuration under deploy/ is left out of the stack."""
    sources = [(ROOT / s).resolve() for name in SERVICES for s in mounts(name).values()]
    target = (ROOT / path).resolve()
    assert any(target == s or s in target.parents for s in sources)

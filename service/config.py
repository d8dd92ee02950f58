"""Settings from the environment and the practice file, validated once at start-up.

Every error names the variable or key and the bad value; secrets are never echoed.
Settings are built in ``main()`` and passed down; nothing here runs at import time.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, time
from importlib import resources
from itertools import pairwise
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from service.engine.model import Limits, RdvError
from service.engine.practice import FAQ_TOPICS, CalendarSource, OpeningSpan, Practice
from service.engine.states import Channel, Field, State


class ConfigError(RdvError):
    """A configuration value is missing or invalid; the message names it."""


WEEKDAY_KEYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

# SPEC §1 constants: (text default, voice default).
CONSTANT_DEFAULTS: dict[str, tuple[int | None, int | None]] = {
    "SESSION_TTL_MINUTES": (15, 30),
    "MAX_TURNS_ANTI_LOOP": (25, 40),
    "CONFIRM_RETRY_MAX": (1, 1),
    "BOOKING_RETRY_MAX": (2, 2),
    "SLOTS_MESSAGE_MAX_CHARS": (None, 350),
}
# The smallest spoken-message budget that still says three slots.
MIN_SLOTS_MESSAGE_MAX_CHARS = 80
RECOVERY_DEFAULTS: dict[Field, int] = {Field.NAME: 2, Field.SLOT_CHOICE: 2, Field.PHONE: 3}
DEV_TRACE_SECRET = "rdv-development-trace-secret"
# A production secret is at least this long (``openssl rand -hex 32`` gives 64 characters).
MIN_SECRET_CHARS = 32
MIN_SECRET_DISTINCT_CHARS = 10
PLACEHOLDER_WORDS = ("changeme", "change-me", "secret", "password", "example", "placeholder", "default")
MAX_VAPI_SKEW_SECONDS = 600


@dataclass(frozen=True)
class Settings:
    """Everything the service reads from its environment."""

    env: str = "development"
    data_dir: Path = Path("data")
    practice_file: Path | None = None
    database_url: str | None = None
    log_format: str = "text"
    log_pii: bool = False
    telemetry: bool = True
    trace_secret: str = DEV_TRACE_SECRET
    trace_ui_url: str | None = None
    # prometheus-client's multiprocess directory (PROMETHEUS_MULTIPROC_DIR) for `serve --workers`.
    metrics_multiproc_dir: Path | None = None
    operator_token: str | None = None
    console: bool = False
    alertmanager_url: str | None = None
    vapi_llm_key: str | None = None
    vapi_secret: str | None = None
    vapi_auth: str = "secret"
    vapi_hmac_algorithm: str = "sha256"
    vapi_signature_header: str = "x-signature"
    vapi_timestamp_header: str = "x-timestamp"
    vapi_max_skew_seconds: int = 300
    text_api: bool = True
    text_api_key: str | None = None
    max_body_bytes: int = 256 * 1024
    store_timeout_seconds: float = 2.0
    ready_timeout_seconds: float = 1.0
    keep_alive_seconds: int = 5
    header_timeout_seconds: float = 10.0
    max_header_bytes: int = 16 * 1024
    max_connections: int = 1000
    reaper_interval_seconds: float = 60.0
    # Conversations older than this are purged, leaving anonymous daily counts (RDV_RETENTION_DAYS).
    retention_days: int = 90
    slot_hold_seconds: int = 120
    calendar_timeout_seconds: float = 3.0
    # Where spans go (OpenTelemetry's OTEL_TRACES_EXPORTER and OTLP endpoint variables):
    # "otlp", "console" or "none".
    traces_exporter: str = "none"
    # How the span exporter process batches (OpenTelemetry's OTEL_BSP_MAX_EXPORT_BATCH_SIZE and
    # OTEL_BSP_SCHEDULE_DELAY, as the SDK's batch processor reads them; rdv's delay defaults to
    # one second, not the SDK's five, so that traces show up quickly; telemetry.spans.DEFAULT_BATCH).
    span_batch_size: int = 512
    span_batch_delay_ms: int = 1000
    limits: Mapping[Channel, Limits] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    @property
    def production(self) -> bool:
        """True when running with ``RDV_ENV=production``."""
        return self.env == "production"


DEFAULT_PORT = 8000


# OTEL_TRACES_EXPORTER values rdv honours (telemetry/tracing.py): unset picks OTLP when an
# endpoint is set, else nothing.
TRACES_EXPORTERS = ("otlp", "console", "none")


def traces_exporter(env: Mapping[str, str]) -> str:
    """The span exporter OpenTelemetry's variables ask for: ``OTEL_TRACES_EXPORTER=none`` or
    ``console``; ``otlp`` when it says so or when an OTLP endpoint is set; else ``none``."""
    raw = env.get("OTEL_TRACES_EXPORTER", "").strip()
    wanted = raw.lower()
    if wanted and wanted not in TRACES_EXPORTERS:
        raise ConfigError(f"OTEL_TRACES_EXPORTER={raw!r} must be one of {', '.join(TRACES_EXPORTERS)} (or unset)")
    if wanted in ("none", "console"):
        return wanted
    if wanted == "otlp" or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return "otlp"
    return "none"

def _int(env: Mapping[str, str], name: str, default: int | None, *, minimum: int = 0) -> int | None:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None
    if value < minimum:
        raise ConfigError(f"{name}={value} must be at least {minimum}")
    return value


DEFAULT_SLOT_HOLD_SECONDS = 120


def _hold_seconds(env: Mapping[str, str]) -> int:
    """RDV_SLOT_HOLD_SECONDS: how long slots proposed to a caller are offered to others only
    when nothing else fits (0 turns holds off)."""
    value = int(_int(env, "RDV_SLOT_HOLD_SECONDS", DEFAULT_SLOT_HOLD_SECONDS) or 0)
    if value > 3600:
        raise ConfigError(f"RDV_SLOT_HOLD_SECONDS={value} must be at most 3600")
    return value


def _seconds(env: Mapping[str, str], name: str, default: float, maximum: float) -> float:
    """A duration in seconds, in ``(0, maximum]``."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number of seconds") from None
    if not 0 < value <= maximum:  # also refuses nan
        raise ConfigError(f"{name}={raw!r} must be more than 0 and at most {maximum:g}")
    return value


def _bounded(env: Mapping[str, str], name: str, default: int, minimum: int, maximum: int) -> int:
    """A whole number in ``[minimum, maximum]``."""
    value = int(_int(env, name, default, minimum=minimum) or 0)
    if value > maximum:
        raise ConfigError(f"{name}={value} must be at most {maximum}")
    return value


def secret_weakness(value: str) -> str | None:
    """Why ``value`` is too weak for a production secret (short, few distinct characters, a
    run, a placeholder word), or None. The message never repeats the value."""
    if len(value) < MIN_SECRET_CHARS:
        return f"is shorter than {MIN_SECRET_CHARS} characters"
    if len(set(value)) < MIN_SECRET_DISTINCT_CHARS:
        return f"has fewer than {MIN_SECRET_DISTINCT_CHARS} different characters"
    steps = [ord(b) - ord(a) for a, b in pairwise(value)]
    if sum(1 for d in steps if d in (-1, 0, 1)) * 2 > len(steps):
        return "is mostly repeated or consecutive characters"
    lowered = value.lower()
    if any(word in lowered for word in PLACEHOLDER_WORDS):
        return "looks like a placeholder"
    return None


def _strong(name: str, value: str) -> None:
    """ConfigError naming ``name`` when ``value`` is too weak for production."""
    weakness = secret_weakness(value)
    if weakness is not None:
        raise ConfigError(
            f"{name} {weakness}: production needs a long random value (e.g. `openssl rand -hex 32`)"
        )


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r} must be true or false")


def _http_url(env: Mapping[str, str], name: str, example: str = "http://alertmanager:9093") -> str | None:
    """An optional ``http(s)://host[:port][/path]`` base URL, without its trailing slash."""
    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        parts = urlsplit(raw)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:  # a port that is not a number, or out of range
        port_ok = False
        parts = urlsplit("")
    if (not port_ok or parts.scheme not in ("http", "https") or not parts.hostname or parts.query
            or parts.fragment or any(c.isspace() for c in raw)):
        raise ConfigError(f"{name}={raw!r} must be an http:// or https:// base URL like {example}")
    return raw.rstrip("/")


def _console(env: Mapping[str, str], token: str | None) -> bool:
    """RDV_CONSOLE: the operator console at /console, on by default when a token is set."""
    on = _bool(env, "RDV_CONSOLE", token is not None)
    if on and token is None:
        raise ConfigError("RDV_CONSOLE=true needs RDV_OPERATOR_TOKEN: the console is for operators only")
    return on


def _choice(env: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    raw = env.get(name, default).strip() or default
    if raw not in allowed:
        raise ConfigError(f"{name}={raw!r} must be one of {', '.join(allowed)}")
    return raw


def parse_recovery_limits(raw: str, name: str = "RECOVERY_LIMITS") -> dict[Field, int]:
    """``"name=2,slot_choice=2,phone=3"`` → limits per field (missing fields keep defaults)."""
    limits = dict(RECOVERY_DEFAULTS)
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        try:
            fld = Field(key.strip())
        except ValueError:
            raise ConfigError(
                f"{name}: unknown field {key.strip()!r} (expected name, slot_choice, phone)"
            ) from None
        if not sep or not value.strip().isdigit() or int(value) < 1:
            raise ConfigError(f"{name}: {part!r} must be field=N with N ≥ 1")
        limits[fld] = int(value)
    return limits


def build_limits(env: Mapping[str, str]) -> dict[Channel, Limits]:
    """Per-channel limits: ``NAME`` sets both channels, ``NAME_VOICE``/``NAME_TEXT`` one."""
    fallback_raw = _choice(env, "RDV_RECOVERY_FALLBACK", "transfer", ("transfer", "menu"))
    fallback = State.TRANSFERRED if fallback_raw == "transfer" else State.INTENT_ROUTER
    out: dict[Channel, Limits] = {}
    for index, channel in enumerate((Channel.TEXT, Channel.VOICE)):
        suffix = "_" + channel.value.upper()
        values: dict[str, int | None] = {}
        for name, defaults in CONSTANT_DEFAULTS.items():
            minimum = 0 if name in ("CONFIRM_RETRY_MAX", "BOOKING_RETRY_MAX") else 1
            both = _int(env, name, defaults[index], minimum=minimum)
            values[name] = _int(env, name + suffix, both, minimum=minimum)
        raw_limits = env.get("RECOVERY_LIMITS" + suffix) or env.get("RECOVERY_LIMITS") or ""
        var = "RECOVERY_LIMITS" + suffix if env.get("RECOVERY_LIMITS" + suffix) else "RECOVERY_LIMITS"
        budget = values["SLOTS_MESSAGE_MAX_CHARS"]
        if budget is not None and budget < MIN_SLOTS_MESSAGE_MAX_CHARS:
            raise ConfigError(
                f"SLOTS_MESSAGE_MAX_CHARS={budget} is too small to say three slots (min {MIN_SLOTS_MESSAGE_MAX_CHARS})"
            )
        out[channel] = Limits(
            session_ttl_minutes=int(values["SESSION_TTL_MINUTES"] or 0),
            max_turns_anti_loop=int(values["MAX_TURNS_ANTI_LOOP"] or 0),
            confirm_retry_max=int(values["CONFIRM_RETRY_MAX"] or 0),
            booking_retry_max=int(values["BOOKING_RETRY_MAX"] or 0),
            recovery_limits=parse_recovery_limits(raw_limits, var),
            slots_message_max_chars=budget,
            recovery_fallback=fallback,
        )
    return out


def sqlite_file(database_url: str | None, data_dir: Path) -> Path | None:
    """The SQLite file of ``RDV_DATABASE_URL`` (None for PostgreSQL or memory:).

    ``sqlite:////data/rdv.db`` (four slashes) is the absolute file ``/data/rdv.db``;
    ``sqlite:///data/rdv.db`` is the *relative* path ``data/rdv.db``, accepted only inside
    ``RDV_DATA_DIR`` (a relative file elsewhere lands in the image's working directory and is
    lost at the next deploy); unset, the file is ``RDV_DATA_DIR/rdv.sqlite3``.
    """
    if database_url is None:
        return data_dir / "rdv.sqlite3"
    if not database_url.startswith("sqlite:///"):
        return None
    path = Path(database_url.removeprefix("sqlite:///"))
    if not path.name:
        raise ConfigError(f"RDV_DATABASE_URL={database_url!r} names no file (e.g. sqlite:////data/rdv.db)")
    if path.is_absolute():
        return path
    inside = data_dir.resolve()
    if inside == path.resolve().parent or inside in path.resolve().parents:
        return path
    raise ConfigError(
        f"RDV_DATABASE_URL={database_url!r} is the relative path {path} (from {Path.cwd()}), outside "
        f"RDV_DATA_DIR={str(data_dir)!r}: write sqlite:///{'/' + str(path)} for an absolute file (four slashes), "
        "or leave RDV_DATABASE_URL unset to use RDV_DATA_DIR/rdv.sqlite3"
    )


def writable_directory(settings: Settings) -> Path | None:
    """Check that the directory of the SQLite file can be written (created when missing);
    the directory, or None when the store is not a SQLite file. ConfigError naming the
    variable otherwise (a volume mounted read-only or owned by another user, a file in the way)."""
    path = sqlite_file(settings.database_url, settings.data_dir)
    if path is None or settings.database_url == "memory:":
        return None
    directory = path.parent
    variable = (("RDV_DATABASE_URL", settings.database_url) if settings.database_url
                else ("RDV_DATA_DIR", str(settings.data_dir)))
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"{variable[0]}={variable[1]!r}: {directory} is a file, not a directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / f".rdv-write-check-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(
            f"{variable[0]}={variable[1]!r}: cannot write the SQLite store's directory {directory}: "
            f"{exc.strerror or exc} (mount a volume writable by uid {os.getuid()} there, e.g. on Railway a volume "
            f"mounted owned by root needs RAILWAY_RUN_UID=0, or point {variable[0]} elsewhere)"
        ) from None
    return directory


def server_port(raw: int | None, env: Mapping[str, str] | None = None) -> int:
    """The port to listen on: ``--port``, else ``$PORT`` (Railway, Heroku-style platforms), else 8000."""
    if raw is not None:
        return raw
    env = os.environ if env is None else env
    text = env.get("PORT", "").strip()
    if not text:
        return DEFAULT_PORT
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ConfigError(f"PORT={text!r} is not a port number (1-65535)")
    return int(text)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every setting; raise :class:`ConfigError` naming the first bad one."""
    env = os.environ if env is None else env
    renv = _choice(env, "RDV_ENV", "development", ("development", "production"))
    warnings: list[str] = []
    practice_raw = env.get("RDV_PRACTICE_FILE", "").strip()
    practice_file = Path(practice_raw) if practice_raw else None
    if practice_file is not None and not practice_file.is_file():
        raise ConfigError(f"RDV_PRACTICE_FILE={practice_raw!r}: no such file")
    database_url = env.get("RDV_DATABASE_URL", "").strip() or None
    if database_url and not database_url.startswith(("postgresql://", "postgres://", "sqlite:///", "memory:")):
        raise ConfigError(
            "RDV_DATABASE_URL must start with postgresql://, sqlite:/// or be memory: "
            f"(got {database_url.split(':', 1)[0]!r})"
        )
    vapi_llm_key = env.get("RDV_VAPI_LLM_KEY", "").strip() or None
    vapi_secret = env.get("RDV_VAPI_SECRET", "").strip() or None
    vapi_auth = _choice(env, "RDV_VAPI_AUTH", "secret", ("secret", "bearer", "hmac"))
    trace_secret = env.get("RDV_TRACE_SECRET", "").strip() or DEV_TRACE_SECRET
    operator_token = env.get("RDV_OPERATOR_TOKEN", "").strip() or None
    text_api = _bool(env, "RDV_TEXT_API", renv != "production")
    text_api_key = env.get("RDV_TEXT_API_KEY", "").strip() or None
    if renv == "production":
        if vapi_llm_key is None:
            raise ConfigError("RDV_VAPI_LLM_KEY must be set when RDV_ENV=production")
        if vapi_secret is None:
            raise ConfigError("RDV_VAPI_SECRET must be set when RDV_ENV=production")
        if trace_secret == DEV_TRACE_SECRET:
            raise ConfigError("RDV_TRACE_SECRET must be set when RDV_ENV=production")
        _strong("RDV_TRACE_SECRET", trace_secret)
        if operator_token is None:
            raise ConfigError(
                "RDV_OPERATOR_TOKEN must be set when RDV_ENV=production (timelines and stats need it)"
            )
        if text_api and text_api_key is None:
            raise ConfigError("RDV_TEXT_API_KEY must be set when RDV_TEXT_API=on and RDV_ENV=production")
        if text_api_key is not None:
            _strong("RDV_TEXT_API_KEY", text_api_key)
    else:
        if vapi_llm_key is None or vapi_secret is None:
            warnings.append(
                "Vapi credentials not set (RDV_VAPI_LLM_KEY, RDV_VAPI_SECRET): "
                "Vapi endpoints accept unauthenticated requests (development only)"
            )
        if text_api and text_api_key is None:
            warnings.append(
                "RDV_TEXT_API_KEY not set: the text API trusts every client's conversation ids "
                "and caller_phone (development only)"
            )
    store_timeout = env.get("RDV_STORE_TIMEOUT_SECONDS", "2").strip() or "2"
    try:
        timeout = float(store_timeout)
    except ValueError:
        raise ConfigError(f"RDV_STORE_TIMEOUT_SECONDS={store_timeout!r} is not a number") from None
    if not 0 < timeout <= 60:
        raise ConfigError(f"RDV_STORE_TIMEOUT_SECONDS={store_timeout!r} must be in (0, 60]")
    reaper = _int(env, "RDV_REAPER_INTERVAL_SECONDS", 60, minimum=1)
    data_dir = Path(env.get("RDV_DATA_DIR", "").strip() or "data")
    if database_url is not None:
        sqlite_file(database_url, data_dir)
    calendar_timeout = _seconds(env, "RDV_CALENDAR_TIMEOUT_SECONDS", 3.0, 60)
    return Settings(
        env=renv,
        data_dir=data_dir,
        practice_file=practice_file,
        database_url=database_url,
        log_format=_choice(env, "RDV_LOG_FORMAT", "text", ("text", "json")),
        log_pii=_bool(env, "RDV_LOG_PII", False),
        telemetry=_bool(env, "RDV_TELEMETRY", True),
        trace_secret=trace_secret,
        trace_ui_url=_http_url(env, "RDV_TRACE_UI_URL", "http://localhost:16686"),
        metrics_multiproc_dir=(Path(multiproc) if (multiproc := env.get("PROMETHEUS_MULTIPROC_DIR", "").strip())
                               else None),
        operator_token=operator_token,
        console=_console(env, operator_token),
        alertmanager_url=_http_url(env, "RDV_ALERTMANAGER_URL"),
        vapi_llm_key=vapi_llm_key,
        vapi_secret=vapi_secret,
        vapi_auth=vapi_auth,
        vapi_hmac_algorithm=_choice(env, "RDV_VAPI_HMAC_ALGORITHM", "sha256", ("sha256", "sha512", "sha1")),
        vapi_signature_header=env.get("RDV_VAPI_SIGNATURE_HEADER", "x-signature").strip().lower() or "x-signature",
        vapi_timestamp_header=env.get("RDV_VAPI_TIMESTAMP_HEADER", "x-timestamp").strip().lower() or "x-timestamp",
        vapi_max_skew_seconds=_bounded(env, "RDV_VAPI_MAX_SKEW_SECONDS", 300, 1, MAX_VAPI_SKEW_SECONDS),
        text_api=text_api,
        text_api_key=text_api_key,
        max_body_bytes=int(_int(env, "RDV_MAX_BODY_BYTES", 256 * 1024, minimum=1024) or 0),
        store_timeout_seconds=timeout,
        ready_timeout_seconds=_seconds(env, "RDV_READY_TIMEOUT_SECONDS", 1.0, 30),
        keep_alive_seconds=_bounded(env, "RDV_KEEP_ALIVE_SECONDS", 5, 1, 300),
        header_timeout_seconds=_seconds(env, "RDV_HEADER_TIMEOUT_SECONDS", 10.0, 300),
        max_header_bytes=_bounded(env, "RDV_MAX_HEADER_BYTES", 16 * 1024, 1024, 1024 * 1024),
        max_connections=_bounded(env, "RDV_MAX_CONNECTIONS", 1000, 1, 1_000_000),
        reaper_interval_seconds=float(reaper or 60),
        retention_days=_int(env, "RDV_RETENTION_DAYS", 90, minimum=1) or 90,
        slot_hold_seconds=_hold_seconds(env),
        calendar_timeout_seconds=calendar_timeout,
        traces_exporter=traces_exporter(env),
        span_batch_size=_bounded(env, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512, 1, 1_000_000),
        span_batch_delay_ms=_bounded(env, "OTEL_BSP_SCHEDULE_DELAY", 1000, 1, 3_600_000),
        limits=build_limits(env),
        warnings=tuple(warnings),
    )


# --------------------------------------------------------------------------- practice file
def _time(value: Any, where: str) -> time:
    if not isinstance(value, str):
        raise ConfigError(f"{where}: expected a time like \"08:30\", got {value!r}")
    try:
        return time.fromisoformat(value.strip())
    except ValueError:
        raise ConfigError(f"{where}: {value!r} is not a time like \"08:30\"") from None


def _spans(value: Any, where: str) -> tuple[OpeningSpan, ...]:
    if not isinstance(value, list):
        raise ConfigError(f"{where}: expected a list like [\"08:30-12:00\", \"14:00-18:00\"]")
    spans: list[OpeningSpan] = []
    for item in value:
        if not isinstance(item, str) or "-" not in item:
            raise ConfigError(f"{where}: {item!r} is not a span like \"08:30-12:00\"")
        start_raw, end_raw = item.split("-", 1)
        start, end = _time(start_raw, where), _time(end_raw, where)
        if end <= start:
            raise ConfigError(f"{where}: {item!r} ends before it starts")
        if spans and start < spans[-1].end:
            raise ConfigError(f"{where}: {item!r} overlaps the previous span")
        spans.append(OpeningSpan(start, end))
    return tuple(spans)


def _str(table: Mapping[str, Any], key: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}.{key}: a non-empty text is required")
    return value.strip()


def _posint(table: Mapping[str, Any], key: str, where: str, default: int, maximum: int) -> int:
    value = table.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= maximum:
        raise ConfigError(f"{where}.{key}: {value!r} must be a whole number between 0 and {maximum}")
    return value


def parse_practice(data: Mapping[str, Any], source: str = "practice file") -> Practice:
    """Validate a parsed practice TOML document; errors name ``source`` and the key."""
    practice = data.get("practice")
    if not isinstance(practice, dict):
        raise ConfigError(f"{source}: missing [practice] table")
    where = f"{source}: practice"
    tz_name = practice.get("timezone", "Europe/Paris")
    try:
        tz = ZoneInfo(str(tz_name))
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{where}.timezone: unknown time zone {tz_name!r}") from None
    slot_minutes = _posint(practice, "slot_minutes", where, 30, 480)
    if slot_minutes < 5:
        raise ConfigError(f"{where}.slot_minutes: {slot_minutes} is shorter than 5 minutes")
    horizon = _posint(practice, "horizon_days", where, 30, 366)
    if horizon < 1:
        raise ConfigError(f"{where}.horizon_days must be at least 1")
    transfer = _str(practice, "transfer_number", where)
    if not transfer.startswith("+") or not transfer[1:].isdigit() or not 8 <= len(transfer) <= 16:
        raise ConfigError(f"{where}.transfer_number: {transfer!r} must be in E.164 form like +33140000000")
    hours_table = data.get("hours")
    if not isinstance(hours_table, dict):
        raise ConfigError(f"{source}: missing [hours] table")
    unknown = set(hours_table) - set(WEEKDAY_KEYS)
    if unknown:
        raise ConfigError(f"{source}: hours: unknown weekday {min(unknown)!r}")
    hours = {
        i: _spans(hours_table[key], f"{source}: hours.{key}")
        for i, key in enumerate(WEEKDAY_KEYS)
        if key in hours_table
    }
    if not any(hours.values()):
        raise ConfigError(f"{source}: hours: the practice is never open")
    closed: set[date] = set()
    for item in practice.get("closed_dates", []):
        try:
            closed.add(item if isinstance(item, date) else date.fromisoformat(str(item)))
        except ValueError:
            raise ConfigError(f"{where}.closed_dates: {item!r} is not a date like 2026-12-24") from None
    faq_table = data.get("faq", {})
    if not isinstance(faq_table, dict):
        raise ConfigError(f"{source}: [faq] must be a table")
    faq: dict[str, str] = {}
    for key, value in faq_table.items():
        if key not in FAQ_TOPICS:
            raise ConfigError(f"{source}: faq.{key}: unknown topic (expected {', '.join(FAQ_TOPICS)})")
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{source}: faq.{key}: a non-empty text is required")
        faq[key] = value.strip()
    security = _security(data.get("security", {}), source)
    return Practice(
        calendar=parse_calendar(data.get("calendar"), source),
        name=_str(practice, "name", where),
        address=_str(practice, "address", where),
        transfer_number=transfer,
        timezone=tz,
        slot_minutes=slot_minutes,
        min_lead_minutes=_posint(practice, "min_lead_minutes", where, 60, 60 * 24 * 30),
        horizon_days=horizon,
        hours=hours,
        closed_dates=frozenset(closed),
        faq=faq,
        public_holidays=bool(practice.get("public_holidays", True)),
        cancel_from_other_number=security["cancel_from_other_number"],
    )


CALENDAR_KINDS = ("builtin", "caldav")
CALENDAR_KEYS = frozenset({"kind", "url", "calendar", "username", "password_env", "busy_ics_url"})


def _url(table: Mapping[str, Any], key: str, where: str) -> str:
    value = _str(table, key, where)
    if not value.startswith(("https://", "http://")):
        raise ConfigError(f"{where}.{key}: {value!r} must be an http(s):// URL")
    if "@" in value.split("/")[2]:
        raise ConfigError(f"{where}.{key}: put no credentials in the URL (username and password_env)")
    return value


def parse_calendar(table: Any, source: str) -> CalendarSource:
    """The ``[calendar]`` table: ``builtin`` (default) or ``caldav`` with its connection; the
    password is only named (``password_env``), a secret written in the file is refused."""
    where = f"{source}: calendar"
    if table is None:
        return CalendarSource()
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: [calendar] must be a table")
    if "password" in table:
        raise ConfigError(f"{where}.password: never write the password in the file; "
                          "name the environment variable that holds it with password_env")
    unknown = set(table) - CALENDAR_KEYS
    if unknown:
        raise ConfigError(f"{where}.{min(unknown)}: unknown key (expected {', '.join(sorted(CALENDAR_KEYS))})")
    kind = table.get("kind", "builtin")
    if kind not in CALENDAR_KINDS:
        raise ConfigError(f"{where}.kind: {kind!r} must be one of {', '.join(CALENDAR_KINDS)}")
    feed = _url(table, "busy_ics_url", where) if "busy_ics_url" in table else None
    if kind == "builtin":
        extra = sorted(set(table) - {"kind", "busy_ics_url"})
        if extra:
            raise ConfigError(f"{where}.{extra[0]}: only used with kind = \"caldav\"")
        return CalendarSource(busy_ics_url=feed)
    password_env = _str(table, "password_env", where)
    if not password_env.replace("_", "").isalnum() or not password_env[0].isalpha():
        raise ConfigError(f"{where}.password_env: {password_env!r} is not an environment variable name")
    return CalendarSource(
        kind=kind,
        url=_url(table, "url", where),
        calendar=_str(table, "calendar", where),
        username=_str(table, "username", where),
        password_env=password_env,
        busy_ics_url=feed,
    )


def calendar_password(source: CalendarSource, env: Mapping[str, str] | None = None) -> str | None:
    """The CalDAV password from the variable the practice file names; ConfigError when unset."""
    if source.password_env is None:
        return None
    env = os.environ if env is None else env
    value = env.get(source.password_env, "")
    if not value:
        raise ConfigError(f"{source.password_env} must hold the CalDAV password "
                          "(named by password_env in the practice file's [calendar])")
    return value
SECURITY_KEYS = ("cancel_from_other_number",)


def _security(table: Any, source: str) -> dict[str, bool]:
    """The ``[security]`` table: opt-ins that loosen who may touch an appointment (all off by default)."""
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: [security] must be a table")
    unknown = set(table) - set(SECURITY_KEYS)
    if unknown:
        raise ConfigError(f"{source}: security.{min(unknown)}: unknown setting (expected {', '.join(SECURITY_KEYS)})")
    out: dict[str, bool] = {}
    for key in SECURITY_KEYS:
        value = table.get(key, False)
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: security.{key}: {value!r} must be true or false")
        out[key] = value
    return out


def load_practice(path: Path | None) -> Practice:
    """Read the practice file (default: the bundled example) and validate it."""
    if path is None:
        text = resources.files("service").joinpath("practice.example.toml").read_text("utf-8")
        source = "practice.example.toml"
    else:
        try:
            text = path.read_text("utf-8")
        except OSError as exc:
            raise ConfigError(f"RDV_PRACTICE_FILE={str(path)!r}: {exc.strerror}") from None
        source = str(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: invalid TOML: {exc}") from None
    return parse_practice(data, source)

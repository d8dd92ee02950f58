"""Settings and the practice file are validated at start-up with messages naming the culprit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from service.config import ConfigError, load_practice, load_settings
from service.engine.states import Channel, Field, State
from telemetry.spans import DEFAULT_BATCH


def test_defaults_follow_the_spec_per_channel() -> None:
    """Text and voice get the SPEC's defaults (TTL 15/30, anti-loop 25/40, budget none/350)."""
    limits = load_settings({}).limits
    text, voice = limits[Channel.TEXT], limits[Channel.VOICE]
    assert (text.session_ttl_minutes, voice.session_ttl_minutes) == (15, 30)
    assert (text.max_turns_anti_loop, voice.max_turns_anti_loop) == (25, 40)
    assert (text.slots_message_max_chars, voice.slots_message_max_chars) == (None, 350)
    assert text.confirm_retry_max == voice.confirm_retry_max == 1
    assert text.booking_retry_max == voice.booking_retry_max == 2
    assert dict(text.recovery_limits) == {Field.NAME: 2, Field.SLOT_CHOICE: 2, Field.PHONE: 3}
    assert text.recovery_fallback is State.TRANSFERRED


def test_overrides_for_both_or_one_channel() -> None:
    """``NAME`` sets both channels, ``NAME_VOICE`` only the voice one."""
    limits = load_settings(
        {"MAX_TURNS_ANTI_LOOP": "30", "SESSION_TTL_MINUTES_VOICE": "45",
         "RECOVERY_LIMITS": "phone=4", "RDV_RECOVERY_FALLBACK": "menu"}
    ).limits
    assert limits[Channel.TEXT].max_turns_anti_loop == limits[Channel.VOICE].max_turns_anti_loop == 30
    assert limits[Channel.TEXT].session_ttl_minutes == 15
    assert limits[Channel.VOICE].session_ttl_minutes == 45
    assert limits[Channel.VOICE].recovery_limits[Field.PHONE] == 4
    assert limits[Channel.VOICE].recovery_limits[Field.NAME] == 2
    assert limits[Channel.TEXT].recovery_fallback is State.INTENT_ROUTER


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SESSION_TTL_MINUTES": "abc"}, "SESSION_TTL_MINUTES"),
        ({"MAX_TURNS_ANTI_LOOP_VOICE": "0"}, "MAX_TURNS_ANTI_LOOP_VOICE"),
        ({"BOOKING_RETRY_MAX": "-1"}, "BOOKING_RETRY_MAX"),
        ({"RECOVERY_LIMITS": "nom=2"}, "RECOVERY_LIMITS"),
        ({"RECOVERY_LIMITS": "phone=zero"}, "RECOVERY_LIMITS"),
        ({"SLOTS_MESSAGE_MAX_CHARS": "20"}, "SLOTS_MESSAGE_MAX_CHARS"),
        ({"RDV_LOG_FORMAT": "xml"}, "RDV_LOG_FORMAT"),
        ({"RDV_LOG_PII": "maybe"}, "RDV_LOG_PII"),
        ({"RDV_ENV": "staging"}, "RDV_ENV"),
        ({"RDV_DATABASE_URL": "mysql://x"}, "RDV_DATABASE_URL"),
        ({"RDV_PRACTICE_FILE": "/nonexistent/practice.toml"}, "RDV_PRACTICE_FILE"),
        ({"RDV_ENV": "production"}, "RDV_VAPI_LLM_KEY"),
        ({"RDV_STORE_TIMEOUT_SECONDS": "0"}, "RDV_STORE_TIMEOUT_SECONDS"),
        ({"RDV_RECOVERY_FALLBACK": "hangup"}, "RDV_RECOVERY_FALLBACK"),
        ({"RDV_SLOT_HOLD_SECONDS": "-5"}, "RDV_SLOT_HOLD_SECONDS"),
        ({"RDV_SLOT_HOLD_SECONDS": "deux minutes"}, "RDV_SLOT_HOLD_SECONDS"),
        ({"RDV_SLOT_HOLD_SECONDS": "7200"}, "RDV_SLOT_HOLD_SECONDS"),
        ({"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "0"}, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"),
        ({"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "lots"}, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"),
        ({"OTEL_BSP_SCHEDULE_DELAY": "1.5s"}, "OTEL_BSP_SCHEDULE_DELAY"),
    ],
)
def test_bad_environment_names_the_variable(env: dict[str, str], named: str) -> None:
    """Each bad value raises ConfigError whose message names the variable."""
    with pytest.raises(ConfigError, match=named):
        load_settings(env)


def test_production_never_echoes_secrets() -> None:
    """A production start without a trace secret fails without printing the other secrets."""
    with pytest.raises(ConfigError) as info:
        load_settings({"RDV_ENV": "production", "RDV_VAPI_LLM_KEY": "k-123", "RDV_VAPI_SECRET": "s-456"})
    assert "RDV_TRACE_SECRET" in str(info.value)
    assert "k-123" not in str(info.value) and "s-456" not in str(info.value)


EXAMPLE = (Path(__file__).parents[1] / "service" / "practice.example.toml").read_text("utf-8")


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        ('timezone = "Europe/Paris"', 'timezone = "Europe/Lutece"', "practice.timezone"),
        ("slot_minutes = 30", "slot_minutes = 0", "practice.slot_minutes"),
        ("slot_minutes = 30", 'slot_minutes = "30"', "practice.slot_minutes"),
        ('transfer_number = "+33478000000"', 'transfer_number = "04 78"', "practice.transfer_number"),
        ('monday = ["08:30-12:00", "14:00-18:30"]', 'monday = ["12:00-08:30"]', "hours.monday"),
        ('monday = ["08:30-12:00", "14:00-18:30"]', 'monday = ["8h30-12h"]', "hours.monday"),
        ('monday = ["08:30-12:00", "14:00-18:30"]', 'lundi = ["08:30-12:00"]', "unknown weekday"),
        ('closed_dates = ["2026-12-24", "2026-12-31"]', 'closed_dates = ["24/12"]', "closed_dates"),
        ("[faq]", "[faq]\nweather = \"beau\"", "faq.weather"),
        ('name = "Cabinet du docteur Martin"', 'name = ""', "practice.name"),
    ],
)
def test_bad_practice_file_names_the_key(tmp_path: Path, old: str, new: str, named: str) -> None:
    """Each bad key of the practice file raises ConfigError naming the key."""
    assert old in EXAMPLE
    path = tmp_path / "practice.toml"
    path.write_text(EXAMPLE.replace(old, new, 1), "utf-8")
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        load_practice(path)


def test_invalid_toml_is_reported(tmp_path: Path) -> None:
    """A file that is not TOML is reported with its path."""
    path = tmp_path / "broken.toml"
    path.write_text("[practice\nname = ", "utf-8")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_practice(path)


def test_serve_stops_with_one_clear_line_on_bad_config(tmp_path: Path) -> None:
    """``rdv serve`` with a bad variable exits 2 and prints one message, no traceback."""
    env = {**os.environ, "RDV_DATA_DIR": str(tmp_path), "MAX_TURNS_ANTI_LOOP": "many"}
    proc = subprocess.run(
        [sys.executable, "-m", "service.cli", "serve", "--port", "0"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 2
    assert "MAX_TURNS_ANTI_LOOP" in proc.stderr
    assert "Traceback" not in proc.stderr


# A production environment that starts: every credential set, secrets long and random.
STRONG = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
PRODUCTION = {
    "RDV_ENV": "production", "RDV_VAPI_LLM_KEY": "llm-key-1", "RDV_VAPI_SECRET": "server-secret-1",
    "RDV_TRACE_SECRET": STRONG, "RDV_OPERATOR_TOKEN": "operator-token-1",
}


def test_a_complete_production_environment_loads() -> None:
    """With every credential and a long random trace secret, production starts; the text
    API is off unless turned on."""
    settings = load_settings(PRODUCTION)
    assert settings.production and settings.text_api is False and settings.warnings == ()


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"RDV_OPERATOR_TOKEN": ""}, "RDV_OPERATOR_TOKEN"),
        ({"RDV_TRACE_SECRET": "short-but-set"}, "RDV_TRACE_SECRET"),
        ({"RDV_TRACE_SECRET": "a" * 64}, "RDV_TRACE_SECRET"),
        ({"RDV_TRACE_SECRET": "abcdefghijklmnopqrstuvwxyz0123456789"}, "RDV_TRACE_SECRET"),
        ({"RDV_TRACE_SECRET": "abababababababababababababababababab"}, "RDV_TRACE_SECRET"),
        ({"RDV_TRACE_SECRET": "my-production-trace-secret-for-rdv-2026"}, "RDV_TRACE_SECRET"),
        ({"RDV_TEXT_API": "on"}, "RDV_TEXT_API_KEY"),
        ({"RDV_TEXT_API": "on", "RDV_TEXT_API_KEY": "key"}, "RDV_TEXT_API_KEY"),
    ],
    ids=["no-operator-token", "short-secret", "one-char-secret", "sequential-secret", "repeated-secret",
         "placeholder-secret", "text-api-without-key", "weak-text-api-key"],
)
def test_production_refuses_missing_or_weak_credentials(change: dict[str, str], named: str) -> None:
    """Production refuses to start without an operator token, with a short or low-entropy
    trace secret, or with the text API on and no strong key; the message names the variable
    and never the secret."""
    env = {**PRODUCTION, **change}
    with pytest.raises(ConfigError, match=named) as info:
        load_settings(env)
    assert str(info.value).count("\n") == 0
    for secret in (STRONG, "short-but-set", "a" * 64, "key", "my-production-trace-secret-for-rdv-2026"):
        assert secret not in str(info.value)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"RDV_VAPI_MAX_SKEW_SECONDS": "0"}, "RDV_VAPI_MAX_SKEW_SECONDS"),
        ({"RDV_VAPI_MAX_SKEW_SECONDS": "601"}, "RDV_VAPI_MAX_SKEW_SECONDS"),
        ({"RDV_VAPI_MAX_SKEW_SECONDS": "86400"}, "RDV_VAPI_MAX_SKEW_SECONDS"),
        ({"RDV_TEXT_API": "maybe"}, "RDV_TEXT_API"),
        ({"RDV_READY_TIMEOUT_SECONDS": "0"}, "RDV_READY_TIMEOUT_SECONDS"),
        ({"RDV_READY_TIMEOUT_SECONDS": "nan"}, "RDV_READY_TIMEOUT_SECONDS"),
        ({"RDV_KEEP_ALIVE_SECONDS": "0"}, "RDV_KEEP_ALIVE_SECONDS"),
        ({"RDV_KEEP_ALIVE_SECONDS": "1h"}, "RDV_KEEP_ALIVE_SECONDS"),
        ({"RDV_HEADER_TIMEOUT_SECONDS": "-1"}, "RDV_HEADER_TIMEOUT_SECONDS"),
        ({"RDV_HEADER_TIMEOUT_SECONDS": "inf"}, "RDV_HEADER_TIMEOUT_SECONDS"),
        ({"RDV_MAX_HEADER_BYTES": "100"}, "RDV_MAX_HEADER_BYTES"),
        ({"RDV_MAX_CONNECTIONS": "0"}, "RDV_MAX_CONNECTIONS"),
    ],
)
def test_bad_limits_name_the_variable(env: dict[str, str], named: str) -> None:
    """Each new limit is validated at start-up: a bad value names its variable."""
    with pytest.raises(ConfigError, match=named):
        load_settings(env)


def test_production_without_operator_token_stops_serve_with_one_line(tmp_path: Path) -> None:
    """``rdv serve`` in production without RDV_OPERATOR_TOKEN exits 2 with one line naming it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RDV_")}
    env.update({**PRODUCTION, "RDV_OPERATOR_TOKEN": "", "RDV_DATA_DIR": str(tmp_path)})
    proc = subprocess.run(
        [sys.executable, "-m", "service.cli", "serve", "--port", "0"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "RDV_OPERATOR_TOKEN" in proc.stderr


def test_the_span_exporter_batches_by_the_standard_variables() -> None:
    """512 spans and one second by default; OpenTelemetry's batch variables change them."""
    default = load_settings({})
    assert (default.span_batch_size, default.span_batch_delay_ms) == (512, 1000) == DEFAULT_BATCH
    chosen = load_settings({"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "2048", "OTEL_BSP_SCHEDULE_DELAY": "5000"})
    assert (chosen.span_batch_size, chosen.span_batch_delay_ms) == (2048, 5000)

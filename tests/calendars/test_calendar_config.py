"""The practice file's [calendar] table and RDV_CALENDAR_TIMEOUT_SECONDS are validated at
start-up with one clear message; ``rdv check-config`` connects and says what it found."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from service import cli
from service.config import ConfigError, calendar_password, load_settings, parse_calendar
from service.engine.practice import CalendarSource
from tests.calendars.conftest import PASSWORD, PASSWORD_ENV, Radicale, at, practice_file

CALDAV = {"kind": "caldav", "url": "https://cloud.example.fr/remote.php/dav", "calendar": "Cabinet",
          "username": "secretariat", "password_env": "RDV_CALDAV_PASSWORD"}


def test_no_table_is_the_builtin_agenda() -> None:
    """Without [calendar] rdv's own bookings are the agenda (today's behaviour, no calls)."""
    assert parse_calendar(None, "p.toml") == CalendarSource()
    assert not CalendarSource().external


def test_a_caldav_table_is_read_whole() -> None:
    """Every key of a CalDAV calendar lands in the source; the password is only named."""
    source = parse_calendar({**CALDAV, "busy_ics_url": "https://agenda.example.fr/busy.ics"}, "p.toml")
    assert source.kind == "caldav" and source.external and source.password_env == "RDV_CALDAV_PASSWORD"
    assert source.busy_ics_url == "https://agenda.example.fr/busy.ics"
    assert parse_calendar({"busy_ics_url": "https://a.example/b.ics"}, "p.toml").external


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({**CALDAV, "password": "hunter2"}, "calendar.password: never write the password in the file"),
        ({**CALDAV, "kind": "google"}, "calendar.kind: 'google' must be one of builtin, caldav"),
        ({k: v for k, v in CALDAV.items() if k != "url"}, "calendar.url: a non-empty text is required"),
        ({**CALDAV, "url": "cloud.example.fr/dav"}, "calendar.url: 'cloud.example.fr/dav' must be an http(s):// URL"),
        ({**CALDAV, "url": "https://bob:secret@cloud.example.fr/"}, "calendar.url: put no credentials in the URL"),
        ({**CALDAV, "password_env": "my password"}, "calendar.password_env: 'my password' is not an environment"),
        ({k: v for k, v in CALDAV.items() if k != "calendar"}, "calendar.calendar: a non-empty text is required"),
        ({**CALDAV, "colour": "blue"}, "calendar.colour: unknown key"),
        ({"kind": "builtin", "url": "https://x.example/"}, 'calendar.url: only used with kind = "caldav"'),
    ],
)
def test_bad_tables_are_refused_with_the_key(table: dict[str, Any], message: str) -> None:
    """Each mistake names the file, the key and what is expected; the secret is never echoed."""
    with pytest.raises(ConfigError) as err:
        parse_calendar(table, "p.toml")
    assert str(err.value).startswith("p.toml: ") and message in str(err.value)
    assert "hunter2" not in str(err.value) and "bob:secret" not in str(err.value)


def test_the_password_variable_must_be_set() -> None:
    """The variable named by password_env is read from the environment, and its absence is said."""
    source = parse_calendar(CALDAV, "p.toml")
    assert calendar_password(source, {"RDV_CALDAV_PASSWORD": "s3cret"}) == "s3cret"
    with pytest.raises(ConfigError, match="RDV_CALDAV_PASSWORD must hold the CalDAV password"):
        calendar_password(source, {})


@pytest.mark.parametrize("raw", ["0", "-1", "61", "soon"])
def test_calendar_timeout_is_validated(raw: str) -> None:
    """RDV_CALENDAR_TIMEOUT_SECONDS is a number of seconds in (0, 60]."""
    with pytest.raises(ConfigError, match=f"RDV_CALENDAR_TIMEOUT_SECONDS={raw!r}"):
        load_settings({"RDV_CALENDAR_TIMEOUT_SECONDS": raw})
    assert load_settings({}).calendar_timeout_seconds == 3.0
    assert load_settings({"RDV_CALENDAR_TIMEOUT_SECONDS": "0.5"}).calendar_timeout_seconds == 0.5


def test_the_example_documents_the_calendar() -> None:
    """The bundled example shows the [calendar] table (commented out: builtin by default)."""
    text = (Path(__file__).parents[2] / "service" / "practice.example.toml").read_text("utf-8")
    assert "[calendar]" in text and "password_env" in text
    assert "calendar" not in tomllib.loads(text)


def test_check_config_connects_and_reports(
    tmp_path: Path, radicale: Radicale, agenda: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``rdv check-config`` finds the calendar by its display name and counts its events over
    the horizon; a wrong name fails with the calendars it found."""
    from datetime import datetime, timedelta

    soon = datetime.now(at(3, 9).tzinfo) + timedelta(days=2)
    agenda.save_event(dtstart=soon, dtend=soon + timedelta(hours=1), summary="Congé", uid="leave")
    name = str(agenda.get_display_name())
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    monkeypatch.setenv("RDV_DATA_DIR", str(tmp_path / "data"))  # check-config opens the store too
    monkeypatch.setenv("RDV_PRACTICE_FILE", str(practice_file(tmp_path, radicale.url, name)))
    assert cli.main(["check-config"]) == 0
    out = capsys.readouterr().out
    assert f"calendar (caldav): {name!r}" in out and "1 event(s) in the next 14 days" in out
    monkeypatch.setenv("RDV_PRACTICE_FILE", str(practice_file(tmp_path, radicale.url, "Agenda inconnu")))
    assert cli.main(["check-config"]) == 1
    assert "no calendar is named 'Agenda inconnu'" in capsys.readouterr().err
    monkeypatch.delenv(PASSWORD_ENV)
    assert cli.main(["check-config"]) == 2

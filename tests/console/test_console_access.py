"""Only operators get into the console: a signed, HttpOnly, SameSite=Strict cookie set by a
login form that a cross-site page cannot post; every page and data answer refuses anyone else."""

from __future__ import annotations

from collections.abc import Callable
from http.cookies import SimpleCookie
from typing import Any

import pytest
from starlette.routing import Mount, Route

from service.config import ConfigError, load_settings
from service.console.routes import Console
from service.console.session import SESSION_COOKIE, Sessions
from tests.console.conftest import TOKEN, console_env, form_value, login

# Answers that are not data: the login form and the stylesheet/script it needs.
PUBLIC = {"/console/login", "/console/static"}


def console_paths() -> list[tuple[str, str]]:
    """(method, path) of every console route, with a sample conversation id."""
    found: list[tuple[str, str]] = []
    mount = Console(load_settings(console_env())).routes()[0]
    assert isinstance(mount, Mount)
    for route in mount.app.app.routes:  # ConsoleHeaders(Router)
        if isinstance(route, Route):
            for method in sorted(route.methods or {"GET"}):
                if method != "HEAD":
                    found.append((method, "/console" + route.path.replace("{conv_id}", "call-x")))
    return found


def set_cookies(response: Any) -> dict[str, str]:
    """The Set-Cookie headers of a response, by cookie name (whole header text)."""
    out: dict[str, str] = {}
    for header in response.headers.get_list("set-cookie"):
        name = SimpleCookie(header)
        out[next(iter(name))] = header
    return out


async def test_every_page_and_data_answer_refuses_a_visitor_without_the_token(make_live: Any) -> None:
    """Pages redirect to the login form, data answers are 401, POSTs are 403: nothing shows data."""
    async with make_live(console_env()) as live:
        paths = console_paths()
        assert ("GET", "/console/conversations/call-x") in paths and ("GET", "/console/misses.jsonl") in paths
        for method, path in paths:
            if path in PUBLIC:
                continue
            response = await live.client.request(method, path)
            if method == "POST":
                assert response.status_code == 403, (path, response.status_code)
            elif path.endswith((".json", ".jsonl")):
                assert response.status_code == 401, (path, response.status_code)
            else:
                assert response.status_code == 303, (path, response.status_code)
                assert response.headers["location"].startswith("/console/login?next=")
        # A wrong bearer token is no better than none.
        wrong = await live.client.get("/console/misses.jsonl", headers={"authorization": "Bearer nope"})
        assert wrong.status_code == 401


async def test_the_static_assets_are_public_and_hold_no_data(make_live: Any) -> None:
    """The stylesheet and script load on the login page; they are files of the package."""
    async with make_live(console_env()) as live:
        for asset, kind in (("console.css", "text/css"), ("console.js", "javascript")):
            response = await live.client.get(f"/console/static/{asset}")
            assert response.status_code == 200 and kind in response.headers["content-type"]
            assert "no-store" not in response.headers.get("cache-control", "")


async def test_login_sets_a_signed_httponly_strict_cookie_scoped_to_the_console(make_live: Any) -> None:
    """The right token logs in (303 to where the operator was going) with a cookie the page's
    scripts cannot read and other sites' requests do not carry."""
    async with make_live(console_env()) as live:
        response = await login(live.client, next_url="/console/misses")
        assert response.status_code == 303 and response.headers["location"] == "/console/misses"
        cookie = set_cookies(response)[SESSION_COOKIE].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/console" in cookie
        assert (await live.client.get("/console/misses")).status_code == 200


@pytest.mark.parametrize("target", ["//evil.example/console", "https://evil.example/", "/api/stats/bookings",
                                    "/console\\@evil.example", "/consolex", "/console/\\evil.example"])
async def test_login_never_sends_the_operator_to_another_site(make_live: Any, target: str) -> None:
    """An open redirect through ``next`` lands on the console's overview instead."""
    async with make_live(console_env()) as live:
        response = await login(live.client, next_url=target)
        assert response.status_code == 303 and response.headers["location"] == "/console/"


async def test_a_wrong_token_is_refused_and_sets_no_session(make_live: Any) -> None:
    """401 with the form again, and the pages still redirect to it."""
    async with make_live(console_env()) as live:
        response = await login(live.client, token="guess")
        assert response.status_code == 401 and "Jeton incorrect" in response.text
        assert SESSION_COOKIE not in set_cookies(response)
        assert (await live.client.get("/console/")).status_code == 303


async def test_a_login_form_posted_without_its_nonce_or_from_another_site_is_refused(make_live: Any) -> None:
    """Login CSRF: the nonce must match its signed cookie, and a foreign Origin is refused."""
    async with make_live(console_env()) as live:
        no_nonce = await live.client.post("/console/login", data={"token": TOKEN, "nonce": "x", "next": "/console/"})
        assert no_nonce.status_code == 403
        page = await live.client.get("/console/login")
        foreign = await live.client.post(
            "/console/login", data={"token": TOKEN, "nonce": form_value(page.text, "nonce")},
            headers={"origin": "https://evil.example"},
        )
        assert foreign.status_code == 403 and SESSION_COOKIE not in set_cookies(foreign)


async def test_logout_needs_the_sessions_csrf_token(make_live: Any) -> None:
    """A logout form without the session's token is refused; with it, the session is gone."""
    async with make_live(console_env()) as live:
        await login(live.client)
        page = await live.client.get("/console/")
        csrf = form_value(page.text, "csrf")
        assert (await live.client.post("/console/logout", data={"csrf": "forged"})).status_code == 403
        response = await live.client.post("/console/logout", data={"csrf": csrf})
        assert response.status_code == 303 and response.headers["location"] == "/console/login"
        assert (await live.client.get("/console/")).status_code == 303


async def test_a_cookie_signed_with_another_token_is_worthless(make_live: Any) -> None:
    """Changing RDV_OPERATOR_TOKEN logs every operator out: the key derives from it."""
    forged, _ = Sessions("another-token").open()
    assert Sessions(TOKEN).read(forged) is None
    async with make_live(console_env()) as live:
        live.client.cookies.set(SESSION_COOKIE, forged, path="/console")
        assert (await live.client.get("/console/")).status_code == 303


async def test_every_console_answer_carries_the_security_headers(make_live: Any) -> None:
    """A strict CSP (own scripts and styles only), no framing, no referrer, no caching of data."""
    async with make_live(console_env()) as live:
        await login(live.client)
        response = await live.client.get("/console/")
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert response.headers["referrer-policy"] == "same-origin"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["cache-control"] == "no-store"


async def test_the_operator_token_as_a_bearer_reads_the_data_answers(make_live: Any) -> None:
    """Scripts may fetch the export with ``Authorization: Bearer`` instead of a session."""
    async with make_live(console_env()) as live:
        response = await live.client.get("/console/misses.jsonl", headers={"authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 200


@pytest.mark.parametrize(("env", "present"), [
    ({}, False),
    ({"RDV_OPERATOR_TOKEN": TOKEN}, True),
    ({"RDV_OPERATOR_TOKEN": TOKEN, "RDV_CONSOLE": "false"}, False),
])
async def test_the_console_is_on_by_default_when_a_token_is_set(
    make_live: Callable[..., Any], env: dict[str, str], present: bool
) -> None:
    """No token, no console (404); a token turns it on unless RDV_CONSOLE=false."""
    async with make_live(env) as live:
        response = await live.client.get("/console/login")
        assert (response.status_code == 200) is present
        assert (response.status_code == 404) is not present


@pytest.mark.parametrize(("env", "named"), [
    ({"RDV_CONSOLE": "true"}, "RDV_OPERATOR_TOKEN"),
    ({"RDV_CONSOLE": "maybe", "RDV_OPERATOR_TOKEN": TOKEN}, "RDV_CONSOLE"),
    ({"RDV_ALERTMANAGER_URL": "alertmanager:9093"}, "RDV_ALERTMANAGER_URL"),
    ({"RDV_ALERTMANAGER_URL": "ftp://alertmanager"}, "RDV_ALERTMANAGER_URL"),
    ({"RDV_ALERTMANAGER_URL": "http://am:9093/?x=1"}, "RDV_ALERTMANAGER_URL"),
])
def test_console_settings_are_checked_at_start_up(env: dict[str, str], named: str) -> None:
    """A console without a token, or an Alertmanager URL that is not one, stops the start."""
    with pytest.raises(ConfigError, match=named):
        load_settings(env)


def test_the_alertmanager_url_is_kept_without_its_trailing_slash() -> None:
    """``http://am:9093/`` and ``http://am:9093`` mean the same Alertmanager."""
    assert load_settings({"RDV_ALERTMANAGER_URL": "http://am:9093/"}).alertmanager_url == "http://am:9093"

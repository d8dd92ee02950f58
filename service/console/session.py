"""Who may see the console: a signed session cookie set by the login form.

The cookie holds nothing secret: a random per-session CSRF token, signed (itsdangerous) with
a key derived from ``RDV_OPERATOR_TOKEN``, so changing the token logs every operator out and
replicas sharing the token share sessions. It is HttpOnly, ``SameSite=Strict`` and scoped to
``/console``. The login form itself carries a nonce matched against a signed cookie (double
submit), and logout the session's CSRF token: a cross-site form can post neither.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Final

from itsdangerous import BadSignature, URLSafeTimedSerializer

SESSION_COOKIE: Final = "rdv_console"
LOGIN_COOKIE: Final = "rdv_console_login"
COOKIE_PATH: Final = "/console"
SESSION_SECONDS: Final = 12 * 3600  # one working day, then log in again
LOGIN_FORM_SECONDS: Final = 3600
_KEY_CONTEXT: Final = b"rdv console session key v1"


@dataclass(frozen=True, slots=True)
class Session:
    """A logged-in operator: ``csrf`` is the token its forms must send back."""

    csrf: str


class Sessions:
    """Signs and reads the console's cookies with a key derived from the operator token."""

    def __init__(self, operator_token: str) -> None:
        key = hmac.new(operator_token.encode("utf-8"), _KEY_CONTEXT, hashlib.sha256).hexdigest()
        self._sessions = URLSafeTimedSerializer(key, salt="rdv-console-session")
        self._logins = URLSafeTimedSerializer(key, salt="rdv-console-login")

    def open(self) -> tuple[str, Session]:
        """A new session: (cookie value, session)."""
        session = Session(csrf=secrets.token_urlsafe(24))
        return self._sessions.dumps({"csrf": session.csrf}), session

    def read(self, cookie: str | None) -> Session | None:
        """The session of a cookie value, or None when absent, forged or older than a day."""
        if not cookie:
            return None
        try:
            data = self._sessions.loads(cookie, max_age=SESSION_SECONDS)
        except BadSignature:  # SignatureExpired is a BadSignature
            return None
        csrf = data.get("csrf") if isinstance(data, dict) else None
        return Session(csrf) if isinstance(csrf, str) and csrf else None

    def login_form(self) -> tuple[str, str]:
        """(cookie value, form nonce) for one login form."""
        nonce = secrets.token_urlsafe(24)
        return self._logins.dumps(nonce), nonce

    def login_form_ok(self, cookie: str | None, nonce: str | None) -> bool:
        """True when the form's nonce is the one its signed cookie carries."""
        if not cookie or not nonce:
            return False
        try:
            expected = self._logins.loads(cookie, max_age=LOGIN_FORM_SECONDS)
        except BadSignature:
            return False
        return isinstance(expected, str) and hmac.compare_digest(expected, nonce)


def same_csrf(session: Session, given: str | None) -> bool:
    """Constant-time check of a form's CSRF token against the session's."""
    return given is not None and hmac.compare_digest(session.csrf.encode(), given.encode())

"""Vapi's credentials, checked the way Vapi sends them; secrets compared in constant time.

* custom LLM: ``Authorization: Bearer <key>`` (a Vapi "custom-llm" credential);
* server messages: ``X-Vapi-Secret: <secret>`` (default), ``Authorization: Bearer <secret>``,
  or an HMAC signature of ``"{timestamp}.{raw body}"`` (hex or base64, optionally prefixed
  ``sha256=``) with a timestamp no older than ``RDV_VAPI_MAX_SKEW_SECONDS``.

Nothing is checked when no credential is configured (development only: production refuses
to start without them, see :mod:`service.config`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime

from starlette.requests import Request

from service.config import Settings
from service.http.common import ApiError, bearer_token, same_secret

DIGESTS = {"sha256": hashlib.sha256, "sha512": hashlib.sha512, "sha1": hashlib.sha1}


def check_llm_key(request: Request, settings: Settings) -> None:
    """401 unless the custom-LLM credential matches (when one is configured)."""
    if settings.vapi_llm_key is None:
        return
    if not same_secret(bearer_token(request), settings.vapi_llm_key):
        raise ApiError(401, "missing or wrong custom-LLM credential: send Authorization: Bearer <RDV_VAPI_LLM_KEY>")


def _timestamp_seconds(raw: str) -> float | None:
    try:
        value = float(raw)
    except ValueError:
        return None
    return value / 1000.0 if value > 1e11 else value  # Vapi may send milliseconds


def signature_matches(secret: str, algorithm: str, timestamp: str, body: bytes, given: str) -> bool:
    """True when ``given`` is the HMAC of ``"{timestamp}.{body}"`` in hex or base64."""
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode("utf-8") + b"." + body, DIGESTS[algorithm]).digest()
    presented = given.strip()
    if "=" in presented[:8] and presented.split("=", 1)[0] in DIGESTS:
        presented = presented.split("=", 1)[1]
    candidates = (digest.hex(), base64.b64encode(digest).decode("ascii"))
    return any(hmac.compare_digest(presented.encode("utf-8"), c.encode("ascii")) for c in candidates)


def check_server_message(request: Request, body: bytes, settings: Settings, now: datetime) -> None:
    """401 unless the server message carries the configured credential."""
    secret = settings.vapi_secret
    if secret is None:
        return
    if settings.vapi_auth == "secret":
        if not same_secret(request.headers.get("x-vapi-secret"), secret):
            raise ApiError(401, "missing or wrong X-Vapi-Secret header")
        return
    if settings.vapi_auth == "bearer":
        if not same_secret(bearer_token(request), secret):
            raise ApiError(401, "missing or wrong Authorization: Bearer token")
        return
    signature = request.headers.get(settings.vapi_signature_header)
    timestamp = request.headers.get(settings.vapi_timestamp_header)
    if not signature or not timestamp:
        raise ApiError(
            401, f"missing {settings.vapi_signature_header} or {settings.vapi_timestamp_header} header"
        )
    seconds = _timestamp_seconds(timestamp)
    if seconds is None or abs(now.timestamp() - seconds) > settings.vapi_max_skew_seconds:
        raise ApiError(401, "stale or invalid signature timestamp")
    if not signature_matches(secret, settings.vapi_hmac_algorithm, timestamp, body, signature):
        raise ApiError(401, "invalid request signature")

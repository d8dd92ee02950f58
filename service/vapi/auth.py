"""Vapi's credentials, checked the way Vapi sends them; secrets compared in constant time.

* custom LLM: ``Authorization: Bearer <key>`` (a Vapi "custom-llm" credential);
* server messages: ``X-Vapi-Secret: <secret>`` (default), ``Authorization: Bearer <secret>``,
  or an HMAC signature of ``"{timestamp}.{raw body}"`` (hex or base64, optionally prefixed
  ``sha256=``) with a decimal timestamp within ``RDV_VAPI_MAX_SKEW_SECONDS`` of now, each
  signature accepted once (remembered in the store, so replicas share what they saw).

Nothing is checked when no credential is configured (development only: production refuses
to start without them, see :mod:`service.config`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from datetime import datetime, timedelta

from starlette.requests import Request

from service.config import Settings
from service.http.common import ApiError, Services, bearer_of, bearer_token, same_secret

DIGESTS = {"sha256": hashlib.sha256, "sha512": hashlib.sha512, "sha1": hashlib.sha1}


def check_llm_key(request: Request, settings: Settings) -> None:
    """401 unless the custom-LLM credential matches (when one is configured)."""
    check_llm_authorization(request.headers.get("authorization"), settings)


def check_llm_authorization(authorization: str | None, settings: Settings) -> None:
    """401 unless the ``Authorization`` header's value (None without one) carries the
    custom-LLM credential (when one is configured)."""
    if settings.vapi_llm_key is None:
        return
    if not same_secret(bearer_of(authorization), settings.vapi_llm_key):
        raise ApiError(401, "missing or wrong custom-LLM credential: send Authorization: Bearer <RDV_VAPI_LLM_KEY>")


# Epoch seconds or milliseconds, digits with an optional fraction: "nan", "inf", "1e3" or
# "0x10" would parse as floats, and NaN compares false with every bound (never stale).
TIMESTAMP = re.compile(r"[0-9]{1,16}(?:\.[0-9]{1,6})?")


def timestamp_seconds(raw: str) -> float | None:
    """The epoch seconds of a signature timestamp (seconds or milliseconds), or None when it
    is not a plain decimal number."""
    text = raw.strip()
    if not TIMESTAMP.fullmatch(text):
        return None
    value = float(text)
    return value / 1000.0 if value > 1e11 else value  # Vapi may send milliseconds


def signature_digest(secret: str, algorithm: str, timestamp: str, body: bytes, given: str) -> bytes | None:
    """The HMAC of ``"{timestamp}.{body}"`` when ``given`` is it (hex or base64, optionally
    prefixed ``sha256=``), else None."""
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode("utf-8") + b"." + body, DIGESTS[algorithm]).digest()
    presented = given.strip()
    if "=" in presented[:8] and presented.split("=", 1)[0] in DIGESTS:
        presented = presented.split("=", 1)[1]
    candidates = (digest.hex(), base64.b64encode(digest).decode("ascii"))
    if any(hmac.compare_digest(presented.encode("utf-8"), c.encode("ascii")) for c in candidates):
        return digest
    return None


def check_server_message(request: Request, body: bytes, settings: Settings, now: datetime) -> str | None:
    """401 unless the server message carries the configured credential. In HMAC mode, the
    verified signature's key (algorithm and hex digest, whatever encoding was presented), for
    :func:`refuse_replay`; None in the other modes."""
    secret = settings.vapi_secret
    if secret is None:
        return None
    if settings.vapi_auth == "secret":
        if not same_secret(request.headers.get("x-vapi-secret"), secret):
            raise ApiError(401, "missing or wrong X-Vapi-Secret header")
        return None
    if settings.vapi_auth == "bearer":
        if not same_secret(bearer_token(request), secret):
            raise ApiError(401, "missing or wrong Authorization: Bearer token")
        return None
    signature = request.headers.get(settings.vapi_signature_header)
    timestamp = request.headers.get(settings.vapi_timestamp_header)
    if not signature or not timestamp:
        raise ApiError(
            401, f"missing {settings.vapi_signature_header} or {settings.vapi_timestamp_header} header"
        )
    seconds = timestamp_seconds(timestamp)
    if seconds is None or abs(now.timestamp() - seconds) > settings.vapi_max_skew_seconds:
        raise ApiError(401, "stale or invalid signature timestamp")
    digest = signature_digest(secret, settings.vapi_hmac_algorithm, timestamp, body, signature)
    if digest is None:
        raise ApiError(401, "invalid request signature")
    return f"{settings.vapi_hmac_algorithm}:{digest.hex()}"


async def refuse_replay(svc: Services, key: str | None) -> None:
    """401 when this signature was already accepted (by any replica: the store remembers
    signatures for twice the allowed skew, the longest a signed timestamp stays acceptable)."""
    if key is None:
        return
    now = svc.clock.now()
    window = timedelta(seconds=2 * svc.settings.vapi_max_skew_seconds)
    if not await svc.guarded.remember_signature(key, now, now - window):
        raise ApiError(401, "replayed request: this signature was already accepted")

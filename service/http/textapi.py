"""Who may use the text API, and which conversations it may address.

Three kinds of client, told apart on every request:

* **trusted** — presents ``Authorization: Bearer <RDV_TEXT_API_KEY>`` (a back end such as a
  web chat widget's server): it chooses conversation ids, and its ``caller_phone`` counts as
  verified (it is handed to the turn as the caller id);
* **anonymous** — presents nothing while a key is configured (a browser talking to rdv
  directly): it may only use conversation ids the server issued (``POST /api/conversations``,
  unguessable and signed, so any replica recognises them), and its ``caller_phone`` is
  dropped, never stored: the conversation asks for the number as it does for a withheld one;
* **open** — no key configured, development only (production refuses to start with the text
  API on and no key): the API behaves as it always did, client ids and phones trusted.

Whatever the client, the text API never reaches a Vapi call: a stored conversation that a
Vapi call created, and any id shaped like a Vapi call id (a UUID), answer 404.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import secrets

from starlette.requests import Request

from service.config import Settings
from service.http.common import ApiError, bearer_of, same_secret

ISSUED_PREFIX = "txt_"
ISSUED_ID = re.compile(r"txt_([0-9a-f]{32})([0-9a-f]{32})")
# Vapi's call ids are UUIDs; the text API may not create a conversation with such an id,
# which a Vapi call could later land on.
VAPI_CALL_ID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
ID_KEY_LABEL = b"rdv text API conversation ids"


class Client(enum.Enum):
    """What a text-API request may do, from the credential it presents."""

    TRUSTED = "trusted"
    ANONYMOUS = "anonymous"
    OPEN = "open"

    @property
    def phone_verified(self) -> bool:
        """True when a ``caller_phone`` this client sends counts as the caller id."""
        return self is not Client.ANONYMOUS


def client_of(request: Request, settings: Settings) -> Client:
    """The kind of client making ``request``; 404 when the text API is off, 401 when it
    presents a wrong credential."""
    return client_from(request.headers.get("authorization"), settings)


def client_from(authorization: str | None, settings: Settings) -> Client:
    """The kind of client presenting ``authorization`` (the header's value, None without
    one); 404 when the text API is off, 401 for a wrong credential."""
    if not settings.text_api:
        raise ApiError(404, "the text API is off on this service (RDV_TEXT_API)")
    if settings.text_api_key is None:
        return Client.OPEN
    if authorization is None:
        return Client.ANONYMOUS
    if not same_secret(bearer_of(authorization), settings.text_api_key):
        raise ApiError(401, "wrong text API credential: send Authorization: Bearer <RDV_TEXT_API_KEY>")
    return Client.TRUSTED


def _id_key(settings: Settings) -> bytes:
    """The key signing issued ids, derived from the trace secret for this purpose only."""
    return hmac.new(settings.trace_secret.encode("utf-8"), ID_KEY_LABEL, hashlib.sha256).digest()


def _signature(settings: Settings, nonce: str) -> str:
    return hmac.new(_id_key(settings), nonce.encode("ascii"), hashlib.sha256).hexdigest()[:32]


def issue_id(settings: Settings) -> str:
    """A new conversation id: 128 random bits and their signature (``txt_`` + 64 hex)."""
    nonce = secrets.token_hex(16)
    return f"{ISSUED_PREFIX}{nonce}{_signature(settings, nonce)}"


def issued(settings: Settings, conv_id: str) -> bool:
    """True when ``conv_id`` is an id this service (or a replica sharing its secret) issued."""
    match = ISSUED_ID.fullmatch(conv_id)
    return match is not None and hmac.compare_digest(match.group(2), _signature(settings, match.group(1)))


def not_a_text_conversation(conv_id: str) -> ApiError:
    """The 404 for an id the text API may not address (the same answer whether or not a
    Vapi call holds it)."""
    return ApiError(
        404, f"no text conversation {conv_id!r}: Vapi calls (and UUID-shaped ids) are not reachable "
        "through the text API",
    )


def check_id(client: Client, settings: Settings, conv_id: str) -> None:
    """404 for an id in Vapi's id space; 403 for an anonymous client's own id."""
    if VAPI_CALL_ID.fullmatch(conv_id):
        raise not_a_text_conversation(conv_id)
    if client is Client.ANONYMOUS and not issued(settings, conv_id):
        raise ApiError(
            403, "this conversation id was not issued by the service: start a conversation with "
            "POST /api/conversations, or send Authorization: Bearer <RDV_TEXT_API_KEY>",
        )

"""The OpenAPI 3.1 document of the public HTTP interface, served at ``/openapi.json``."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service import __version__
from service.http.operator import DEFAULT_LIMIT, MAX_LIMIT, WINDOW_PATTERN

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}},
}
CALL_ID = {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,100}$"}
STATES = [
    "START", "QUALIF_NAME", "QUALIF_PREF", "WAIT_CONFIRM", "QUALIF_PHONE", "CONFIRMED",
    "CANCEL_IDENTIFY", "CANCEL_CONFIRM", "CANCELLED", "MODIFY_IDENTIFY", "MODIFY_CONFIRM",
    "TRANSFERRED", "INTENT_ROUTER",
]


# The operator token when RDV_OPERATOR_TOKEN is set; no credential otherwise.
OPERATOR_SECURITY: list[dict[str, list[str]]] = [{"operatorToken": []}, {}]
DOCS = {
    "service": "rdv",
    "what": "conversation engine of a French appointment-booking phone assistant",
    "openapi": "/openapi.json",
    "health": "/healthz",
    "readiness": "/readyz",
    "metrics": "/metrics",
    "console": "/console",
    "readme": "README.md of the rdv repository (configuration, telemetry, Railway, command line)",
}


def _errors(*codes: int) -> dict[str, Any]:
    return {
        str(code): {
            "description": "refused, with a clear message",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for code in codes
    }


def document() -> dict[str, Any]:
    """The OpenAPI document (built on each call: it is small and rarely asked for)."""
    conv_id = {
        "name": "conv_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,128}$"},
    }
    window = {
        "name": "window",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "pattern": WINDOW_PATTERN, "default": "24h"},
        "description": "1h, 24h, 7d, or any N minutes/hours/days up to 31 days",
    }
    idempotency_key = {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "schema": {"type": "string", "pattern": "^[ -~]{1,200}$"},
        "description": "like request_id: a retry with the same key returns the stored answer",
    }
    limit = {
        "name": "limit",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 0, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
        "description": "how many conversations the diagnosis lists one by one",
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "rdv",
            "version": __version__,
            "description": "Conversation engine of a French appointment-booking phone assistant.",
        },
        "paths": {
            "/": {
                "get": {
                    "summary": "Where the documentation and the endpoints are",
                    "operationId": "index",
                    "responses": {"200": {"description": "links",
                                          "content": {"application/json": {"schema": {"type": "object"}}}}},
                }
            },
            "/api/conversations": {
                "post": {
                    "summary": "A new server-issued (unguessable) text conversation id",
                    "operationId": "newConversation",
                    "security": [{"textApiKey": []}, {}],
                    "responses": {
                        "201": {
                            "description": "the new conversation's id",
                            "content": {"application/json": {
                                "schema": {"$ref": "#/components/schemas/NewConversation"}}},
                        },
                        **_errors(401, 404),
                    },
                }
            },
            "/api/conversations/{conv_id}/messages": {
                "post": {
                    "summary": "One caller turn on the text channel",
                    "description": "Without RDV_TEXT_API_KEY's bearer (when one is configured) only server-issued "
                    "ids are accepted (403) and caller_phone is not trusted; ids of Vapi calls are 404.",
                    "operationId": "postMessage",
                    "security": [{"textApiKey": []}, {}],
                    "parameters": [conv_id, idempotency_key],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Message"}}},
                    },
                    "responses": {
                        "200": {
                            "description": "the assistant's answer",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Answer"}}},
                        },
                        **_errors(400, 401, 403, 404, 408, 413, 422, 503),
                    },
                }
            },
            "/api/conversations/{conv_id}": {
                "get": {
                    "summary": "Timeline of one conversation",
                    "operationId": "getConversation",
                    "security": OPERATOR_SECURITY,
                    "parameters": [conv_id],
                    "responses": {
                        "200": {"description": "the timeline",
                                "content": {"application/json": {"schema": {"type": "object"}}}},
                        **_errors(400, 401, 404, 503),
                    },
                }
            },
            "/api/stats/bookings": {
                "get": {
                    "summary": "The manual's booking stats and target table over a window",
                    "operationId": "getBookingStats",
                    "security": OPERATOR_SECURITY,
                    "parameters": [window],
                    "responses": {
                        "200": {"description": "the stats",
                                "content": {"application/json": {"schema": {"type": "object"}}}},
                        **_errors(401, 422, 503),
                    },
                }
            },
            "/api/diagnose": {
                "get": {
                    "summary": "The manual's checklist: where calls stop and the dominant failure pattern",
                    "operationId": "getDiagnosis",
                    "security": OPERATOR_SECURITY,
                    "parameters": [window, limit],
                    "responses": {
                        "200": {"description": "the diagnosis",
                                "content": {"application/json": {"schema": {"type": "object"}}}},
                        **_errors(401, 422, 503),
                    },
                }
            },
            "/api/understanding/misses": {
                "get": {
                    "summary": "The not-understood inbox: caller turns the engine could not use, by state and field",
                    "operationId": "getUnderstandingMisses",
                    "parameters": [
                        {"name": name, "in": "query", "required": False, "description": text,
                         "schema": {"type": "string"}}
                        for name, text in (
                            ("since", "window start: ISO time with zone or a look-back like 24h, 7d (default 24h)"),
                            ("until", "window end: ISO time with zone (default now)"),
                            ("state", "only misses in this state"),
                            ("field", ("only misses of this field (intent, name, preference, slot_choice, phone, menu, "
                                      "yes_no)")),
                            ("pii", "true: utterances unmasked (operator token required)"),
                        )
                    ],
                    "responses": {
                        "200": {"description": "the inbox",
                                "content": {"application/json": {"schema": {"type": "object"}}}},
                        **_errors(401, 403, 422, 503),
                    },
                }
            },
            "/vapi/chat/completions": {
                "post": {
                    "summary": "Vapi custom LLM: one caller turn, streamed as OpenAI chunks",
                    "operationId": "vapiChatCompletions",
                    "security": [{"vapiLlmKey": []}],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ChatRequest"}}},
                    },
                    "responses": {
                        "200": {
                            "description": "Server-Sent Events of chat.completion.chunk objects ending with [DONE], "
                            "or one chat.completion when stream is false",
                            "content": {
                                "text/event-stream": {"schema": {
                                    "type": "object",
                                    "required": ["data"],
                                    "properties": {
                                        "event": {"type": "string", "const": "message"},
                                        "data": {
                                            "type": "string",
                                            "description": "a chat.completion.chunk JSON object "
                                            "(always with a choices array), then [DONE]",
                                            "pattern": "^(\\{.*\"choices\":\\[.*\\}|\\[DONE\\])$",
                                        },
                                    },
                                }},
                                "application/json": {"schema": {"type": "object"}},
                            },
                        },
                        **_errors(400, 401, 408, 413, 422),
                    },
                }
            },
            "/vapi/events": {
                "post": {
                    "summary": "Vapi server messages",
                    "operationId": "vapiEvents",
                    "security": [{"vapiSecret": []}],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ServerMessage"}}},
                    },
                    "responses": {
                        "200": {"description": "acknowledged, or Vapi's typed answer", "content": {
                            "application/json": {"schema": {"type": "object"}}}},
                        **_errors(400, 401, 408, 413, 422, 503),
                    },
                }
            },
            "/healthz": {
                "get": {
                    "summary": "Liveness",
                    "operationId": "healthz",
                    "responses": {"200": {"description": "alive",
                                          "content": {"application/json": {"schema": {"type": "object"}}}}},
                }
            },
            "/readyz": {
                "get": {
                    "summary": ("Readiness (started, not draining, the store commits a write within "
                                "RDV_READY_TIMEOUT_SECONDS)"),
                    "operationId": "readyz",
                    "responses": {
                        "200": {"description": "ready",
                                "content": {"application/json": {"schema": {"type": "object"}}}},
                        **_errors(503),
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {
                "vapiLlmKey": {"type": "http", "scheme": "bearer", "description": "RDV_VAPI_LLM_KEY"},
                "operatorToken": {
                    "type": "http", "scheme": "bearer",
                    "description": "RDV_OPERATOR_TOKEN: required by the operator routes when it is set",
                },
                "vapiSecret": {"type": "apiKey", "in": "header", "name": "X-Vapi-Secret"},
                "textApiKey": {"type": "http", "scheme": "bearer", "description": "RDV_TEXT_API_KEY"},
            },
            "schemas": {
                "Error": ERROR,
                "Call": {
                    "type": "object",
                    "description": "Vapi's call: its id in 'id' (or 'callId' in older payloads)",
                    "anyOf": [
                        {"required": ["id"], "properties": {"id": CALL_ID}},
                        {"required": ["callId"], "not": {"required": ["id"]}, "properties": {"callId": CALL_ID}},
                    ],
                },
                "ContentPart": {
                    "type": "object",
                    "description": "an OpenAI content part; a text part needs its string 'text'",
                    "anyOf": [
                        {"required": ["type", "text"],
                         "properties": {"type": {"const": "text"}, "text": {"type": "string"}}},
                        {"not": {"required": ["type"], "properties": {"type": {"const": "text"}}}},
                    ],
                },
                "ChatRequest": {
                    "type": "object",
                    "required": ["messages", "call"],
                    "properties": {
                        "model": {
                            "description": "echoed in the answer when a printable string of at most 100 "
                            "characters; any other value is ignored (never refused: Vapi would hang up)",
                        },
                        "stream": {"type": "boolean", "default": True},
                        "messages": {
                            "type": "array",
                            "minItems": 1,
                            "items": {
                                "type": "object",
                                "required": ["role"],
                                "properties": {
                                    "role": {"type": "string", "enum": ["system", "user", "assistant", "tool",
                                                                        "function", "developer"]},
                                    "content": {
                                        "type": ["string", "array", "null"],
                                        "items": {"$ref": "#/components/schemas/ContentPart"},
                                    },
                                },
                            },
                        },
                        "call": {"$ref": "#/components/schemas/Call"},
                        "customer": {
                            "description": "Vapi's customer; its 'number' is the caller id when it is a valid "
                            "phone number, anything else counts as withheld (the caller is asked)",
                        },
                    },
                },
                "ServerMessage": {
                    "type": "object",
                    "required": ["message"],
                    "properties": {
                        "message": {
                            "type": "object",
                            "required": ["type"],
                            "properties": {
                                "type": {"type": "string", "minLength": 1, "maxLength": 100},
                                "call": {"$ref": "#/components/schemas/Call"},
                            },
                        }
                    },
                },
                "Message": {
                    "type": "object",
                    "required": ["text"],
                    "properties": {
                        "text": {"type": "string", "maxLength": 2000},
                        "channel": {"type": "string", "enum": ["text", "voice"]},
                        "caller_phone": {
                            "type": ["string", "null"], "pattern": "^[0-9+ ().-]{0,32}$",
                            "description": "a valid phone number (E.164 or French national), else 422; "
                            "empty or null means none",
                        },
                        "request_id": {"type": ["string", "null"], "pattern": "^[ -~]{1,200}$"},
                    },
                },
                "NewConversation": {
                    "type": "object",
                    "required": ["conv_id"],
                    "properties": {"conv_id": {"type": "string", "pattern": "^txt_[0-9a-f]{64}$"}},
                },
                "Answer": {
                    "type": "object",
                    "required": ["conv_id", "turn", "state", "reply", "ended"],
                    "properties": {
                        "conv_id": {"type": "string"},
                        "turn": {"type": "integer", "minimum": 1},
                        "state": {"type": "string", "enum": STATES},
                        "reply": {"type": "string"},
                        "ended": {"type": "boolean"},
                        "action": {"type": ["string", "null"], "enum": ["transfer", "end", None]},
                        "trace_id": {"type": "string"},
                    },
                },
            }
        },
    }


async def openapi(request: Request) -> Response:
    """``GET /openapi.json``."""
    return JSONResponse(document())


async def index(request: Request) -> Response:
    """``GET /``: where the documentation and the service's endpoints are."""
    return JSONResponse({**DOCS, "version": __version__})


ROUTES = [
    Route("/openapi.json", openapi, methods=["GET"], include_in_schema=False),
    Route("/", index, methods=["GET"]),
]

"""`GET /openapi.json`: an OpenAPI 3.1 description of the public HTTP API.

Request bodies come from the msgspec types the ingress decodes into
(`msgspec.json.schema_components`), so the document cannot drift from what is accepted;
responses, headers and the Anthropic and feedback bodies (parsed by hand, not by a type)
are written here. Admin and dashboard routes are left out: they are for operators and
answer only to the admin key.
"""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from tiergate import __version__
from tiergate.chat import ChatRequest

_REF = "#/components/schemas/{name}"
_PASSTHROUGH = "__tiergate_passthrough__"

Schema = dict[str, Any]


def _request_components() -> dict[str, Schema]:
    _, components = msgspec.json.schema_components([ChatRequest], ref_template=_REF)
    chat = components["ChatRequest"]
    chat["properties"].pop(_PASSTHROUGH, None)
    # Fields tiergate does not model are forwarded to OpenAI-compatible upstreams, except
    # the ones that would pick an upstream or a credential (refused with 400).
    chat["additionalProperties"] = True
    chat["description"] = (
        "An OpenAI Chat Completions request. `model` is a model name, a route (`auto`, "
        "`auto:NAME`) or a tier (`tier:budget`). Unknown fields are forwarded to "
        "OpenAI-compatible upstreams; `api_base`, `base_url`, `api_key`, `extra_headers` "
        "and similar upstream overrides are refused."
    )
    return components


_ERROR: Schema = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}

_ANTHROPIC_ERROR: Schema = {
    "type": "object",
    "required": ["type", "error"],
    "properties": {
        "type": {"const": "error"},
        "error": {
            "type": "object",
            "required": ["type", "message"],
            "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
        },
    },
}

_USAGE: Schema = {
    "type": "object",
    "properties": {
        "prompt_tokens": {"type": "integer"},
        "completion_tokens": {"type": "integer"},
        "total_tokens": {"type": "integer"},
        "cost_usd": {"type": "number"},
    },
    "additionalProperties": True,
}

_TOOL_CALL: Schema = {
    "type": "object",
    "required": ["id", "type", "function"],
    "properties": {
        "id": {"type": "string"},
        "type": {"const": "function"},
        "function": {
            "type": "object",
            "required": ["name", "arguments"],
            "properties": {"name": {"type": "string"}, "arguments": {"type": "string"}},
        },
    },
}

_COMPLETION: Schema = {
    "type": "object",
    "required": ["id", "object", "created", "model", "choices"],
    "properties": {
        "id": {"type": "string"},
        "object": {"const": "chat.completion"},
        "created": {"type": "integer"},
        "model": {"type": "string"},
        "choices": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["index", "message", "finish_reason"],
                "properties": {
                    "index": {"type": "integer"},
                    "message": {
                        "type": "object",
                        "properties": {
                            "role": {"const": "assistant"},
                            "content": {"type": ["string", "null"]},
                            "tool_calls": {"type": "array", "items": _TOOL_CALL},
                            "refusal": {"type": ["string", "null"]},
                        },
                    },
                    "finish_reason": {"type": ["string", "null"]},
                },
            },
        },
        "usage": _USAGE,
    },
}

_MESSAGES_REQUEST: Schema = {
    "type": "object",
    "description": "An Anthropic Messages request, translated to the same routing and upstreams.",
    "required": ["model", "max_tokens", "messages"],
    "properties": {
        "model": {"type": "string", "minLength": 1},
        "max_tokens": {"type": "integer", "minimum": 1},
        "messages": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["role", "content"],
                "properties": {
                    "role": {"enum": ["user", "assistant"]},
                    "content": {"anyOf": [{"type": "string"}, {"type": "array"}]},
                },
            },
        },
        "system": {"anyOf": [{"type": "string"}, {"type": "array"}]},
        "stream": {"type": "boolean"},
        "temperature": {"type": "number", "minimum": 0, "maximum": 1},
        "top_p": {"type": "number", "minimum": 0, "maximum": 1},
        "stop_sequences": {"type": "array", "items": {"type": "string"}},
        "tools": {"type": "array", "items": {"type": "object"}},
        "tool_choice": {"type": "object"},
        "metadata": {"type": "object"},
    },
    "additionalProperties": True,
}

_MESSAGE_RESPONSE: Schema = {
    "type": "object",
    "required": ["id", "type", "role", "content", "model"],
    "properties": {
        "id": {"type": "string"},
        "type": {"const": "message"},
        "role": {"const": "assistant"},
        "content": {"type": "array", "items": {"type": "object"}},
        "model": {"type": "string"},
        "stop_reason": {"type": ["string", "null"]},
        "usage": {"type": "object"},
    },
}

_FEEDBACK: Schema = {
    "type": "object",
    "required": ["request_id"],
    "properties": {
        "request_id": {"type": "string", "minLength": 1},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "thumbs": {"enum": ["up", "down"]},
        "comment": {"type": "string"},
    },
    "description": "Exactly one of `score` or `thumbs`.",
}

_MODELS: Schema = {
    "type": "object",
    "required": ["object", "data"],
    "properties": {
        "object": {"const": "list"},
        "data": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "object"],
                "properties": {
                    "id": {"type": "string"},
                    "object": {"const": "model"},
                    "created": {"type": "integer"},
                    "owned_by": {"type": "string"},
                    "tiergate": {"type": "object"},
                },
            },
        },
    },
}

_HEADERS: dict[str, Schema] = {
    name: {"description": text, "schema": {"type": "string"}}
    for name, text in (
        ("x-tiergate-request-id", "The request's id (for feedback and the ledger)."),
        ("x-tiergate-model", "The model that answered, or `none`."),
        ("x-tiergate-tier", "Its tier, or `none`."),
        ("x-tiergate-route", "The route that decided, or `none`."),
        ("x-tiergate-cost-usd", "The cost in USD (an estimate on streams; exact in usage)."),
        ("x-tiergate-cache", "`hit`, `miss` or `bypass`."),
    )
}


def _json(schema: Schema | str, description: str, headers: bool = True) -> Schema:
    ref = {"$ref": _REF.format(name=schema)} if isinstance(schema, str) else schema
    out: Schema = {"description": description, "content": {"application/json": {"schema": ref}}}
    if headers:
        out["headers"] = _HEADERS
    return out


def _errors(*statuses: int, envelope: str = "Error") -> dict[str, Schema]:
    words = {
        400: "The request is malformed (nothing was spent).",
        401: "Missing, unknown or revoked key.",
        403: "The key may not use this model, tier or route.",
        404: "Unknown model, route or tier.",
        413: "The body is over `server.max_body_bytes`.",
        415: "The body is not JSON.",
        429: "Rate limit or budget exceeded.",
        499: "The client closed the connection (never seen by that client; in the ledger).",
        502: "Every upstream attempt failed.",
        503: "No candidate is available (all cooling down after failures).",
        504: "Every upstream attempt timed out.",
    }
    return {str(s): _json(envelope, words[s]) for s in statuses}


_CHAT_ERRORS = (400, 401, 403, 404, 413, 415, 429, 502, 503, 504)
_SECURITY: list[dict[str, list[str]]] = [{"bearer": []}, {"xApiKey": []}, {"apiKey": []}]


def _chat_operation(summary: str) -> Schema:
    return {
        "summary": summary,
        "operationId": "createChatCompletion" if "v1" in summary else "createChatCompletionAlias",
        "tags": ["chat"],
        "security": _SECURITY,
        "parameters": [
            {"name": name, "in": "header", "required": False, "schema": schema, "description": d}
            for name, schema, d in (
                ("x-tiergate-route", {"type": "string"}, "Route instead of the body's model."),
                ("x-tiergate-min-tier", {"type": "string"}, "Lowest tier to use."),
                ("x-tiergate-max-cost-usd", {"type": "string"}, "Cost ceiling (USD)."),
                ("x-tiergate-latency-budget-ms", {"type": "string"}, "Latency budget."),
                ("x-tiergate-cache", {"enum": ["bypass", "no-cache", "off"]}, "Skip the cache."),
                ("x-tiergate-tags", {"type": "string"}, "Comma-separated metadata tags."),
            )
        ],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": _REF.format(name="ChatRequest")}}},
        },
        "responses": {
            "200": {
                "description": "The answer; with `stream: true`, server-sent chunks, then "
                "`[DONE]`.",
                "headers": _HEADERS,
                "content": {
                    "application/json": {"schema": {"$ref": _REF.format(name="ChatCompletion")}},
                    "text/event-stream": {"schema": {"type": "string"}},
                },
            },
            **_errors(*_CHAT_ERRORS),
        },
    }


def build_document() -> Schema:
    """The whole OpenAPI document (pure: no gateway state, same for every instance)."""
    components = _request_components()
    components.update(
        {
            "Error": _ERROR,
            "AnthropicError": _ANTHROPIC_ERROR,
            "ChatCompletion": _COMPLETION,
            "MessagesRequest": _MESSAGES_REQUEST,
            "Message_Response": _MESSAGE_RESPONSE,
            "FeedbackRequest": _FEEDBACK,
            "ModelList": _MODELS,
        }
    )
    health = {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"type": "string"}},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "tiergate",
            "version": __version__,
            "description": "OpenAI-compatible LLM gateway that routes each request to the "
            "cheapest capable model. Errors use the OpenAI error envelope.",
        },
        "paths": {
            "/v1/chat/completions": {"post": _chat_operation("Chat completion (v1)")},
            "/chat/completions": {"post": _chat_operation("Chat completion (alias)")},
            "/v1/messages": {
                "post": {
                    "summary": "Anthropic Messages",
                    "operationId": "createMessage",
                    "tags": ["chat"],
                    "security": _SECURITY,
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": _REF.format(name="MessagesRequest")}
                            }
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "The answer, or server-sent Messages events.",
                            "headers": _HEADERS,
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": _REF.format(name="Message_Response")}
                                },
                                "text/event-stream": {"schema": {"type": "string"}},
                            },
                        },
                        # the Anthropic ingress answers errors in Anthropic's envelope
                        **_errors(*_CHAT_ERRORS, envelope="AnthropicError"),
                    },
                }
            },
            "/v1/models": {
                "get": {
                    "summary": "Models, routes and tiers",
                    "operationId": "listModels",
                    "tags": ["models"],
                    "security": _SECURITY,
                    "responses": {
                        "200": _json("ModelList", "Every model, route and tier.", headers=False),
                        **_errors(401),
                    },
                }
            },
            "/v1/feedback": {
                "post": {
                    "summary": "Feedback on one answer",
                    "operationId": "createFeedback",
                    "tags": ["quality"],
                    "security": _SECURITY,
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": _REF.format(name="FeedbackRequest")}
                            }
                        },
                    },
                    "responses": {
                        "200": _json({"type": "object"}, "Recorded.", headers=False),
                        **_errors(400, 401, 404, 413, 415),
                    },
                }
            },
            "/health/live": {
                "get": {
                    "summary": "Liveness",
                    "operationId": "live",
                    "tags": ["health"],
                    "responses": {"200": _json(health, "The process is up.", headers=False)},
                }
            },
            "/health/ready": {
                "get": {
                    "summary": "Readiness (503 while starting or draining)",
                    "operationId": "ready",
                    "tags": ["health"],
                    "responses": {
                        "200": _json(health, "Ready for traffic.", headers=False),
                        "503": _json(health, "Not ready: starting or shutting down.", False),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "operationId": "metrics",
                    "tags": ["health"],
                    "responses": {
                        "200": {
                            "description": "Prometheus text format.",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        },
                        "401": _json(
                            "Error",
                            "`observability.metrics_token` is set and the request has neither "
                            "it nor the admin key as a Bearer token.",
                            headers=False,
                        ),
                        "429": _json(
                            "Error",
                            "Too many wrong tokens from this address; `Retry-After` says when "
                            "to try again.",
                            headers=False,
                        ),
                    },
                }
            },
        },
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "xApiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "api-key"},
            },
        },
    }


async def openapi_document(request: Request) -> Response:
    """Serve the document, built on first use and kept on the app (it never changes)."""
    state = request.app.state
    body: bytes | None = getattr(state, "openapi_document", None)
    if body is None:
        body = state.openapi_document = msgspec.json.encode(build_document())
    return Response(body, media_type="application/json")

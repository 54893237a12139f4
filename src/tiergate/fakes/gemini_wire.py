"""Gemini ``generateContent`` / ``streamGenerateContent?alt=sse`` as the REST API speaks it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from tiergate.fakes.answer import Plan
from tiergate.fakes.prompt import (
    ANY_TOOL,
    BadRequest,
    Prompt,
    ToolSpec,
    WireProtocol,
    int_or_none,
    media_chars,
    stops_of,
)
from tiergate.fakes.wire import ErrorAnswer, seconds

FINISH_REASON = {
    "stop": "STOP",
    "length": "MAX_TOKENS",
    "tool_calls": "STOP",  # Gemini ends function calls with STOP
    "content_filter": "SAFETY",
    "stop_sequence": "STOP",
}
STATUS = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: ("UNAUTHENTICATED", "Request had invalid authentication credentials."),
    403: ("PERMISSION_DENIED", "The caller does not have permission"),
    404: ("NOT_FOUND", "Requested entity was not found."),
    429: ("RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
    500: ("INTERNAL", "An internal error has occurred. Please retry or report it."),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
}
_CATEGORIES = (
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
)
_SAFE = [{"category": c, "probability": "NEGLIGIBLE"} for c in _CATEGORIES]
_UNSAFE = [
    {"category": c, "probability": "HIGH", "blocked": True}
    if c == "HARM_CATEGORY_DANGEROUS_CONTENT"
    else {"category": c, "probability": "NEGLIGIBLE"}
    for c in _CATEGORIES
]


class GeminiWire:
    """Parsing and rendering for ``/v1beta/models/{model}:generateContent``.

    With ``json_array=True`` it serves ``:streamGenerateContent`` without
    ``alt=sse``: one JSON array of the stream's responses.
    """

    name: WireProtocol = "gemini"

    def __init__(self, *, json_array: bool = False) -> None:
        self.json_array = json_array

    def check_headers(
        self, headers: Mapping[str, str], query: Mapping[str, str], api_key: str | None
    ) -> ErrorAnswer | None:
        """The key in ``x-goog-api-key`` (or ``?key=``), answered as Google does:
        403 PERMISSION_DENIED when missing, 400 API_KEY_INVALID when wrong."""
        if api_key is None:
            return None
        given = headers.get("x-goog-api-key") or query.get("key")
        if not given:
            message = (
                "Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity to "
                "call this API."
            )
            return _error(403, message)
        if given != api_key:
            info = {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            }
            return _error(400, "API key not valid. Please pass a valid API key.", [info])
        return None

    def parse(self, body: Any, path_model: str | None, path_stream: bool) -> Prompt:
        """Read a GenerateContentRequest (model and streaming come from the path)."""
        if not isinstance(body, Mapping):
            raise BadRequest("Invalid JSON payload received.")
        contents = body.get("contents")
        if not isinstance(contents, list) or not contents:
            raise BadRequest("* GenerateContentRequest.contents: contents is not specified")
        system = _get(body, "systemInstruction", "system_instruction")
        chars = len(_parts_text(system.get("parts") if isinstance(system, Mapping) else None))
        last_user = ""
        for content in contents:
            if not isinstance(content, Mapping):
                raise BadRequest("* GenerateContentRequest.contents: invalid content")
            text = _parts_text(content.get("parts"))
            chars += len(text) + media_chars(content.get("parts"))
            if content.get("role", "user") == "user" and text:
                last_user = text
        config = _get(body, "generationConfig", "generation_config")
        config = config if isinstance(config, Mapping) else {}
        json_mode = _get(config, "responseMimeType", "response_mime_type") == "application/json"
        schema = _get(config, "responseSchema", "response_schema") or _get(
            config, "responseJsonSchema", "response_json_schema"
        )
        tools = _tools(body.get("tools"))
        return Prompt(
            protocol="gemini",
            model=path_model or "",
            last_user_text=last_user,
            prompt_chars=chars,
            message_count=len(contents),
            stream=path_stream,
            include_usage=True,
            max_tokens=int_or_none(
                _get(config, "maxOutputTokens", "max_output_tokens"), "maxOutputTokens"
            ),
            stop=stops_of(_get(config, "stopSequences", "stop_sequences")),
            json_mode=json_mode,
            json_schema=schema if json_mode and isinstance(schema, Mapping) else None,
            tools=tools,
            forced_tool=_forced(_get(body, "toolConfig", "tool_config")) if tools else None,
            body=body,
        )

    def render(self, plan: Plan) -> bytes:
        """A GenerateContentResponse (or the JSON array of a non-SSE stream)."""
        if self.json_array:
            return b"[" + b",\r\n".join(orjson.dumps(c) for c in self._chunks(plan)) + b"]"
        return orjson.dumps(self._final(plan, plan.text))

    def render_stream(self, plan: Plan, prompt: Prompt) -> list[bytes]:
        """``data: {GenerateContentResponse}`` frames; the last has the finish and usage.

        No ``[DONE]``: the stream simply ends.
        """
        return [_frame(chunk) for chunk in self._chunks(plan)]

    def _chunks(self, plan: Plan) -> list[dict[str, Any]]:
        if plan.prompt_blocked or (not plan.chunks and not plan.tool_calls):
            return [self._final(plan, plan.text)]
        pieces = list(plan.chunks)
        last = "" if plan.tool_calls else pieces.pop()
        return [*(_partial(plan, piece) for piece in pieces), self._final(plan, last)]

    def error(
        self,
        status: int,
        message: str | None,
        retry_after: float | None,
        code: str | None = None,
    ) -> ErrorAnswer:
        """``{"error": {"code", "message", "status"}}``; 429 carries RetryInfo."""
        details = []
        if retry_after is not None:
            details.append(
                {
                    "@type": "type.googleapis.com/google.rpc.RetryInfo",
                    "retryDelay": f"{seconds(retry_after)}s",
                }
            )
        return _error(503 if status == 529 else status, message, details, code)

    def stream_error(self, status: int, message: str | None, code: str | None = None) -> bytes:
        """An error object as an SSE data frame, after a 200."""
        status = 503 if status == 529 else status
        kind, default = STATUS.get(status, ("INTERNAL", "Internal error."))
        error = {"code": status, "message": message or default, "status": code or kind}
        return _frame({"error": error})

    def _final(self, plan: Plan, text: str) -> dict[str, Any]:
        if plan.prompt_blocked:
            return {
                "promptFeedback": {"blockReason": "SAFETY", "safetyRatings": _UNSAFE},
                "usageMetadata": {
                    "promptTokenCount": plan.input_tokens,
                    "totalTokenCount": plan.input_tokens,
                },
                "modelVersion": plan.model,
            }
        candidate: dict[str, Any] = {}
        parts: list[dict[str, Any]] = [{"text": text}] if text else []
        parts.extend({"functionCall": {"name": c.name, "args": c.args}} for c in plan.tool_calls)
        if parts or plan.finish != "content_filter":
            candidate["content"] = {"parts": parts or [{"text": ""}], "role": "model"}
        candidate["finishReason"] = FINISH_REASON[plan.finish]
        candidate["index"] = 0
        candidate["safetyRatings"] = _UNSAFE if plan.finish == "content_filter" else _SAFE
        usage: dict[str, Any] = {
            "promptTokenCount": plan.input_tokens,
            "candidatesTokenCount": plan.output_tokens,
            "totalTokenCount": plan.input_tokens + plan.output_tokens,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": plan.input_tokens}],
        }
        if plan.cached_tokens:
            usage["cachedContentTokenCount"] = plan.cached_tokens
        return {
            "candidates": [candidate],
            "usageMetadata": usage,
            "modelVersion": plan.model,
            "responseId": _response_id(plan),
        }


def _partial(plan: Plan, text: str) -> dict[str, Any]:
    return {
        "candidates": [{"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}],
        "modelVersion": plan.model,
        "responseId": _response_id(plan),
    }


def _response_id(plan: Plan) -> str:
    return f"fake{plan.serial:016d}"


def _frame(data: Any) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\r\n\r\n"


def _error(
    status: int, message: str | None, details: list[Any] | None = None, code: str | None = None
) -> ErrorAnswer:
    kind, default = STATUS.get(status, ("UNKNOWN", "Unknown error."))
    error: dict[str, Any] = {"code": status, "message": message or default, "status": code or kind}
    if details:
        error["details"] = details
    return ErrorAnswer(status, orjson.dumps({"error": error}))


def _get(mapping: Mapping[str, Any], camel: str, snake: str) -> Any:
    # The REST API accepts proto field names in camelCase and snake_case.
    return mapping.get(camel, mapping.get(snake))


def _parts_text(parts: Any) -> str:
    if not isinstance(parts, list):
        return ""
    pieces: list[str] = []
    for part in parts:
        if not isinstance(part, Mapping):
            continue
        if isinstance(part.get("text"), str):
            pieces.append(part["text"])
        for key in ("functionCall", "function_call", "functionResponse", "function_response"):
            if key in part:
                pieces.append(orjson.dumps(part[key]).decode())
    return "\n".join(pieces)


def _tools(raw: Any) -> tuple[ToolSpec, ...]:
    if not isinstance(raw, list):
        return ()
    specs = []
    for tool in raw:
        if not isinstance(tool, Mapping):
            continue
        declarations = _get(tool, "functionDeclarations", "function_declarations") or []
        for declaration in declarations:
            if not isinstance(declaration, Mapping) or not isinstance(declaration.get("name"), str):
                raise BadRequest("* GenerateContentRequest.tools: function name is required")
            parameters = declaration.get("parameters") or declaration.get("parametersJsonSchema")
            specs.append(
                ToolSpec(declaration["name"], parameters if isinstance(parameters, Mapping) else {})
            )
    return tuple(specs)


def _forced(config: Any) -> str | None:
    if not isinstance(config, Mapping):
        return None
    calling = _get(config, "functionCallingConfig", "function_calling_config")
    if not isinstance(calling, Mapping) or calling.get("mode") != "ANY":
        return None
    allowed = _get(calling, "allowedFunctionNames", "allowed_function_names")
    if isinstance(allowed, list) and allowed and isinstance(allowed[0], str):
        return allowed[0]
    return ANY_TOOL

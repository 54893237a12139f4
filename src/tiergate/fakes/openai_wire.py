"""OpenAI Chat Completions (and embeddings, models) as the public API speaks it."""

from __future__ import annotations

import base64
import hashlib
import random
import struct
import time
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from tiergate.fakes.answer import Plan, estimate_tokens, fragments
from tiergate.fakes.prompt import (
    ANY_TOOL,
    BadRequest,
    Prompt,
    ToolSpec,
    WireProtocol,
    int_or_none,
    media_chars,
    stops_of,
    text_of,
)
from tiergate.fakes.wire import ErrorAnswer, retry_headers

DONE = b"data: [DONE]\n\n"
FINISH = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "content_filter": "content_filter",
    "stop_sequence": "stop",
}
_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Forbidden."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests."),
    500: (
        "server_error",
        None,
        "The server had an error while processing your request. Sorry about that!",
    ),
    503: ("server_error", None, "The server is overloaded or not ready yet."),
}
_FINGERPRINT = "fp_fake0001"


class OpenAIWire:
    """Parsing and rendering for ``POST /v1/chat/completions``."""

    name: WireProtocol = "openai"

    def check_headers(
        self, headers: Mapping[str, str], query: Mapping[str, str], api_key: str | None
    ) -> ErrorAnswer | None:
        """401 unless ``Authorization: Bearer <api_key>`` (when a key is required)."""
        if api_key is None:
            return None
        given = headers.get("Authorization", "")
        if given == f"Bearer {api_key}":
            return None
        if not given.startswith("Bearer ") or not given[7:]:
            message = (
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
            )
            return _error(401, message, "invalid_request_error", None)
        shown = given[7:10] + "*" * 4 + given[-4:]
        message = f"Incorrect API key provided: {shown}. You can find your API key at https://platform.openai.com/account/api-keys."
        return _error(401, message, "invalid_request_error", "invalid_api_key")

    def parse(self, body: Any, path_model: str | None, path_stream: bool) -> Prompt:
        """Read a Chat Completions request body."""
        if not isinstance(body, Mapping):
            raise BadRequest("We could not parse the JSON body of your request.")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequest("you must provide a model parameter", "model")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise BadRequest("Missing required parameter: 'messages'.", "messages")
        chars = 0
        last_user = ""
        for message in messages:
            if not isinstance(message, Mapping) or "role" not in message:
                raise BadRequest("Invalid value for 'messages': each needs a role.", "messages")
            text = text_of(message.get("content"))
            chars += len(text) + media_chars(message.get("content"))
            for call in message.get("tool_calls") or ():
                function = call.get("function", {}) if isinstance(call, Mapping) else {}
                chars += len(str(function.get("name", ""))) + len(str(function.get("arguments")))
            if message["role"] == "user":
                last_user = text
        tools = _tools(body.get("tools"))
        json_mode, schema = _response_format(body.get("response_format"))
        options = body.get("stream_options")
        max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
        return Prompt(
            protocol="openai",
            model=model,
            last_user_text=last_user,
            prompt_chars=chars,
            message_count=len(messages),
            stream=bool(body.get("stream")),
            include_usage=isinstance(options, Mapping) and bool(options.get("include_usage")),
            max_tokens=int_or_none(max_tokens, "max_tokens"),
            stop=stops_of(body.get("stop")),
            json_mode=json_mode,
            json_schema=schema,
            tools=tools,
            forced_tool=_forced(body.get("tool_choice")) if tools else None,
            body=body,
        )

    def render(self, plan: Plan) -> bytes:
        """A ``chat.completion`` object."""
        message: dict[str, Any] = {
            "role": "assistant",
            "content": plan.text if plan.text or not plan.tool_calls else None,
            "refusal": None,
            "annotations": [],
        }
        if plan.tool_calls:
            message["tool_calls"] = [
                {
                    "id": c.id_with("call_"),
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                }
                for c in plan.tool_calls
            ]
        return orjson.dumps(
            {
                "id": _id(plan),
                "object": "chat.completion",
                "created": int(time.time()),
                "model": plan.model,
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "logprobs": None,
                        "finish_reason": FINISH[plan.finish],
                    }
                ],
                "usage": _usage(plan),
                "service_tier": "default",
                "system_fingerprint": _FINGERPRINT,
            }
        )

    def render_stream(self, plan: Plan, prompt: Prompt) -> list[bytes]:
        """``chat.completion.chunk`` frames, the usage chunk if asked, then ``[DONE]``."""
        head = (
            b'data: {"id":"'
            + _id(plan).encode()
            + b'","object":"chat.completion.chunk","created":'
            + str(int(time.time())).encode()
            + b',"model":'
            + orjson.dumps(plan.model)
            + b',"service_tier":"default","system_fingerprint":"'
            + _FINGERPRINT.encode()
            + b'","choices":'
        )
        tail = b',"usage":null}\n\n' if prompt.include_usage else b"}\n\n"

        def chunk(delta: Mapping[str, Any], finish: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return head + orjson.dumps([choice]) + tail

        first: dict[str, Any] = {"role": "assistant", "content": "", "refusal": None}
        if plan.tool_calls and not plan.text:
            first["content"] = None
        frames = [chunk(first)]
        frames.extend(chunk({"content": piece}) for piece in plan.chunks)
        for index, call in enumerate(plan.tool_calls):
            start = {
                "index": index,
                "id": call.id_with("call_"),
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            frames.append(chunk({"tool_calls": [start]}))
            frames.extend(
                chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
                for piece in fragments(call.arguments)
            )
        frames.append(chunk({}, FINISH[plan.finish]))
        if prompt.include_usage:
            frames.append(head + b'[],"usage":' + orjson.dumps(_usage(plan)) + b"}\n\n")
        frames.append(DONE)
        return frames

    def error(
        self,
        status: int,
        message: str | None,
        retry_after: float | None,
        code: str | None = None,
    ) -> ErrorAnswer:
        """``{"error": {"message", "type", "param", "code"}}``."""
        kind, default_code, default = _ERRORS.get(
            status, ("server_error" if status >= 500 else "invalid_request_error", None, "Error.")
        )
        if code == "insufficient_quota":  # the one code that is also its own type
            kind = code
        headers = retry_headers(retry_after)
        return _error(status, message or default, kind, code or default_code, headers)

    def stream_error(self, status: int, message: str | None, code: str | None = None) -> bytes:
        """``data: {"error": {...}}`` — the SDKs raise ``APIError`` on it."""
        kind, default_code, default = _ERRORS.get(status, ("server_error", None, "Overloaded."))
        error = {"message": message or default, "type": kind, "param": None}
        envelope = {"error": {**error, "code": code or default_code}}
        return b"data: " + orjson.dumps(envelope) + b"\n\n"


def render_embeddings(body: Any) -> bytes:
    """``POST /v1/embeddings``: deterministic unit vectors derived from each input."""
    if not isinstance(body, Mapping) or not isinstance(body.get("model"), str):
        raise BadRequest("you must provide a model parameter", "model")
    raw = body.get("input")
    inputs: Sequence[Any] = []
    if isinstance(raw, str) or (isinstance(raw, list) and raw and isinstance(raw[0], int)):
        inputs = [raw]  # one text, or one pre-tokenized input
    elif isinstance(raw, list):
        inputs = raw
    if not inputs:
        raise BadRequest("'input' is a required property", "input")
    dims = int_or_none(body.get("dimensions"), "dimensions") or 1536
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    tokens = 0
    for index, item in enumerate(inputs):
        text = item if isinstance(item, str) else orjson.dumps(item).decode()
        tokens += max(1, estimate_tokens(text))
        vector = embedding_of(text, dims)
        encoded: Any = (
            base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode() if as_base64 else vector
        )
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    return orjson.dumps(
        {
            "object": "list",
            "data": data,
            "model": body["model"],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )


def embedding_of(text: str, dims: int) -> list[float]:
    """A unit vector that depends only on ``text`` and ``dims``."""
    seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")
    rng = random.Random(seed)
    vector = [rng.gauss(0.0, 1.0) for _ in range(dims)]
    norm = sum(v * v for v in vector) ** 0.5 or 1.0
    return [v / norm for v in vector]


def render_models(models: Sequence[str]) -> bytes:
    """``GET /v1/models``."""
    return orjson.dumps(
        {
            "object": "list",
            "data": [
                {"id": m, "object": "model", "created": 1700000000, "owned_by": "tiergate-fake"}
                for m in models
            ],
        }
    )


def _id(plan: Plan) -> str:
    return f"chatcmpl-fake{plan.serial:020d}"


def _usage(plan: Plan) -> dict[str, Any]:
    return {
        "prompt_tokens": plan.input_tokens,
        "completion_tokens": plan.output_tokens,
        "total_tokens": plan.input_tokens + plan.output_tokens,
        "prompt_tokens_details": {"cached_tokens": plan.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _error(
    status: int,
    message: str,
    kind: str,
    code: str | None,
    headers: Mapping[str, str] | None = None,
    param: str | None = None,
) -> ErrorAnswer:
    envelope = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return ErrorAnswer(status, orjson.dumps(envelope), headers=headers or {})


def bad_request(error: BadRequest) -> ErrorAnswer:
    """400 for an invalid request body."""
    return _error(400, error.message, "invalid_request_error", None, param=error.param)


def _tools(raw: Any) -> tuple[ToolSpec, ...]:
    if not isinstance(raw, list):
        return ()
    specs = []
    for tool in raw:
        function = tool.get("function") if isinstance(tool, Mapping) else None
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
            raise BadRequest("Missing required parameter: 'tools[0].function'.", "tools")
        parameters = function.get("parameters")
        specs.append(
            ToolSpec(function["name"], parameters if isinstance(parameters, Mapping) else {})
        )
    return tuple(specs)


def _forced(choice: Any) -> str | None:
    if choice == "required":
        return ANY_TOOL
    if isinstance(choice, Mapping):
        function = choice.get("function")
        if isinstance(function, Mapping) and isinstance(function.get("name"), str):
            return str(function["name"])
    return None


def _response_format(raw: Any) -> tuple[bool, Mapping[str, Any] | None]:
    if not isinstance(raw, Mapping):
        return False, None
    if raw.get("type") == "json_object":
        return True, None
    if raw.get("type") == "json_schema":
        spec = raw.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, Mapping) else None
        return True, schema if isinstance(schema, Mapping) else None
    return False, None

"""Anthropic Messages (``POST /v1/messages``) as the public API speaks it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from tiergate.fakes.answer import Plan, fragments
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
from tiergate.fakes.wire import ErrorAnswer, retry_headers, sse

STOP_REASON = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
    "stop_sequence": "stop_sequence",
}
ERROR_TYPES = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    402: ("billing_error", "Your credit balance is too low to access the Anthropic API."),
    403: ("permission_error", "Your API key does not have permission to use this resource."),
    404: ("not_found_error", "The requested resource could not be found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"),
    500: ("api_error", "Internal server error"),
    504: ("timeout_error", "Request timed out"),
    529: ("overloaded_error", "Overloaded"),
}


class AnthropicWire:
    """Parsing and rendering for ``POST /v1/messages``."""

    name: WireProtocol = "anthropic"

    def check_headers(
        self, headers: Mapping[str, str], query: Mapping[str, str], api_key: str | None
    ) -> ErrorAnswer | None:
        """``anthropic-version`` is required; the key must match when one is set.

        The key comes in ``x-api-key`` or, as recent SDKs send it, as a Bearer token.
        """
        if api_key is not None:
            bearer = headers.get("Authorization", "")
            given = headers.get("x-api-key") or bearer.removeprefix("Bearer ").strip()
            if not given:
                return self.error(401, "x-api-key header is required", None)
            if given != api_key:
                return self.error(401, "invalid x-api-key", None)
        if not headers.get("anthropic-version"):
            return self.error(400, "anthropic-version: header is required", None)
        return None

    def parse(self, body: Any, path_model: str | None, path_stream: bool) -> Prompt:
        """Read a Messages request body (``max_tokens`` is required, as upstream)."""
        if not isinstance(body, Mapping):
            raise BadRequest("Request body must be a JSON object")
        for required in ("model", "max_tokens", "messages"):
            if required not in body:
                raise BadRequest(f"{required}: Field required")
        model = body["model"]
        messages = body["messages"]
        if not isinstance(model, str) or not isinstance(messages, list):
            raise BadRequest("model: Input should be a valid string")
        chars = len(text_of(body.get("system")))
        last_user = ""
        for message in messages:
            if not isinstance(message, Mapping) or message.get("role") not in (
                "user",
                "assistant",
            ):
                raise BadRequest("messages: roles must be 'user' or 'assistant'")
            content = message.get("content")
            text = text_of(content)
            chars += len(text) + media_chars(content)
            if isinstance(content, list):
                for block in content:
                    if isinstance(block, Mapping) and block.get("type") == "tool_use":
                        chars += len(orjson.dumps(block.get("input", {})))
            if message["role"] == "user" and text:
                last_user = text
        tools = _tools(body.get("tools"))
        # Structured outputs: `output_config.format` (current), `output_format` (older beta).
        output_config = body.get("output_config")
        output_format = (
            output_config.get("format") if isinstance(output_config, Mapping) else None
        ) or body.get("output_format")
        schema = None
        if isinstance(output_format, Mapping) and output_format.get("type") == "json_schema":
            raw_schema = output_format.get("schema")
            schema = raw_schema if isinstance(raw_schema, Mapping) else {}
        return Prompt(
            protocol="anthropic",
            model=model,
            last_user_text=last_user,
            prompt_chars=chars,
            message_count=len(messages),
            stream=bool(body.get("stream")),
            include_usage=True,
            max_tokens=int_or_none(body["max_tokens"], "max_tokens"),
            stop=stops_of(body.get("stop_sequences")),
            json_mode=schema is not None,
            json_schema=schema or None,
            tools=tools,
            forced_tool=_forced(body.get("tool_choice")) if tools else None,
            body=body,
        )

    def render(self, plan: Plan) -> bytes:
        """A ``message`` object."""
        message = _message(plan, _content(plan))
        message["stop_reason"] = STOP_REASON[plan.finish]
        message["stop_sequence"] = plan.stop_sequence
        message["usage"] = _usage(plan, plan.output_tokens)
        return orjson.dumps(message)

    def render_stream(self, plan: Plan, prompt: Prompt) -> list[bytes]:
        """message_start, content blocks (with a ping after the first start), deltas,
        message_delta, message_stop — in the documented order."""
        start = _message(plan, [])
        start["stop_reason"] = None
        start["stop_sequence"] = None
        start["usage"] = _usage(plan, 1)
        frames = [sse({"type": "message_start", "message": start}, "message_start")]
        index = 0
        if plan.text or not plan.tool_calls:
            frames.append(_block_start(index, {"type": "text", "text": ""}))
            frames.append(sse({"type": "ping"}, "ping"))
            frames.extend(
                _delta(index, {"type": "text_delta", "text": piece}) for piece in plan.chunks
            )
            frames.append(_block_stop(index))
            index += 1
        for call in plan.tool_calls:
            block = {"type": "tool_use", "id": call.id_with("toolu_"), "name": call.name}
            frames.append(_block_start(index, {**block, "input": {}}))
            if index == 0:
                frames.append(sse({"type": "ping"}, "ping"))
            arguments = orjson.dumps(call.args).decode()
            frames.append(_delta(index, {"type": "input_json_delta", "partial_json": ""}))
            frames.extend(
                _delta(index, {"type": "input_json_delta", "partial_json": piece})
                for piece in fragments(arguments)
            )
            frames.append(_block_stop(index))
            index += 1
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": STOP_REASON[plan.finish], "stop_sequence": plan.stop_sequence},
            "usage": {"output_tokens": plan.output_tokens},
        }
        frames.append(sse(delta, "message_delta"))
        frames.append(sse({"type": "message_stop"}, "message_stop"))
        return frames

    def error(
        self,
        status: int,
        message: str | None,
        retry_after: float | None,
        code: str | None = None,
    ) -> ErrorAnswer:
        """``{"type": "error", "error": {"type", "message"}}``."""
        envelope = {"type": "error", "error": _error_body(status, message, code)}
        return ErrorAnswer(status, orjson.dumps(envelope), headers=retry_headers(retry_after))

    def stream_error(self, status: int, message: str | None, code: str | None = None) -> bytes:
        """``event: error`` after a 200 — the SDKs raise on it."""
        return sse({"type": "error", "error": _error_body(status, message, code)}, "error")


def _error_body(status: int, message: str | None, code: str | None) -> dict[str, str]:
    kind, default = ERROR_TYPES.get(status, ("api_error", "Internal server error"))
    return {"type": code or kind, "message": message or default}


def _message(plan: Plan, content: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": f"msg_fake{plan.serial:020d}",
        "type": "message",
        "role": "assistant",
        "model": plan.model,
        "content": content,
    }


def _content(plan: Plan) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if plan.text or not (plan.tool_calls or plan.prompt_blocked):
        blocks.append({"type": "text", "text": plan.text})
    blocks.extend(
        {"type": "tool_use", "id": c.id_with("toolu_"), "name": c.name, "input": c.args}
        for c in plan.tool_calls
    )
    return blocks


def _usage(plan: Plan, output_tokens: int) -> dict[str, Any]:
    # Anthropic counts cache reads and writes apart from input_tokens.
    return {
        "input_tokens": plan.input_tokens - plan.cached_tokens - plan.cache_write_tokens,
        "cache_creation_input_tokens": plan.cache_write_tokens,
        "cache_read_input_tokens": plan.cached_tokens,
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def _block_start(index: int, block: Mapping[str, Any]) -> bytes:
    return sse(
        {"type": "content_block_start", "index": index, "content_block": block},
        "content_block_start",
    )


def _delta(index: int, delta: Mapping[str, Any]) -> bytes:
    return sse(
        {"type": "content_block_delta", "index": index, "delta": delta}, "content_block_delta"
    )


def _block_stop(index: int) -> bytes:
    return sse({"type": "content_block_stop", "index": index}, "content_block_stop")


def _tools(raw: Any) -> tuple[ToolSpec, ...]:
    if not isinstance(raw, list):
        return ()
    specs = []
    for tool in raw:
        if not isinstance(tool, Mapping) or not isinstance(tool.get("name"), str):
            raise BadRequest("tools.0.name: Field required")
        schema = tool.get("input_schema")
        specs.append(ToolSpec(tool["name"], schema if isinstance(schema, Mapping) else {}))
    return tuple(specs)


def _forced(choice: Any) -> str | None:
    if not isinstance(choice, Mapping):
        return None
    if choice.get("type") == "any":
        return ANY_TOOL
    if choice.get("type") == "tool" and isinstance(choice.get("name"), str):
        return str(choice["name"])
    return None

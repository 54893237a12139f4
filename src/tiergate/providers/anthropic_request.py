"""Canonical request -> Anthropic Messages request (`POST {base_url}/v1/messages`). Pure.

Mapping decisions where the two protocols disagree:

- `max_tokens` is required upstream. Without a client limit we send `DEFAULT_MAX_TOKENS`
  (4096), or the model's own output ceiling from the config or catalog when that is
  lower: enough for any ordinary answer, and it keeps an unbounded request from booking
  a model's whole 32k-64k output window.
- `temperature` is 0..2 in OpenAI and 0..1 here: values above 1 are clamped to 1.0, the
  closest the Messages API can express (rejecting would make `auto` routing fail for a
  request that is fine elsewhere). When both `temperature` and `top_p` are set only
  `temperature` is sent, because current Claude models refuse the pair. From API version
  `2026-10-21` sampling parameters are a 400 at any value, so none are sent then.
- `response_format`: `json_schema` becomes structured output
  (`output_config.format = {"type": "json_schema", "schema": ...}`), which the model is
  constrained by. `json_object` has no schema-less equivalent, so it becomes an explicit
  instruction appended to the system prompt. Neither is ever dropped silently.
- Tool results must open the user turn that carries them, so they are moved before any
  text in a merged user turn. A final assistant turn (a prefill) loses its trailing
  whitespace, which the API rejects.
"""

from __future__ import annotations

import re
from typing import Any

from tiergate.chat import ChatRequest, ImagePart, Message
from tiergate.errors import BadRequest
from tiergate.fleet import Deployment
from tiergate.providers.translate import (
    Piece,
    add_turn,
    content_pieces,
    forced_tool,
    image_source,
    require_turns,
    system_text,
    tool_arguments,
)

DEFAULT_MAX_TOKENS = 4096
"""`max_tokens` sent when the request sets no output limit (the API requires one)."""

SAMPLING_REMOVED_VERSION = "2026-10-21"
"""The first `anthropic-version` that rejects temperature / top_p / top_k outright."""

JSON_OBJECT_INSTRUCTION = (
    "Respond with a single valid JSON object and nothing else: no prose, no code fences."
)

IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_ID_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")


def tool_use_id(call_id: str) -> str:
    """A tool call id in the form the Messages API accepts (`^[a-zA-Z0-9_-]+$`).

    Ids minted by other providers may hold other characters; the same rewrite is applied
    to the tool_use and to its tool_result, so the pair still matches.
    """
    return _ID_UNSAFE.sub("_", call_id) or "_"


def _text_block(text: str) -> Piece:
    return {"type": "text", "text": text}


def _image_block(part: ImagePart, where: str) -> Piece:
    source = image_source(part, where, IMAGE_TYPES)
    if isinstance(source, str):
        return {"type": "image", "source": {"type": "url", "url": source}}
    media_type, data = source
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def _content_blocks(message: Message, where: str) -> list[Piece]:
    return content_pieces(message, where, _text_block, _image_block)


def _turn(message: Message, i: int) -> tuple[str, list[Piece]]:
    """The Messages role and content blocks for one non-system canonical message."""
    where = f"messages[{i}]"
    if message.role == "user":
        return "user", _content_blocks(message, where)
    if message.role == "tool":
        if not message.tool_call_id:
            raise BadRequest(f"{where}: a tool message needs tool_call_id", param=where)
        result: Piece = {"type": "tool_result", "tool_use_id": tool_use_id(message.tool_call_id)}
        content = _content_blocks(message, where)
        if content:
            # A string when the result is one text block: the common, compact form.
            only_text = len(content) == 1 and content[0]["type"] == "text"
            result["content"] = content[0]["text"] if only_text else content
        return "user", [result]
    # assistant
    blocks = _content_blocks(message, where)
    if any(b["type"] == "image" for b in blocks):
        raise BadRequest(f"{where}: assistant messages cannot contain images", param=where)
    for j, call in enumerate(message.tool_calls or ()):
        arg_where = f"{where}.tool_calls[{j}].function.arguments"
        blocks.append(
            {
                "type": "tool_use",
                "id": tool_use_id(call.id),
                "name": call.function.name,
                "input": tool_arguments(call.function.arguments, arg_where),
            }
        )
    return "assistant", blocks


def _conversation(request: ChatRequest) -> tuple[list[str], list[Piece]]:
    """System texts, and alternating turns with consecutive same-role messages merged."""
    system: list[str] = []
    turns: list[Piece] = []
    for i, message in enumerate(request.messages):
        if message.role in ("system", "developer"):
            text = system_text(message, f"messages[{i}]")
            if text:
                system.append(text)
            continue
        role, blocks = _turn(message, i)
        add_turn(turns, role, "content", blocks)
    require_turns(turns)
    for turn in turns:
        if turn["role"] == "user":
            # Tool results must come first in their user turn; sort is stable.
            turn["content"].sort(key=lambda b: b["type"] != "tool_result")
    last = turns[-1]
    if last["role"] == "assistant" and last["content"][-1]["type"] == "text":
        tail = last["content"][-1]
        tail["text"] = tail["text"].rstrip()
        if not tail["text"]:
            last["content"].pop()
            if not last["content"]:
                turns.pop()
    return system, turns


def _tool_choice(request: ChatRequest) -> Piece | None:
    choice = request.tool_choice
    names = {t.function.name for t in request.tools or ()}
    if not names:
        if choice == "required" or (choice is not None and not isinstance(choice, str)):
            raise BadRequest("tool_choice requires tools", param="tool_choice")
        return None
    result: Piece
    if choice is None or choice == "auto":
        result = {"type": "auto"}
    elif choice == "none":
        return {"type": "none"}
    elif choice == "required":
        result = {"type": "any"}
    else:
        result = {"type": "tool", "name": forced_tool(request, names)}
    if request.parallel_tool_calls is False:
        result["disable_parallel_tool_use"] = True
    elif choice is None:
        return None  # the upstream default is auto
    return result


def _tools(request: ChatRequest) -> list[Piece]:
    tools = []
    for tool in request.tools or ():
        fn = tool.function
        spec: Piece = {
            "name": fn.name,
            "input_schema": fn.parameters or {"type": "object", "properties": {}},
        }
        if fn.description:
            spec["description"] = fn.description
        if fn.strict:
            spec["strict"] = True
        tools.append(spec)
    return tools


def default_max_tokens(deployment: Deployment) -> int:
    """`max_tokens` for a request without an output limit: 4096, or less for a model
    whose catalog ceiling is lower."""
    ceiling = deployment.max_output
    return min(DEFAULT_MAX_TOKENS, ceiling) if ceiling else DEFAULT_MAX_TOKENS


def messages_body(request: ChatRequest, deployment: Deployment, *, stream: bool) -> dict[str, Any]:
    """The Messages API request body for a canonical request (pure; raises `BadRequest`)."""
    system, turns = _conversation(request)
    body: dict[str, Any] = {
        "model": deployment.upstream_model,
        "max_tokens": request.output_limit or default_max_tokens(deployment),
        "messages": turns,
    }
    fmt = request.response_format
    if fmt is not None and fmt.type == "json_schema" and fmt.json_schema and fmt.json_schema.schema:
        body["output_config"] = {
            "format": {"type": "json_schema", "schema": fmt.json_schema.schema}
        }
    elif request.wants_json():
        system.append(JSON_OBJECT_INSTRUCTION)
    if system:
        body["system"] = "\n\n".join(system)
    if request.tools:
        body["tools"] = _tools(request)
    choice = _tool_choice(request)
    if choice is not None:
        body["tool_choice"] = choice
    stops = [s for s in request.stop_list() if s]
    if stops:
        body["stop_sequences"] = stops
    if deployment.provider.anthropic_version < SAMPLING_REMOVED_VERSION:
        if request.temperature is not None:
            body["temperature"] = min(request.temperature, 1.0)
        elif request.top_p is not None:
            body["top_p"] = request.top_p
    if request.user:
        body["metadata"] = {"user_id": request.user}
    if stream:
        body["stream"] = True
    return body


def messages_url(base_url: str) -> str:
    """`{base}/v1/messages`; a base that already ends in `/v1` is accepted too."""
    base = base_url.rstrip("/")
    return f"{base}/messages" if base.endswith("/v1") else f"{base}/v1/messages"

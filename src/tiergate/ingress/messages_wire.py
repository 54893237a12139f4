"""The Anthropic Messages API as an ingress: a Messages request -> a canonical request. Pure.

`POST /v1/messages` lets the Anthropic SDK and coding agents use tiergate. The request
becomes a `ChatRequest` (validated like an OpenAI one), the answer goes back as a Messages
response or as the exact Messages event stream.

Where the protocols differ:

- `thinking` / `redacted_thinking` blocks in assistant history are dropped: the canonical
  form cannot carry them, and no upstream request of ours enables thinking. The `thinking`,
  `top_k`, `service_tier` and `container` parameters are dropped for the same reason.
- A `tool_result` with `is_error: true` becomes a tool message whose text starts with
  "Error: " (the canonical tool message has no error flag).
- Tool results split a user turn: `[tool_result, tool_result, text]` becomes two tool
  messages and then one user message, in order.

The answer's way back (a Messages body or event stream) is `messages_answer`.
"""

from __future__ import annotations

from typing import Any

import msgspec

from tiergate.chat import ChatRequest, convert_chat_request
from tiergate.errors import BadRequest

_encoder = msgspec.json.Encoder()

_DROPPED_BLOCKS = frozenset({"thinking", "redacted_thinking"})


# -- request: Messages -> canonical -----------------------------------------------------------


def _field(data: dict[str, Any], name: str, kind: type | tuple[type, ...], what: str) -> Any:
    value = data.get(name)
    if value is None:
        return None
    # bool is an int in Python, never in JSON Schema terms.
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise BadRequest(f"{name}: must be {what}", param=name)
    return value


def _text_block(block: Any, where: str) -> str:
    if not isinstance(block, dict) or block.get("type") != "text":
        kind = block.get("type") if isinstance(block, dict) else type(block).__name__
        raise BadRequest(f"{where}: only text blocks are allowed here, got {kind!r}", param=where)
    text = block.get("text")
    if not isinstance(text, str):
        raise BadRequest(f"{where}.text: must be a string", param=f"{where}.text")
    return text


def _image(block: dict[str, Any], where: str) -> dict[str, Any]:
    source = block.get("source")
    if not isinstance(source, dict):
        raise BadRequest(f"{where}.source: required", param=f"{where}.source")
    if source.get("type") == "base64":
        media_type, data = source.get("media_type"), source.get("data")
        if not isinstance(media_type, str) or not isinstance(data, str):
            raise BadRequest(
                f"{where}.source: base64 images need media_type and data", param=f"{where}.source"
            )
        url = f"data:{media_type};base64,{data}"
    elif source.get("type") == "url" and isinstance(source.get("url"), str):
        url = source["url"]
    else:
        raise BadRequest(
            f"{where}.source: image sources must be base64 or url", param=f"{where}.source"
        )
    return {"type": "image_url", "image_url": {"url": url}}


def _tool_result(block: dict[str, Any], where: str) -> dict[str, Any]:
    tool_use_id = block.get("tool_use_id")
    if not isinstance(tool_use_id, str) or not tool_use_id:
        raise BadRequest(f"{where}.tool_use_id: required", param=f"{where}.tool_use_id")
    content = block.get("content")
    parts: list[dict[str, Any]] = []
    if isinstance(content, str):
        parts = [{"type": "text", "text": content}] if content else []
    elif isinstance(content, list):
        for k, item in enumerate(content):
            item_where = f"{where}.content[{k}]"
            if isinstance(item, dict) and item.get("type") == "image":
                parts.append(_image(item, item_where))
            else:
                parts.append({"type": "text", "text": _text_block(item, item_where)})
    elif content is not None:
        raise BadRequest(f"{where}.content: must be a string or a list", param=f"{where}.content")
    if block.get("is_error") is True:
        if parts and parts[0]["type"] == "text":
            parts[0] = {"type": "text", "text": "Error: " + parts[0]["text"]}
        else:
            parts.insert(0, {"type": "text", "text": "Error"})
    if all(p["type"] == "text" for p in parts):
        # Plain text when it is only text: every upstream takes a string result.
        result: Any = "\n".join(p["text"] for p in parts)
    else:
        result = parts
    return {"role": "tool", "tool_call_id": tool_use_id, "content": result}


def _blocks(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise BadRequest(f"{where}: must be a string or a list of blocks", param=where)
    for k, block in enumerate(content):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise BadRequest(f"{where}[{k}]: a content block needs a type", param=f"{where}[{k}]")
    return content


def _user_messages(content: Any, where: str) -> list[dict[str, Any]]:
    """One Messages user turn as canonical messages: tool results split it, in order."""
    out: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for k, block in enumerate(_blocks(content, where)):
        bwhere = f"{where}[{k}]" if isinstance(content, list) else where
        kind = block["type"]
        if kind == "text":
            parts.append({"type": "text", "text": _text_block(block, bwhere)})
        elif kind == "image":
            parts.append(_image(block, bwhere))
        elif kind == "tool_result":
            if parts:
                out.append({"role": "user", "content": parts})
                parts = []
            out.append(_tool_result(block, bwhere))
        else:
            raise BadRequest(
                f"{bwhere}: content block type {kind!r} is not supported", param=bwhere
            )
    if parts:
        out.append({"role": "user", "content": parts})
    return out


def _assistant_message(content: Any, where: str) -> dict[str, Any] | None:
    text: list[str] = []
    calls: list[dict[str, Any]] = []
    for k, block in enumerate(_blocks(content, where)):
        bwhere = f"{where}[{k}]" if isinstance(content, list) else where
        kind = block["type"]
        if kind == "text":
            text.append(_text_block(block, bwhere))
        elif kind == "tool_use":
            call_id, name, args = block.get("id"), block.get("name"), block.get("input", {})
            if not isinstance(call_id, str) or not isinstance(name, str):
                raise BadRequest(f"{bwhere}: tool_use needs id and name", param=bwhere)
            if not isinstance(args, dict):
                raise BadRequest(f"{bwhere}.input: must be an object", param=f"{bwhere}.input")
            arguments = _encoder.encode(args).decode()
            calls.append(
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                }
            )
        elif kind not in _DROPPED_BLOCKS:
            raise BadRequest(
                f"{bwhere}: content block type {kind!r} is not supported", param=bwhere
            )
    if not text and not calls:
        return None
    message: dict[str, Any] = {"role": "assistant", "content": "".join(text) or None}
    if calls:
        message["tool_calls"] = calls
    return message


def _tools(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise BadRequest("tools: must be a list", param="tools")
    tools = []
    for k, tool in enumerate(raw):
        where = f"tools[{k}]"
        if not isinstance(tool, dict):
            raise BadRequest(f"{where}: must be an object", param=where)
        if tool.get("type") not in (None, "custom"):
            raise BadRequest(
                f"{where}: server tool type {tool['type']!r} is not supported; "
                "define the tool with name, description and input_schema",
                param=where,
            )
        function: dict[str, Any] = {"name": tool.get("name")}
        if "input_schema" in tool:
            function["parameters"] = tool["input_schema"]
        if tool.get("description"):
            function["description"] = tool["description"]
        if tool.get("strict") is not None:
            function["strict"] = tool["strict"]
        tools.append({"type": "function", "function": function})
    return tools


def _tool_choice(raw: Any, chat: dict[str, Any]) -> None:
    if not isinstance(raw, dict):
        raise BadRequest("tool_choice: must be an object", param="tool_choice")
    kind = raw.get("type")
    if kind == "auto":
        chat["tool_choice"] = "auto"
    elif kind == "any":
        chat["tool_choice"] = "required"
    elif kind == "none":
        chat["tool_choice"] = "none"
    elif kind == "tool" and isinstance(raw.get("name"), str):
        chat["tool_choice"] = {"type": "function", "function": {"name": raw["name"]}}
    else:
        raise BadRequest(f"tool_choice: unknown type {kind!r}", param="tool_choice")
    if raw.get("disable_parallel_tool_use") is True:
        chat["parallel_tool_calls"] = False


def _output_format(data: dict[str, Any]) -> dict[str, Any] | None:
    config = data.get("output_config")
    fmt = config.get("format") if isinstance(config, dict) else data.get("output_format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        raise BadRequest(
            "output_config.format: only json_schema is supported", param="output_config"
        )
    return {"type": "json_schema", "json_schema": {"name": "output", "schema": fmt.get("schema")}}


def messages_request_to_chat(data: dict[str, Any]) -> ChatRequest:
    """The canonical request for a Messages API request body (raises `BadRequest`)."""
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    model = _field(data, "model", str, "a string")
    if not model:
        raise BadRequest("model: required", param="model")
    max_tokens = _field(data, "max_tokens", int, "an integer")
    if max_tokens is None:
        raise BadRequest("max_tokens: required", param="max_tokens")
    raw_messages = data.get("messages")
    if not isinstance(raw_messages, list) or not raw_messages:
        raise BadRequest("messages: must be a non-empty list", param="messages")

    messages: list[dict[str, Any]] = []
    system = data.get("system")
    if isinstance(system, str):
        if system:
            messages.append({"role": "system", "content": system})
    elif isinstance(system, list):
        texts = [_text_block(b, f"system[{k}]") for k, b in enumerate(system)]
        if any(texts):
            messages.append({"role": "system", "content": "\n\n".join(t for t in texts if t)})
    elif system is not None:
        raise BadRequest("system: must be a string or a list of text blocks", param="system")

    for i, message in enumerate(raw_messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise BadRequest(f"{where}: must be an object", param=where)
        role, content = message.get("role"), message.get("content")
        if role == "user":
            messages.extend(_user_messages(content, f"{where}.content"))
        elif role == "assistant":
            assistant = _assistant_message(content, f"{where}.content")
            if assistant is not None:
                messages.append(assistant)
        else:
            raise BadRequest(f"{where}.role: must be 'user' or 'assistant'", param=f"{where}.role")

    chat: dict[str, Any] = {"model": model, "messages": messages, "max_tokens": max_tokens}
    if "tools" in data and data["tools"] is not None:
        chat["tools"] = _tools(data["tools"])
    if data.get("tool_choice") is not None:
        _tool_choice(data["tool_choice"], chat)
    stops = _field(data, "stop_sequences", list, "a list of strings")
    if stops:
        chat["stop"] = stops
    for name in ("temperature", "top_p"):
        value = _field(data, name, (int, float), "a number")
        if value is not None:
            chat[name] = value
    if data.get("stream") is not None:
        chat["stream"] = _field(data, "stream", bool, "true or false")
    metadata = _field(data, "metadata", dict, "an object")
    if metadata and isinstance(metadata.get("user_id"), str):
        chat["user"] = metadata["user_id"]
        chat["metadata"] = {"user_id": metadata["user_id"]}
    response_format = _output_format(data)
    if response_format is not None:
        chat["response_format"] = response_format
    if data.get("tiergate") is not None:
        chat["tiergate"] = data["tiergate"]
    try:
        return convert_chat_request(chat)
    except msgspec.ValidationError as exc:
        raise BadRequest(f"invalid request: {exc}") from None

"""Canonical request -> Gemini `GenerateContentRequest`. Pure.

Mapping decisions where the two protocols disagree:

- Tool schemas and `json_schema` response formats are translated to Gemini's `Schema`
  subset by `tiergate.providers.jsonschema_subset` (unsupported keywords dropped, `$ref`
  inlined); a tool without parameters gets no `parameters` (Gemini refuses an empty object).
- Gemini has no tool-call ids: a tool result's function name is recovered from the
  assistant tool call with the same id.
- Canonical history cannot carry Gemini 3's `thoughtSignature`, which Gemini 3 and later
  require on replayed function calls; those parts get Google's documented
  `skip_thought_signature_validator` sentinel (not sent to Gemini 1.x / 2.x models).
- A tool result must be a JSON object: a result that is not one is sent as
  `{"content": <text>}`.
- Images: only the types Gemini documents for image input (PNG, JPEG, WEBP, HEIC, HEIF)
  are sent; anything else is a `BadRequest` naming them rather than an upstream 400.
  `data:` URLs become `inlineData`; http(s) URLs become `fileData` with the MIME type
  taken from the file extension (a URL whose type cannot be told is refused).
- `presence_penalty` / `frequency_penalty` are not sent: several Gemini models reject
  them. Gemini accepts at most 5 stop sequences; more is a `BadRequest`.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, urlsplit

import msgspec

from tiergate.chat import ChatRequest, ImagePart, Message
from tiergate.errors import BadRequest
from tiergate.fleet import Deployment
from tiergate.providers.jsonschema_subset import gemini_schema
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

MAX_STOP_SEQUENCES = 5
SKIP_SIGNATURE = "skip_thought_signature_validator"
"""Google's documented placeholder for a function call whose thought signature is lost."""

_IMAGE_EXTENSIONS = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "heic": "image/heic",
    "heif": "image/heif",
}
IMAGE_TYPES = frozenset(_IMAGE_EXTENSIONS.values())
_NO_SIGNATURE_MODELS = re.compile(r"^(models/)?gemini-(1|2)[.-]")


def _text_part(text: str) -> Piece:
    return {"text": text}


def _image_part(part: ImagePart, where: str) -> Piece:
    source = image_source(part, where, IMAGE_TYPES)
    if isinstance(source, tuple):
        mime_type, data = source
        return {"inlineData": {"mimeType": mime_type, "data": data}}
    extension = urlsplit(source).path.rpartition(".")[2].lower()
    guessed = _IMAGE_EXTENSIONS.get(extension)
    if guessed is None:
        raise BadRequest(
            f"{where}: cannot tell the image type of this URL for Gemini; "
            "send it as a data: URL or use a URL ending in "
            + "/".join(f".{e}" for e in _IMAGE_EXTENSIONS),
            param=where,
        )
    return {"fileData": {"mimeType": guessed, "fileUri": source}}


def _parts(message: Message, where: str) -> list[Piece]:
    return content_pieces(message, where, _text_part, _image_part)


def _tool_response(message: Message, where: str) -> Piece:
    """A tool result as a JSON object: the result itself if it is one, else wrapped."""
    if message.has_image():
        raise BadRequest(f"{where}: Gemini does not accept images in tool results", param=where)
    text = message.text()
    try:
        value = msgspec.json.decode(text)
    except msgspec.DecodeError:
        value = None
    return value if isinstance(value, dict) else {"content": text}


def _contents(request: ChatRequest, sign_calls: bool) -> tuple[list[str], list[Piece]]:
    """System texts, and turns with consecutive same-role messages merged."""
    names = {call.id: call.function.name for m in request.messages for call in m.tool_calls or ()}
    system: list[str] = []
    turns: list[Piece] = []
    for i, message in enumerate(request.messages):
        where = f"messages[{i}]"
        if message.role in ("system", "developer"):
            text = system_text(message, where)
            if text:
                system.append(text)
            continue
        if message.role == "tool":
            name = names.get(message.tool_call_id or "") or message.name
            if not name:
                raise BadRequest(
                    f"{where}: tool_call_id does not match any assistant tool call",
                    param=f"{where}.tool_call_id",
                )
            role = "user"
            parts = [
                {"functionResponse": {"name": name, "response": _tool_response(message, where)}}
            ]
        elif message.role == "assistant":
            role = "model"
            parts = _parts(message, where)
            if any("text" not in p for p in parts):
                raise BadRequest(f"{where}: assistant messages cannot contain images", param=where)
            for j, call in enumerate(message.tool_calls or ()):
                args = tool_arguments(call.function.arguments, f"{where}.tool_calls[{j}].function")
                part: Piece = {"functionCall": {"name": call.function.name, "args": args}}
                if sign_calls:
                    part["thoughtSignature"] = SKIP_SIGNATURE
                parts.append(part)
        else:
            role = "user"
            parts = _parts(message, where)
        add_turn(turns, role, "parts", parts)
    require_turns(turns)
    return system, turns


def _tool_config(request: ChatRequest) -> Piece | None:
    choice = request.tool_choice
    names = {t.function.name for t in request.tools or ()}
    if choice is None:
        return None
    if not names:
        if choice in ("auto", "none"):
            return None
        raise BadRequest("tool_choice requires tools", param="tool_choice")
    if choice == "auto":
        config: Piece = {"mode": "AUTO"}
    elif choice == "none":
        config = {"mode": "NONE"}
    elif choice == "required":
        config = {"mode": "ANY"}
    else:
        config = {"mode": "ANY", "allowedFunctionNames": [forced_tool(request, names)]}
    return {"functionCallingConfig": config}


def _tools(request: ChatRequest) -> list[Piece]:
    declarations = []
    for k, tool in enumerate(request.tools or ()):
        fn = tool.function
        declaration: Piece = {"name": fn.name}
        if fn.description:
            declaration["description"] = fn.description
        if fn.parameters:
            schema = gemini_schema(fn.parameters, f"tools[{k}].function.parameters")
            if schema and (schema.get("properties") or schema.get("type") != "OBJECT"):
                declaration["parameters"] = schema
        declarations.append(declaration)
    return [{"functionDeclarations": declarations}]


def _generation_config(request: ChatRequest) -> Piece:
    config: Piece = {}
    if request.temperature is not None:
        config["temperature"] = request.temperature
    if request.top_p is not None:
        config["topP"] = request.top_p
    if request.output_limit is not None:
        config["maxOutputTokens"] = request.output_limit
    stops = [s for s in request.stop_list() if s]
    if len(stops) > MAX_STOP_SEQUENCES:
        raise BadRequest(
            f"stop: Gemini accepts at most {MAX_STOP_SEQUENCES} stop sequences", param="stop"
        )
    if stops:
        config["stopSequences"] = stops
    if request.seed is not None:
        config["seed"] = request.seed
    fmt = request.response_format
    if request.wants_json():
        config["responseMimeType"] = "application/json"
        if fmt is not None and fmt.json_schema is not None and fmt.json_schema.schema:
            config["responseSchema"] = gemini_schema(
                fmt.json_schema.schema, "response_format.json_schema.schema"
            )
    return config


def generate_content_body(request: ChatRequest, deployment: Deployment) -> dict[str, Any]:
    """The `GenerateContentRequest` for a canonical request (pure; raises `BadRequest`)."""
    sign = not _NO_SIGNATURE_MODELS.match(deployment.upstream_model)
    system, contents = _contents(request, sign)
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": [{"text": "\n\n".join(system)}]}
    if request.tools:
        body["tools"] = _tools(request)
    tool_config = _tool_config(request)
    if tool_config is not None:
        body["toolConfig"] = tool_config
    config = _generation_config(request)
    if config:
        body["generationConfig"] = config
    return body


def model_url(base_url: str, model: str, *, stream: bool) -> str:
    """The method URL; the model id may be given with or without its `models/` prefix."""
    name = quote(model.removeprefix("models/"), safe="-._~")
    method = "streamGenerateContent?alt=sse" if stream else "generateContent"
    return f"{base_url.rstrip('/')}/models/{name}:{method}"

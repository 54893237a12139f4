"""Guards that bound what one request can make the gateway do, and refuse what it must not ask.

`check_json_depth` runs on the raw bytes before any decoder sees them: msgspec recurses on
nesting and would end in `RecursionError` (a 500) on `[[[[…`, and a deep document costs
CPU out of proportion to its size. The check is a handful of C-speed passes over the
bytes (count, then vectorised string masking and a cumulative sum), so it stays cheap at the
body-size limit.

`cancel_on_disconnect` bounds the work to the client's patience: when the caller hangs up
while an answer is being fetched, the upstream call is cancelled instead of paid for.

`screen_request` checks what a schema cannot: message order, tool schemas, and fields that
would choose an upstream or a credential (those come only from configuration).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, TypeVar

from tiergate.chat import ChatRequest, Message
from tiergate.errors import BadRequest, ClientDisconnected

if TYPE_CHECKING:
    from tiergate.ingress.incoming import Incoming

T = TypeVar("T")

# Client fields that, in other gateways, pick the upstream URL, credential or headers.
# tiergate never honours them; it refuses them so the client learns that at once rather
# than believing its request went where it asked.
UPSTREAM_OVERRIDES = frozenset(
    {
        "api_base",
        "base_url",
        "api_key",
        "api_version",
        "api_type",
        "azure_endpoint",
        "azure_ad_token",
        "organization",
        "extra_headers",
        "headers",
        "custom_llm_provider",
        "deployment_id",
        "aws_access_key_id",
        "aws_secret_access_key",
        "vertex_credentials",
    }
)


def json_depth(body: bytes, stop_above: int | None = None) -> int:
    """The deepest nesting of arrays and objects in a JSON text (0 for a scalar).

    Brackets inside string literals do not count. On malformed input the figure is a
    best effort; the decoder will refuse such a body anyway.
    """
    openers = body.count(b"[") + body.count(b"{")
    if stop_above is not None and openers <= stop_above:
        return openers  # cannot nest deeper than the number of openers: the common case
    import numpy as np  # only bodies with many brackets get here

    # Vectorised, so that the cost per byte is a few machine instructions whatever the
    # body holds (a regex over many short strings costs a microsecond per string).
    a = np.frombuffer(body, dtype=np.uint8)
    quote = a == ord('"')
    if b"\\" in body:
        # For each byte: how many backslashes run right up to it. A quote after an odd
        # number of them is escaped and neither opens nor closes a string.
        index = np.arange(a.size, dtype=np.int32)  # bodies are far below 2 GiB
        last_plain = np.maximum.accumulate(np.where(a == ord("\\"), -1, index))
        run_before = np.zeros_like(index)
        run_before[1:] = index[:-1] - last_plain[:-1]
        quote &= (run_before & 1) == 0
    inside = np.bitwise_xor.accumulate(quote.view(np.uint8)).view(np.bool_)
    steps = np.zeros(a.size, dtype=np.int8)
    steps[(a == ord("[")) | (a == ord("{"))] = 1
    steps[(a == ord("]")) | (a == ord("}"))] = -1
    steps[inside] = 0
    return max(int(np.cumsum(steps, dtype=np.int32).max(initial=0)), 0)


def check_json_depth(body: bytes, limit: int) -> None:
    """Raise `BadRequest` when the body nests arrays/objects deeper than `limit`."""
    depth = json_depth(body, stop_above=limit)
    if depth > limit:
        raise BadRequest(
            f"the JSON body nests {depth} levels deep; the limit is {limit}",
            code="json_too_deep",
        )


def screen_request(request: ChatRequest) -> None:
    """Refuse what the schema lets through but no upstream should see; raises `BadRequest`."""
    overrides = sorted(UPSTREAM_OVERRIDES & request.extra.keys())
    if overrides:
        raise BadRequest(
            f"field {overrides[0]!r} is not accepted: tiergate takes upstream URLs, "
            "credentials and headers only from its configuration",
            param=overrides[0],
            code="upstream_override_refused",
        )
    _check_tools(request)
    _check_order(request.messages)


def _check_tools(request: ChatRequest) -> None:
    names: set[str] = set()
    for i, tool in enumerate(request.tools or ()):
        fn = tool.function
        if fn.name in names:
            raise BadRequest(f"tools[{i}]: duplicate function name {fn.name!r}", param="tools")
        names.add(fn.name)
        if fn.parameters is not None:
            _check_schema(fn.parameters, f"tools[{i}].function.parameters", top_level=True)
    choice = request.tool_choice
    if choice is not None and not isinstance(choice, str):
        if choice.function.name not in names:
            raise BadRequest(
                f"tool_choice names {choice.function.name!r}, which is not among the tools",
                param="tool_choice",
            )
    elif choice == "required" and not names:
        raise BadRequest("tool_choice 'required' needs at least one tool", param="tool_choice")
    fmt = request.response_format
    if fmt is not None and fmt.type == "json_schema":
        if fmt.json_schema is None:
            raise BadRequest(
                "response_format of type json_schema needs a json_schema", param="response_format"
            )
        if fmt.json_schema.schema is not None:
            _check_schema(fmt.json_schema.schema, "response_format.json_schema.schema")


def _check_schema(schema: dict[str, Any], where: str, *, top_level: bool = False) -> None:
    from jsonschema import Draft202012Validator, SchemaError

    if top_level and schema and schema.get("type", "object") != "object":
        raise BadRequest(f"{where}: a function's parameters must be a JSON Schema object type")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise BadRequest(f"{where} is not a valid JSON Schema: {exc.message[:200]}") from None
    except RecursionError:
        raise BadRequest(f"{where} is nested too deeply") from None


def _check_order(messages: list[Message]) -> None:
    """A `tool` message answers a call of the assistant message right before its run."""
    open_calls: set[str] = set()
    for i, message in enumerate(messages):
        if message.role == "tool":
            if not message.tool_call_id:
                raise BadRequest(f"messages[{i}]: a tool message needs a tool_call_id")
            if message.tool_call_id not in open_calls:
                raise BadRequest(
                    f"messages[{i}]: tool message for {message.tool_call_id!r} does not follow "
                    "an assistant message that made that tool call",
                    param="messages",
                )
            open_calls.discard(message.tool_call_id)
            continue
        open_calls = (
            {c.id for c in message.tool_calls or ()} if message.role == "assistant" else set()
        )


async def cancel_on_disconnect(incoming: Incoming, work: Awaitable[T]) -> T:
    """Await `work`; if the client disconnects first, cancel it and raise `ClientDisconnected`.

    Call it only once the request body has been read. `work` runs inline in this task (a
    task for the work plus `asyncio.wait` cost about 5% of a request's CPU time at high
    load); how the disconnect is noticed is the server layer's business (`Incoming`).
    """
    task = asyncio.current_task()
    assert task is not None
    gone = False

    def hung_up() -> None:
        nonlocal gone
        if not gone:
            gone = True
            task.cancel()

    unwatch = incoming.watch_disconnect(hung_up)
    try:
        result = await work
    except BaseException:
        if not gone:
            raise
        if task.uncancel() > 0:
            raise  # cancelled by someone else too (a server shutdown): let that through
        # The client is gone: whatever the cancelled work ended with, nobody can be told.
        raise ClientDisconnected(
            "the client closed the connection before the answer was ready"
        ) from None
    finally:
        unwatch()
    if gone:
        task.uncancel()  # the work swallowed our cancellation and finished anyway
    return result

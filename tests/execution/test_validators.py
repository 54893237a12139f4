"""The cheap validators a cascade or speculative route runs on an answer."""

from __future__ import annotations

import pytest

from tiergate.chat import (
    ChatRequest,
    ChatResponse,
    Choice,
    FunctionCall,
    FunctionDef,
    JsonSchemaFormat,
    Message,
    ResponseFormat,
    ResponseMessage,
    Tool,
    ToolCall,
)
from tiergate.config.schema import ValidatorsConfig
from tiergate.execution.validators import check_answer

ALL = ValidatorsConfig()


def _req(**fields: object) -> ChatRequest:
    return ChatRequest(model="auto", messages=[Message(role="user", content="q")], **fields)  # type: ignore[arg-type]


def _resp(text: str | None = None, calls: list[ToolCall] | None = None, finish="stop"):
    message = ResponseMessage(content=text, tool_calls=calls)
    return ChatResponse(id="x", model="m", choices=[Choice(message=message, finish_reason=finish)])


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty answer"),
        ("   \n", "empty answer"),
        ("I'm sorry, but I can't help with that request.", "refusal"),
        ("As an AI language model, I have no opinions.", "refusal"),
        ("Unfortunately, I cannot provide that.", "refusal"),
        ("Honestly, I'm not sure what the answer is.", "hedge"),
        ("I don't know.", "hedge"),
    ],
)
def test_empty_refusal_and_hedge_fail(text, reason):
    verdict = check_answer(_req(), _resp(text), ALL)
    assert not verdict and verdict.reason == reason


def test_plain_answers_pass_and_checks_can_be_turned_off():
    assert check_answer(_req(), _resp("Paris is the capital of France."), ALL)
    assert check_answer(_req(), _resp("Sorry, I can't help."), ValidatorsConfig(no_refusal=False))
    assert not check_answer(_req(), _resp("x", finish="content_filter"), ALL)


def test_json_and_json_schema():
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    fmt = ResponseFormat(type="json_schema", json_schema=JsonSchemaFormat(name="n", schema=schema))
    assert check_answer(_req(response_format=fmt), _resp('{"n": 3}'), ALL)
    assert check_answer(_req(response_format=fmt), _resp('```json\n{"n": 3}\n```'), ALL)
    bad = check_answer(_req(response_format=fmt), _resp('{"n": "3"}'), ALL)
    assert not bad and bad.reason.startswith("JSON does not match the schema: n:")
    missing = check_answer(_req(response_format=fmt), _resp("{}"), ALL)
    assert "(root)" in missing.reason
    plain = ResponseFormat(type="json_object")
    assert check_answer(_req(response_format=plain), _resp("not json"), ALL).reason == (
        "not valid JSON"
    )


def test_tool_call_arguments_against_the_tool_schema():
    params = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    req = _req(tools=[Tool(function=FunctionDef(name="weather", parameters=params))])

    def call(name: str, args: str) -> list[ToolCall]:
        return [ToolCall(id="c", function=FunctionCall(name=name, arguments=args))]

    assert check_answer(req, _resp(calls=call("weather", '{"city": "Oslo"}')), ALL)
    assert "arguments: (root)" in check_answer(req, _resp(calls=call("weather", "{}")), ALL).reason
    assert "not JSON" in check_answer(req, _resp(calls=call("weather", "{cit")), ALL).reason
    assert "unknown tool" in check_answer(req, _resp(calls=call("nope", "{}")), ALL).reason


def test_length_bounds_and_regex():
    config = ValidatorsConfig(min_chars=5, max_chars=20, regex=r"\bparis\b")
    assert check_answer(_req(), _resp("It is Paris."), config)
    assert check_answer(_req(), _resp("Pa"), config).reason == "2 characters < 5"
    assert "> 20" in check_answer(_req(), _resp("Paris " * 10), config).reason
    assert check_answer(_req(), _resp("It is Lyon."), config).reason == (
        "does not match the required pattern"
    )

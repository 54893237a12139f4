"""The Gemini fake, checked against the documented REST shapes (no SDK installed)."""

import json
from typing import Any

import httpx2
import pytest

from tiergate.fakes import FakeUpstream, Fault, Reply, ToolCall

HELLO = {"contents": [{"role": "user", "parts": [{"text": "Hello Gemini"}]}]}
WEATHER = {
    "functionDeclarations": [
        {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "type": "OBJECT",
                "properties": {"city": {"type": "STRING"}},
                "required": ["city"],
            },
        }
    ]
}


def generate(fake: FakeUpstream, body: dict, model: str = "gemini-2.0-flash", **kw: Any):
    url = f"{fake.base_url('gemini')}/models/{model}:generateContent"
    return httpx2.post(url, json=body, headers=kw.pop("headers", {"x-goog-api-key": "k"}), **kw)


def stream(fake: FakeUpstream, body: dict, model: str = "gemini-2.0-flash"):
    url = f"{fake.base_url('gemini')}/models/{model}:streamGenerateContent?alt=sse"
    return httpx2.post(url, json=body, headers={"x-goog-api-key": "k"})


def events(response: httpx2.Response) -> list[dict]:
    assert response.headers["content-type"].startswith("text/event-stream")
    blocks = [b for b in response.text.replace("\r\n", "\n").split("\n\n") if b.strip()]
    assert all(b.startswith("data: ") for b in blocks)  # no event: lines, no [DONE]
    return [json.loads(b[6:]) for b in blocks]


def test_generate_content_shape(sync_fake: FakeUpstream) -> None:
    body = {**HELLO, "systemInstruction": {"parts": [{"text": "Be brief"}]}}
    response = generate(sync_fake, body)
    assert response.status_code == 200
    data = response.json()
    (candidate,) = data["candidates"]
    assert candidate["content"] == {"parts": [{"text": "echo: Hello Gemini"}], "role": "model"}
    assert candidate["finishReason"] == "STOP" and candidate["index"] == 0
    assert {r["category"] for r in candidate["safetyRatings"]} >= {"HARM_CATEGORY_HARASSMENT"}
    usage = data["usageMetadata"]
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + usage["candidatesTokenCount"]
    assert "cachedContentTokenCount" not in usage
    assert data["modelVersion"] == "gemini-2.0-flash"
    record = sync_fake.last
    assert record.protocol == "gemini" and record.model == "gemini-2.0-flash"
    assert not record.stream and record.headers["x-goog-api-key"] == "k"


def test_cached_tokens(sync_fake: FakeUpstream) -> None:
    sync_fake.enqueue(Reply("hi", input_tokens=500, cached_tokens=400, output_tokens=1))
    usage = generate(sync_fake, HELLO).json()["usageMetadata"]
    assert usage["promptTokenCount"] == 500 and usage["cachedContentTokenCount"] == 400


def test_function_call(sync_fake: FakeUpstream) -> None:
    sync_fake.enqueue(Reply(tool_calls=[ToolCall("get_weather", {"city": "Lima"})]))
    data = generate(sync_fake, {**HELLO, "tools": [WEATHER]}).json()
    candidate = data["candidates"][0]
    assert candidate["content"]["parts"] == [
        {"functionCall": {"name": "get_weather", "args": {"city": "Lima"}}}
    ]
    assert candidate["finishReason"] == "STOP"


def test_forced_function_and_response_round_trip(sync_fake: FakeUpstream) -> None:
    body = {
        **HELLO,
        "tools": [WEATHER],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY"}},
    }
    (part,) = generate(sync_fake, body).json()["candidates"][0]["content"]["parts"]
    assert isinstance(part["functionCall"]["args"]["city"], str)
    follow = {
        "contents": [
            *HELLO["contents"],
            {"role": "model", "parts": [part]},
            {
                "role": "user",
                "parts": [{"functionResponse": {"name": "get_weather", "response": {"t": 21}}}],
            },
        ],
        "tools": [WEATHER],
    }
    text = generate(sync_fake, follow).json()["candidates"][0]["content"]["parts"][0]["text"]
    assert text.startswith("echo: ") and "21" in text


def test_max_output_tokens_and_stop(sync_fake: FakeUpstream) -> None:
    long = {
        "contents": [{"parts": [{"text": "[fake:tokens=100] story"}]}],
        "generationConfig": {"maxOutputTokens": 7},
    }
    data = generate(sync_fake, long).json()
    assert data["candidates"][0]["finishReason"] == "MAX_TOKENS"
    assert data["usageMetadata"]["candidatesTokenCount"] == 7


def test_json_response_schema(sync_fake: FakeUpstream) -> None:
    body = {
        **HELLO,
        "generationConfig": {
            "responseMimeType": "application/json",
            "responseSchema": {
                "type": "OBJECT",
                "properties": {"answer": {"type": "STRING"}, "score": {"type": "NUMBER"}},
            },
        },
    }
    text = generate(sync_fake, body).json()["candidates"][0]["content"]["parts"][0]["text"]
    value = json.loads(text)
    assert isinstance(value["answer"], str) and isinstance(value["score"], float)


def test_blocked_prompt(sync_fake: FakeUpstream) -> None:
    sync_fake.enqueue(Reply(prompt_blocked=True))
    data = generate(sync_fake, HELLO).json()
    assert "candidates" not in data
    assert data["promptFeedback"]["blockReason"] == "SAFETY"
    assert any(r.get("blocked") for r in data["promptFeedback"]["safetyRatings"])
    assert data["usageMetadata"]["promptTokenCount"] > 0


def test_safety_finish(sync_fake: FakeUpstream) -> None:
    sync_fake.enqueue(Reply("", finish="content_filter", output_tokens=0))
    (candidate,) = generate(sync_fake, HELLO).json()["candidates"]
    assert candidate["finishReason"] == "SAFETY" and "content" not in candidate
    assert any(r.get("blocked") for r in candidate["safetyRatings"])


def test_stream_sse(sync_fake: FakeUpstream) -> None:
    sync_fake.enqueue(Reply("one two three four", output_tokens=4))
    response = stream(sync_fake, HELLO)
    assert "\r\n\r\n" in response.text
    chunks = events(response)
    assert len(chunks) == 4
    text = "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks)
    assert text == "one two three four"
    assert all(
        "usageMetadata" not in c and "finishReason" not in c["candidates"][0] for c in chunks[:-1]
    )
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert chunks[-1]["usageMetadata"]["candidatesTokenCount"] == 4
    assert sync_fake.last.stream and sync_fake.last.completed


def test_stream_function_call(sync_fake: FakeUpstream) -> None:
    sync_fake.enqueue(Reply("Checking.", tool_calls=[ToolCall("get_weather", {"city": "Oslo"})]))
    chunks = events(stream(sync_fake, {**HELLO, "tools": [WEATHER]}))
    parts = [p for c in chunks for p in c["candidates"][0]["content"]["parts"]]
    assert parts[-1] == {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}}
    assert "".join(p.get("text", "") for p in parts) == "Checking."


def test_stream_error_after_200(sync_fake: FakeUpstream) -> None:
    sync_fake.enqueue(Fault(error_after=2, reply=Reply("a b c d e")))
    response = stream(sync_fake, HELLO)
    assert response.status_code == 200
    chunks = events(response)
    assert len(chunks) == 3
    assert chunks[-1] == {
        "error": {
            "code": 503,
            "message": "The model is overloaded. Please try again later.",
            "status": "UNAVAILABLE",
        }
    }


def test_truncated_stream(sync_fake: FakeUpstream) -> None:
    sync_fake.enqueue(Fault(truncate_after=2, reply=Reply("a b c d e")))
    chunks = events(stream(sync_fake, HELLO))
    assert len(chunks) == 2 and all("finishReason" not in c["candidates"][0] for c in chunks)


@pytest.mark.parametrize(
    ("status", "wire_status", "code"),
    [
        (400, 400, "INVALID_ARGUMENT"),
        (403, 403, "PERMISSION_DENIED"),
        (404, 404, "NOT_FOUND"),
        (500, 500, "INTERNAL"),
        (503, 503, "UNAVAILABLE"),
        (529, 503, "UNAVAILABLE"),
    ],
)
def test_errors(sync_fake: FakeUpstream, status: int, wire_status: int, code: str) -> None:
    sync_fake.enqueue(Fault(status=status))
    response = generate(sync_fake, HELLO)
    assert response.status_code == wire_status
    error = response.json()["error"]
    assert error["code"] == wire_status and error["status"] == code and error["message"]


def test_rate_limit_has_retry_info(sync_fake: FakeUpstream) -> None:
    sync_fake.enqueue(Fault(status=429, retry_after=7))
    response = generate(sync_fake, HELLO)
    assert response.status_code == 429
    error = response.json()["error"]
    assert error["status"] == "RESOURCE_EXHAUSTED"
    assert {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"} in error[
        "details"
    ]


def test_missing_contents_is_invalid(sync_fake: FakeUpstream) -> None:
    response = generate(sync_fake, {"contents": []})
    assert response.status_code == 400
    assert response.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_stream_without_sse_is_a_json_array(sync_fake: FakeUpstream) -> None:
    sync_fake.enqueue(Reply("one two three"))
    url = f"{sync_fake.base_url('gemini')}/models/g:streamGenerateContent"  # no alt=sse
    response = httpx2.post(url, json=HELLO)
    assert response.headers["content-type"].startswith("application/json")
    chunks = response.json()
    assert len(chunks) == 3 and chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert "usageMetadata" in chunks[-1] and "usageMetadata" not in chunks[0]


def test_unknown_action(sync_fake: FakeUpstream) -> None:
    url = f"{sync_fake.base_url('gemini')}/models/g:countTokens"
    assert httpx2.post(url, json=HELLO).status_code == 404


def test_api_key_checks() -> None:
    with FakeUpstream.in_thread(api_key="AIza-good") as fake:
        missing = generate(fake, HELLO, headers={})
        assert missing.status_code == 403
        assert missing.json()["error"]["status"] == "PERMISSION_DENIED"
        wrong = generate(fake, HELLO, headers={"x-goog-api-key": "bad"})
        assert wrong.status_code == 400
        assert wrong.json()["error"]["details"][0]["reason"] == "API_KEY_INVALID"
        assert generate(fake, HELLO, headers={"x-goog-api-key": "AIza-good"}).status_code == 200
        url = f"{fake.base_url('gemini')}/models/g:generateContent?key=AIza-good"
        assert httpx2.post(url, json=HELLO).status_code == 200

"""One script, three wire formats: the same Reply or Fault renders in each protocol."""

import httpx2
import pytest

from tiergate.fakes import FakeUpstream, Fault, Reply, WireProtocol

USER = "What is two plus two?"


def call(
    fake: FakeUpstream, protocol: WireProtocol, stream: bool = False, timeout: float = 5.0
) -> httpx2.Response:
    if protocol == "openai":
        url = fake.base_url("openai") + "/chat/completions"
        body: dict = {"model": "m", "messages": [{"role": "user", "content": USER}]}
    elif protocol == "anthropic":
        url = fake.base_url("anthropic") + "/v1/messages"
        body = {"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": USER}]}
    else:
        action = "streamGenerateContent?alt=sse" if stream else "generateContent"
        url = f"{fake.base_url('gemini')}/models/m:{action}"
        body = {"contents": [{"parts": [{"text": USER}]}]}
    if protocol != "gemini":
        body["stream"] = stream
    headers = {"anthropic-version": "2023-06-01"}
    return httpx2.post(url, json=body, headers=headers, timeout=timeout)


def usage(protocol: WireProtocol, data: dict) -> tuple[int, int, str]:
    if protocol == "openai":
        u = data["usage"]
        return u["prompt_tokens"], u["completion_tokens"], data["choices"][0]["message"]["content"]
    if protocol == "anthropic":
        u = data["usage"]
        return u["input_tokens"], u["output_tokens"], data["content"][0]["text"]
    u = data["usageMetadata"]
    text = data["candidates"][0]["content"]["parts"][0]["text"]
    return u["promptTokenCount"], u["candidatesTokenCount"], text


PROTOCOLS: list[WireProtocol] = ["openai", "anthropic", "gemini"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_same_default_answer_and_tokens(sync_fake: FakeUpstream, protocol: WireProtocol) -> None:
    prompt_tokens, output_tokens, text = usage(protocol, call(sync_fake, protocol).json())
    assert text == f"echo: {USER}"
    assert output_tokens == (len(text) + 3) // 4
    assert prompt_tokens == (len(USER) + 3) // 4 + 3


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_same_scripted_reply(sync_fake: FakeUpstream, protocol: WireProtocol) -> None:
    sync_fake.enqueue(Reply("Four.", input_tokens=30, output_tokens=2))
    assert usage(protocol, call(sync_fake, protocol).json()) == (30, 2, "Four.")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_garbage_is_invalid_json_in_every_protocol(
    sync_fake: FakeUpstream, protocol: WireProtocol
) -> None:
    sync_fake.enqueue(Fault(garbage=True), Fault(garbage=True))
    response = call(sync_fake, protocol)
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()
    streamed = call(sync_fake, protocol, stream=True)
    assert streamed.status_code == 200 and "data: " in streamed.text


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_timeout_before_headers(sync_fake: FakeUpstream, protocol: WireProtocol) -> None:
    sync_fake.enqueue(Fault(delay_headers=2))
    with pytest.raises(httpx2.ReadTimeout):
        call(sync_fake, protocol, timeout=0.2)
    sync_fake.wait_idle_blocking()
    assert sync_fake.last.disconnected and sync_fake.last.protocol == protocol


def test_images_count_as_prompt_tokens(sync_fake: FakeUpstream) -> None:
    image = "data:image/png;base64,iVBORw0KGgo="
    openai_body = {
        "model": "m",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": USER},
                    {"type": "image_url", "image_url": {"url": image}},
                ],
            }
        ],
    }
    data = httpx2.post(sync_fake.base_url() + "/chat/completions", json=openai_body).json()
    gemini_body = {
        "contents": [
            {"parts": [{"text": USER}, {"inlineData": {"mimeType": "image/png", "data": "iVBO"}}]}
        ]
    }
    url = f"{sync_fake.base_url('gemini')}/models/m:generateContent"
    gemini = httpx2.post(url, json=gemini_body).json()
    text_only = (len(USER) + 3) // 4 + 3
    assert data["usage"]["prompt_tokens"] == gemini["usageMetadata"]["promptTokenCount"]
    assert data["usage"]["prompt_tokens"] >= text_only + 700

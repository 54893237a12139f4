"""Server modes, scripting, history and profiles, protocol-independent."""

import asyncio
import subprocess
import sys
import time

import aiohttp
import pytest

from tiergate.fakes import PROFILES, FakeUpstream, Fault, Profile, Reply

CHAT = {"model": "mock-model", "messages": [{"role": "user", "content": "hi there"}]}


async def post(session: aiohttp.ClientSession, fake: FakeUpstream, body: dict = CHAT):
    async with session.post(fake.base_url() + "/chat/completions", json=body) as response:
        return response.status, await response.read()


async def test_base_urls(fake: FakeUpstream) -> None:
    assert fake.base_url("openai") == f"http://127.0.0.1:{fake.port}/v1"
    assert fake.base_url("anthropic") == f"http://127.0.0.1:{fake.port}"
    assert fake.base_url("gemini") == f"http://127.0.0.1:{fake.port}/v1beta"


async def test_start_stop_without_context_manager() -> None:
    fake = FakeUpstream()
    await fake.start()
    try:
        async with aiohttp.ClientSession() as session:
            assert (await post(session, fake))[0] == 200
    finally:
        await fake.stop()


def test_thread_mode_serves_sync_callers() -> None:
    import httpx2

    with FakeUpstream.in_thread() as fake:
        fake.enqueue(Reply("from the thread"))
        response = httpx2.post(fake.base_url() + "/chat/completions", json=CHAT)
        assert response.json()["choices"][0]["message"]["content"] == "from the thread"
        assert fake.calls == 1


async def test_enqueue_by_protocol_and_order(fake: FakeUpstream) -> None:
    fake.enqueue(Reply("anthropic only"), protocol="anthropic")
    fake.enqueue(Reply("first"), Reply("second"))
    async with aiohttp.ClientSession() as session:
        texts = [(await post(session, fake))[1] for _ in range(3)]
    assert b"first" in texts[0] and b"second" in texts[1] and b"echo: hi there" in texts[2]
    assert fake.script.pending == 1


async def test_rejects_other_objects(fake: FakeUpstream) -> None:
    with pytest.raises(TypeError):
        fake.enqueue("hello")  # type: ignore[arg-type]


async def test_clear(fake: FakeUpstream) -> None:
    fake.enqueue(Reply("x"))
    async with aiohttp.ClientSession() as session:
        await post(session, fake)
    fake.enqueue(Reply("y"))
    fake.clear()
    assert fake.calls == 0 and fake.script.pending == 0


async def test_history_timestamps_and_answer(fake: FakeUpstream) -> None:
    fault = Fault(status=500)
    fake.enqueue(fault)
    async with aiohttp.ClientSession() as session:
        status, _ = await post(session, fake)
    record = fake.last
    assert status == 500 and record.status == 500 and record.answer is fault
    assert record.finished is not None and record.duration is not None
    assert record.duration >= 0 and record.completed


async def test_history_limit() -> None:
    async with FakeUpstream(history_limit=2) as fake, aiohttp.ClientSession() as session:
        for _ in range(5):
            await post(session, fake)
        assert fake.calls == 2


async def test_delay_headers_and_chunk_delay(fake: FakeUpstream) -> None:
    fake.enqueue(Reply("a b c d", delay_headers=0.1))
    fake.enqueue(Reply("a b c d", chunk_delay=0.03))
    async with aiohttp.ClientSession() as session:
        start = time.monotonic()
        await post(session, fake)
        assert time.monotonic() - start >= 0.1
        start = time.monotonic()
        await post(session, fake, {**CHAT, "stream": True})
        assert time.monotonic() - start >= 0.03 * 6  # role chunk, 4 words, finish, [DONE]


async def test_scripted_model_name(fake: FakeUpstream) -> None:
    fake.enqueue(Reply("x", model="gpt-4o-2024-08-06"))
    async with aiohttp.ClientSession() as session:
        _, body = await post(session, fake)
    assert b'"model":"gpt-4o-2024-08-06"' in body


async def test_concurrent_requests_are_each_recorded(fake: FakeUpstream) -> None:
    async with aiohttp.ClientSession() as session:
        results = await asyncio.gather(*(post(session, fake) for _ in range(50)))
    assert all(status == 200 for status, _ in results)
    assert fake.calls == 50 and fake.in_flight == 0


async def test_profile_is_reproducible_and_adds_faults() -> None:
    profile = Profile(base_latency_ms=1, per_token_ms=0.1, fault_rate=0.3, seed=42)

    async def statuses() -> list[int]:
        async with FakeUpstream(profile=profile) as fake, aiohttp.ClientSession() as session:
            return [(await post(session, fake))[0] for _ in range(40)]

    first, second = await statuses(), await statuses()
    assert first == second
    assert 200 in first and {429, 500, 503} & set(first)


async def test_profile_adds_latency() -> None:
    profile = Profile(base_latency_ms=50, jitter=0)
    async with FakeUpstream(profile=profile) as fake, aiohttp.ClientSession() as session:
        start = time.monotonic()
        await post(session, fake)
        assert time.monotonic() - start >= 0.05
        fake.enqueue(Reply("scripted answers are not delayed"))
        start = time.monotonic()
        await post(session, fake)
        assert time.monotonic() - start < 0.05


def test_named_profiles() -> None:
    assert {"instant", "demo", "soak"} <= set(PROFILES)
    assert PROFILES["demo"].fault_rate > 0


def test_process_mode() -> None:
    import httpx2

    process = subprocess.Popen(
        [sys.executable, "-m", "tiergate.fakes", "--port", "0", "--profile", "instant"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("fake upstream listening on http://127.0.0.1:")
        url = line.split()[-1]
        response = httpx2.post(url + "/v1/chat/completions", json=CHAT)
        assert response.status_code == 200
        assert response.json()["object"] == "chat.completion"
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


async def test_reply_length(fake: FakeUpstream) -> None:
    fake.enqueue(Reply(length=50))
    async with aiohttp.ClientSession() as session:
        _, body = await post(session, fake)
    assert b'"completion_tokens":50' in body


async def test_profile_answer_lengths_are_fixed_per_prompt() -> None:
    profile = Profile(answer_tokens=(20, 200))

    async def lengths() -> list[bytes]:
        async with FakeUpstream(profile=profile) as fake, aiohttp.ClientSession() as session:
            bodies = []
            for text in ("alpha", "beta", "alpha"):
                body = {**CHAT, "messages": [{"role": "user", "content": text}]}
                bodies.append((await post(session, fake, body))[1].split(b'"usage"')[1])
            return bodies

    first = await lengths()
    assert first[0] == first[2] != first[1]
    assert first == await lengths()

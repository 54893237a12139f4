"""The chat fast path mirrors uvicorn internals: it is used only under the uvicorn releases
it was checked against, and everything still works through ASGI under any other."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import httpx
import pytest
from starlette.responses import Response
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from tests.conftest import three_tier_config
from tiergate.fakes import Reply
from tiergate.ingress import fastpath, server
from tiergate.ingress.fastpath import ChatProtocol, _head, http_protocol, uvicorn_release


def test_release_of_a_version_string() -> None:
    assert uvicorn_release("0.54.0") == (0, 54)
    assert uvicorn_release("1.2.3rc1") == (1, 2)
    assert uvicorn_release("dev") is None


def test_the_installed_uvicorn_is_a_verified_one() -> None:
    # If this fails, a new uvicorn came in: compare its `RequestResponseCycle.send` with
    # `_head` and `_complete`, then add its release to VERIFIED_UVICORN.
    assert http_protocol() is ChatProtocol


def test_an_unverified_uvicorn_gets_its_own_protocol_and_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A server started earlier in this process has set uvicorn's loggers up (level ERROR,
    # no propagation): listen on the logger itself, at WARNING.
    logger = logging.getLogger("uvicorn.error")
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.WARNING, logger="uvicorn.error"):
            assert http_protocol("0.60.1") is HttpToolsProtocol
            assert http_protocol("0.52.4") is HttpToolsProtocol
    finally:
        logger.removeHandler(caplog.handler)
    assert "uvicorn 0.60.1 is not one the chat fast path was checked against" in caplog.text


def test_chat_through_asgi_when_the_fast_path_is_off(
    start_gateway, fake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server, "http_protocol", lambda: HttpToolsProtocol)

    async def unused(*args: object) -> object:
        raise AssertionError("the fast path served a request")

    monkeypatch.setattr(fastpath, "handle_chat", unused)
    gw = start_gateway(three_tier_config(fake))
    fake.enqueue(Reply("through asgi"))
    body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
    r = httpx.post(
        f"{gw.url}/v1/chat/completions", json=body, headers={"authorization": "Bearer tg-test-key"}
    )
    assert r.status_code == 200
    assert r.json()["choices"][0]["message"]["content"] == "through asgi"
    assert [e.request_id for e in gw.ledger.entries] == [r.headers["x-tiergate-request-id"]]


def _cycle(keep_alive: bool = True) -> SimpleNamespace:
    return SimpleNamespace(
        response_started=False,
        waiting_for_100_continue=True,
        default_headers=[(b"server", b"uvicorn")],
        keep_alive=keep_alive,
    )


@pytest.mark.parametrize("value", ["close", "Keep-Alive, Close", " close "])
def test_a_connection_close_header_ends_keep_alive_once(value: str) -> None:
    cycle = _cycle()
    head = _head(cycle, Response(b"", headers={"connection": value}))  # type: ignore[arg-type]
    assert cycle.keep_alive is False
    assert head.lower().count(b"connection:") == 1


def test_a_closing_cycle_says_so_and_an_open_one_does_not() -> None:
    closing = _head(_cycle(keep_alive=False), Response(b""))  # type: ignore[arg-type]
    assert b"connection: close\r\n" in closing
    assert b"connection" not in _head(_cycle(), Response(b""))  # type: ignore[arg-type]
    # "closed" is not "close": a token, not a substring
    cycle = _cycle()
    _head(cycle, Response(b"", headers={"connection": "closed"}))  # type: ignore[arg-type]
    assert cycle.keep_alive is True

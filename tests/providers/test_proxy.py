"""Upstream calls through an HTTP proxy (CONNECT tunnels), against a real local proxy:
which proxy is used (config, environment, NO_PROXY, `direct`), the handshake, keep-alive
through the tunnel, TLS end to end, the errors, and that credentials never show."""

from __future__ import annotations

import base64
import dataclasses
import logging
import socket
import ssl

import openai
import pytest

from tests.conftest import LiveGateway, three_tier_config
from tests.providers.connect_proxy import ConnectProxy
from tests.providers.test_transport import (
    RawServer,
    call,
    keep_answering,
    post_read,
    provider,
    tls_server,
    transport,
)
from tiergate.errors import UpstreamError
from tiergate.fakes import FakeUpstream, Reply
from tiergate.providers.http1_proxy import Proxy, choose_proxy, parse_proxy
from tiergate.providers.transport import Transport

SECRET = "s3cr:t@x"  # a password that needs percent-encoding in a URL
USERINFO = "alice:s3cr%3At%40x"
TOKEN = base64.b64encode(f"alice:{SECRET}".encode()).decode()

_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture(autouse=True)
def _no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's own proxy settings must not leak into these tests."""
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


def _assert_no_secret(text: str) -> None:
    assert SECRET not in text and "s3cr%3At%40x" not in text and TOKEN not in text


# -- choosing the proxy -----------------------------------------------------------------------


def test_a_proxy_url_with_credentials_and_default_port():
    proxy = parse_proxy(f"http://{USERINFO}@Proxy.Corp")
    assert (proxy.host, proxy.port) == ("proxy.corp", 80)
    assert proxy.authorization == f"Basic {TOKEN}"
    assert str(proxy) == "proxy.corp:80"
    _assert_no_secret(repr(proxy))
    assert parse_proxy("http://[::1]:3128/") == Proxy("::1", 3128)
    assert str(parse_proxy("http://[::1]:3128")) == "[::1]:3128"


def test_which_proxy_an_origin_uses():
    env = {"https": "http://p-tls:3128", "http": "p-plain:8080", "no": "internal.corp,.local"}
    assert choose_proxy(None, "https", "api.openai.com", env) == Proxy("p-tls", 3128)
    assert choose_proxy(None, "http", "api.openai.com", env) == Proxy("p-plain", 8080)
    assert choose_proxy(None, "https", "internal.corp", env) is None
    assert choose_proxy(None, "https", "llm.local", env) is None
    assert choose_proxy(None, "https", "api.openai.com", {"http": "http://p:1"}) is None
    assert choose_proxy("direct", "https", "api.openai.com", env) is None
    # An explicit proxy is always used: NO_PROXY is the environment's business.
    assert choose_proxy("http://mine:9", "https", "internal.corp", env) == Proxy("mine", 9)


def test_an_unusable_environment_proxy_is_named_without_its_secret():
    with pytest.raises(ValueError, match=r"HTTPS_PROXY from the environment.*https://") as err:
        choose_proxy(None, "https", "api.openai.com", {"https": f"https://{USERINFO}@p:1"})
    _assert_no_secret(str(err.value))


# -- through the tunnel -----------------------------------------------------------------------


async def test_plain_http_through_the_proxy_reuses_one_tunnel():
    async with ConnectProxy() as proxy, RawServer(keep_answering) as server:
        up = dataclasses.replace(provider(server.url), proxy=proxy.proxy_url())
        async with transport(up) as client:
            for _ in range(3):
                assert await post_read(client, up, server.url) == b'{"ok":true}'
        assert proxy.tunnels == 1 and server.connections == 1 and len(server.heads) == 3
        target = f"127.0.0.1:{server.port}"
        assert proxy.heads[0] == f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode()
        assert f"host: {target}".encode() in server.heads[0]
        assert proxy.authorizations == [None]


async def test_tls_runs_end_to_end_through_the_tunnel(tmp_path, monkeypatch):
    async with ConnectProxy() as proxy, tls_server(tmp_path) as (server, cert):
        # The certificate names localhost; the proxy is 127.0.0.1: the name checked is
        # the provider's, so the handshake can only pass if TLS runs end to end.
        trusting = ssl.create_default_context(cafile=str(cert))
        monkeypatch.setattr(Transport, "_tls_context", lambda self: trusting)
        url = f"https://localhost:{server.port}/v1/chat/completions"
        up = dataclasses.replace(provider(url), proxy=proxy.proxy_url())
        async with transport(up) as client:
            for _ in range(2):
                assert await post_read(client, up, url) == b'{"ok":true}'
        assert proxy.tunnels == 1
        assert proxy.heads[0].startswith(f"CONNECT localhost:{server.port} HTTP/1.1\r\n".encode())


async def test_an_untrusted_certificate_through_the_tunnel_is_refused(tmp_path):
    async with ConnectProxy() as proxy, tls_server(tmp_path) as (server, _):
        url = f"https://localhost:{server.port}/v1/chat/completions"
        up = dataclasses.replace(provider(url), proxy=proxy.proxy_url())
        async with transport(up) as client:
            with pytest.raises(UpstreamError, match=r"connection failed.*(?i:certificate)"):
                await client.post(up, call(url))
        assert proxy.tunnels == 1 and server.heads == []


async def test_credentials_are_sent_percent_decoded():
    async with (
        ConnectProxy(credentials=("alice", SECRET)) as proxy,
        RawServer(keep_answering) as server,
    ):
        up = dataclasses.replace(provider(server.url), proxy=proxy.proxy_url(USERINFO))
        async with transport(up) as client:
            assert await post_read(client, up, server.url) == b'{"ok":true}'
        assert proxy.authorizations == [f"alice:{SECRET}"]
        assert f"\r\nProxy-Authorization: Basic {TOKEN}\r\n".encode() in proxy.heads[0]
        # The upstream never sees the proxy's credentials.
        assert b"proxy-authorization" not in server.heads[0].lower()


async def test_refused_authentication_names_the_proxy_never_the_credentials(caplog):
    caplog.set_level(logging.DEBUG)
    async with (
        ConnectProxy(credentials=("alice", "other")) as proxy,
        RawServer(keep_answering) as server,
    ):
        up = dataclasses.replace(provider(server.url), proxy=proxy.proxy_url(USERINFO))
        async with transport(up) as client:
            with pytest.raises(UpstreamError) as err:
                await client.post(up, call(server.url))
        message = str(err.value)
        assert f"via proxy 127.0.0.1:{proxy.port}" in message
        assert "refused authentication" in message and "407" in message
        assert err.value.retryable is False  # the same proxy would refuse again
        _assert_no_secret(message)
        _assert_no_secret(repr(err.value))
        _assert_no_secret(repr(up))
        _assert_no_secret(caplog.text)
        assert server.connections == 0


async def test_a_proxy_without_credentials_configured_says_so():
    async with ConnectProxy(credentials=("alice", SECRET)) as proxy:
        url = "http://127.0.0.1:9/v1/chat/completions"
        up = dataclasses.replace(provider(url), proxy=proxy.proxy_url())
        async with transport(up) as client:
            with pytest.raises(UpstreamError, match="no credentials configured"):
                await client.post(up, call(url))


@pytest.mark.parametrize("status", ["403 Forbidden", "502 Bad Gateway"])
async def test_a_refused_tunnel_gives_the_proxy_status_line(status):
    async with ConnectProxy(refuse=status) as proxy:
        url = "http://api.example.test/v1/chat/completions"
        up = dataclasses.replace(provider(url), proxy=proxy.proxy_url())
        async with transport(up) as client:
            with pytest.raises(UpstreamError) as err:
                await client.post(up, call(url))
        assert str(err.value) == (
            f"provider up via proxy 127.0.0.1:{proxy.port}: the proxy refused the tunnel to "
            f"api.example.test:80: HTTP/1.1 {status}"
        )
        # The proxy resolves the provider's name: we never looked it up.
        assert proxy.heads[0].startswith(b"CONNECT api.example.test:80 HTTP/1.1\r\n")
        # A policy refusal comes back on a retry; a 502 (the provider out of the proxy's
        # reach) may not.
        assert err.value.retryable is status.startswith("502")


async def test_an_unreachable_proxy_is_a_connection_failure():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://{USERINFO}@127.0.0.1:{s.getsockname()[1]}"
    async with RawServer(keep_answering) as server:
        up = dataclasses.replace(provider(server.url), proxy=dead)
        async with transport(up) as client:
            with pytest.raises(UpstreamError, match=r"via proxy .*connection failed \(.*refused"):
                await client.post(up, call(server.url))
            _assert_no_secret(repr(client.pools(up)[0].proxy))
        assert server.connections == 0


# -- the environment ----------------------------------------------------------------------------


async def test_the_environment_proxy_and_no_proxy(monkeypatch):
    async with ConnectProxy() as proxy, RawServer(keep_answering) as server:
        monkeypatch.setenv("HTTP_PROXY", proxy.proxy_url())
        up = provider(server.url)
        async with transport(up) as client:
            await post_read(client, up, server.url)
        assert proxy.tunnels == 1

        monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
        async with transport(up) as client:
            await post_read(client, up, server.url)
        assert proxy.tunnels == 1 and server.connections == 2


async def test_https_proxy_is_not_used_for_http_origins(monkeypatch):
    async with ConnectProxy() as proxy, RawServer(keep_answering) as server:
        monkeypatch.setenv("HTTPS_PROXY", proxy.proxy_url())
        up = provider(server.url)
        async with transport(up) as client:
            await post_read(client, up, server.url)
        assert proxy.tunnels == 0


async def test_direct_ignores_the_environment(monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{s.getsockname()[1]}")
    async with RawServer(keep_answering) as server:
        up = dataclasses.replace(provider(server.url), proxy="direct")
        async with transport(up) as client:
            assert await post_read(client, up, server.url) == b'{"ok":true}'


async def test_an_unusable_environment_proxy_fails_the_call_clearly(monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", f"socks5://{USERINFO}@127.0.0.1:1080")
    async with RawServer(keep_answering) as server:
        up = provider(server.url)
        async with transport(up) as client:
            with pytest.raises(UpstreamError, match="HTTP_PROXY from the environment") as err:
                await client.post(up, call(server.url))
        _assert_no_secret(str(err.value))
        assert server.connections == 0


# -- the gateway ------------------------------------------------------------------------------


def _gateway_config(fake: FakeUpstream, proxy_url: str, extra: str = "") -> str:
    """The shared three-tier config, its provider going through `proxy_url`."""
    config = three_tier_config(fake, extra)
    provider_key = "    api_key: sk-upstream\n"
    assert provider_key in config
    return config.replace(provider_key, f"    api_key: {fake.api_key}\n    proxy: {proxy_url}\n")


async def test_the_gateway_answers_through_the_proxy(fake: FakeUpstream, start_gateway):
    async with ConnectProxy(credentials=("alice", SECRET)) as proxy:
        live: LiveGateway = start_gateway(_gateway_config(fake, proxy.proxy_url(USERINFO)))
        client = openai.AsyncOpenAI(base_url=f"{live.url}/v1", api_key="tg-test-key", max_retries=0)
        fake.enqueue(Reply("through the tunnel"))
        answer = await client.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "hi"}]
        )
        await client.close()
    assert answer.choices[0].message.content == "through the tunnel"
    assert proxy.tunnels == 1 and proxy.authorizations == [f"alice:{SECRET}"]


async def test_the_gateway_never_shows_the_proxy_credentials(
    fake: FakeUpstream, start_gateway, caplog, tmp_path
):
    caplog.set_level(logging.DEBUG)
    log = tmp_path / "requests.jsonl"
    async with ConnectProxy(credentials=("alice", "other")) as proxy:
        config = _gateway_config(
            fake, proxy.proxy_url(USERINFO), f"observability: {{request_log: {log}}}\n"
        )
        live: LiveGateway = start_gateway(config)
        client = openai.AsyncOpenAI(base_url=f"{live.url}/v1", api_key="tg-test-key", max_retries=0)
        with pytest.raises(openai.APIStatusError) as err:
            await client.chat.completions.create(
                model="auto", messages=[{"role": "user", "content": "hi"}]
            )
        await client.close()
    assert "refused authentication" in err.value.response.text
    _assert_no_secret(err.value.response.text)
    _assert_no_secret(caplog.text)
    live.server.stop()  # writes out the request log
    request_log = log.read_text()
    assert f"via proxy 127.0.0.1:{proxy.port}: the proxy refused authentication" in request_log
    _assert_no_secret(request_log)
    _assert_no_secret(repr(live.gateway.fleet.providers))


async def test_a_refusing_proxy_is_not_asked_twice_for_one_deployment(
    fake: FakeUpstream, start_gateway
):
    async with ConnectProxy(credentials=("alice", "other")) as proxy:
        live: LiveGateway = start_gateway(_gateway_config(fake, proxy.proxy_url(USERINFO)))
        client = openai.AsyncOpenAI(base_url=f"{live.url}/v1", api_key="tg-test-key", max_retries=0)
        with pytest.raises(openai.APIStatusError):
            await client.chat.completions.create(
                model="auto", messages=[{"role": "user", "content": "hi"}]
            )
        await client.close()
    (entry,) = live.ledger.entries
    # "small-model@upstream:error,medium-model@upstream:error,..."
    tried = [attempt.rsplit(":", 1)[0] for attempt in (entry.attempts or "").split(",") if attempt]
    # The route allows one retry per deployment; each was still asked only once, and the
    # request moved on to the next (all behind the same proxy here).
    assert len(tried) > 1 and len(set(tried)) == len(tried), entry.attempts
    assert len(proxy.heads) == len(tried)

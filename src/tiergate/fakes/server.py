"""The fake upstream HTTP server: one aiohttp app speaking every wire protocol."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import Any

import orjson
from aiohttp import web

from tiergate.fakes.answer import plan
from tiergate.fakes.anthropic_wire import AnthropicWire
from tiergate.fakes.delivery import Delivery, answer_error
from tiergate.fakes.gemini_wire import GeminiWire
from tiergate.fakes.history import History, RecordedRequest
from tiergate.fakes.openai_wire import OpenAIWire, render_embeddings, render_models
from tiergate.fakes.profile import Chaos, Profile
from tiergate.fakes.prompt import BadRequest, WireProtocol
from tiergate.fakes.script import Fault, Reply, Responder, Script, Scripted
from tiergate.fakes.thread import LoopThread
from tiergate.fakes.wire import JSON, ErrorAnswer, Wire

_DEFAULT_MODELS = ("mock-model", "gpt-4o-mini", "gpt-4o", "text-embedding-3-small")
_OPENAI = OpenAIWire()
_ANTHROPIC = AnthropicWire()
_GEMINI = GeminiWire()
_GEMINI_ARRAY = GeminiWire(json_array=True)


class FakeUpstream:
    """A scriptable fake LLM provider speaking the OpenAI, Anthropic and Gemini protocols.

    ``api_key`` makes every protocol check its own auth header; ``models`` limits
    the upstream model ids it knows (others get 404); ``profile`` adds latency and
    faults to unscripted answers; ``history_limit`` bounds the recorded history.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        models: Sequence[str] | None = None,
        profile: Profile | None = None,
        history_limit: int | None = None,
    ) -> None:
        self.host = host
        self.api_key = api_key
        self.models = tuple(models) if models is not None else None
        self.script = Script()
        self.history = History(history_limit)
        self.in_flight = 0
        self._requested_port = port
        self._port: int | None = None
        self._chaos = Chaos(profile or Profile())
        self._serial = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._thread: LoopThread | None = None

    # --- lifecycle -------------------------------------------------------------

    async def start(self) -> FakeUpstream:
        """Start serving on the event loop that runs this coroutine."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._openai_chat)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/messages", self._anthropic_messages)
        app.router.add_post("/v1beta/models/{target}", self._gemini_generate)
        # handler_cancellation: a client disconnect cancels the handler, so that
        # history can show the caller gave up even while the fake was still waiting.
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self._requested_port, reuse_address=True)
        await site.start()
        self._port = int(self._runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        """Stop serving; requests still in flight are cancelled."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeUpstream:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def start_in_thread(self) -> FakeUpstream:
        """Serve from a background thread with its own event loop (for sync tests)."""
        if self._thread is not None:
            raise RuntimeError("already running in a thread")
        self._thread = LoopThread(name=f"fake-upstream-{id(self):x}")
        self._thread.run(self.start())
        return self

    def stop_thread(self) -> None:
        """Stop the server started by :meth:`start_in_thread`."""
        if self._thread is not None:
            thread, self._thread = self._thread, None
            thread.run(self.stop())
            thread.close()

    @classmethod
    @contextmanager
    def in_thread(cls, **kwargs: Any) -> Iterator[FakeUpstream]:
        """``with FakeUpstream.in_thread(api_key=...) as fake:`` — a sync-test fake."""
        fake = cls(**kwargs).start_in_thread()
        try:
            yield fake
        finally:
            fake.stop_thread()

    # --- addresses -------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound TCP port."""
        if self._port is None:
            raise RuntimeError("the fake upstream is not started")
        return self._port

    @property
    def url(self) -> str:
        """``http://host:port`` without a path."""
        return f"http://{self.host}:{self.port}"

    def base_url(self, protocol: WireProtocol = "openai") -> str:
        """The provider ``base_url`` for a protocol, as the gateway config expects it."""
        suffix = {"openai": "/v1", "anthropic": "", "gemini": "/v1beta"}[protocol]
        return self.url + suffix

    # --- scripting -------------------------------------------------------------

    def enqueue(
        self, *items: Scripted, model: str | None = None, protocol: WireProtocol | None = None
    ) -> None:
        """Queue the next answers (FIFO), optionally only for one model id / protocol."""
        self.script.enqueue(*items, model=model, protocol=protocol)

    def respond_with(self, responder: Responder | None) -> None:
        """Answer unqueued requests with ``responder(prompt)`` (``None``: the default)."""
        self.script.responder = responder

    def clear(self) -> None:
        """Forget the history, the queued answers and the responder."""
        self.script.clear()
        self.history.clear()

    @property
    def calls(self) -> int:
        """How many requests arrived (within the history limit)."""
        return len(self.history)

    def calls_for(self, *, protocol: WireProtocol | None = None, model: str | None = None) -> int:
        """How many requests arrived for one protocol and/or upstream model id."""
        return len(self.history.where(protocol=protocol, model=model))

    @property
    def last(self) -> RecordedRequest:
        """The most recent request."""
        return self.history[-1]

    async def wait_idle(self, within: float = 5.0) -> None:
        """Wait (in the server's loop) until no request is being served."""
        deadline = time.monotonic() + within
        while self.in_flight:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.in_flight} requests still in flight")
            await asyncio.sleep(0.005)

    def wait_idle_blocking(self, within: float = 5.0) -> None:
        """:meth:`wait_idle` for sync tests that run the fake in a thread."""
        deadline = time.monotonic() + within
        while self.in_flight:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.in_flight} requests still in flight")
            time.sleep(0.005)

    # --- handlers --------------------------------------------------------------

    async def _openai_chat(self, request: web.Request) -> web.StreamResponse:
        return await self._chat(request, _OPENAI, None, False)

    async def _anthropic_messages(self, request: web.Request) -> web.StreamResponse:
        return await self._chat(request, _ANTHROPIC, None, False)

    async def _gemini_generate(self, request: web.Request) -> web.StreamResponse:
        model, _, action = request.match_info["target"].rpartition(":")
        if action == "generateContent":
            return await self._chat(request, _GEMINI, model, False)
        if action == "streamGenerateContent":
            if request.query.get("alt") == "sse":
                return await self._chat(request, _GEMINI, model, True)
            return await self._chat(request, _GEMINI_ARRAY, model, False)
        record = self._record(request, "gemini")
        record.finished = time.monotonic()
        message = f"the fake serves generateContent and streamGenerateContent, not {action}"
        return answer_error(record, _GEMINI.error(404, message, None))

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        record = self._record(request, "openai")
        try:
            if error := self._auth(request, _OPENAI):
                return answer_error(record, error)
            record.body = body = orjson.loads(await request.read())
            record.model = body.get("model") if isinstance(body, dict) else None
            rendered = render_embeddings(body)
        except (BadRequest, orjson.JSONDecodeError) as exc:
            return answer_error(record, _OPENAI.error(400, _message(exc), None))
        finally:
            record.finished = time.monotonic()
        record.status, record.completed = 200, True
        return web.Response(body=rendered, content_type=JSON)

    async def _models(self, request: web.Request) -> web.StreamResponse:
        record = self._record(request, "openai")
        record.finished = time.monotonic()
        if error := self._auth(request, _OPENAI):
            return answer_error(record, error)
        record.status, record.completed = 200, True
        return web.Response(body=render_models(self.models or _DEFAULT_MODELS), content_type=JSON)

    async def _chat(
        self, request: web.Request, wire: Wire, path_model: str | None, path_stream: bool
    ) -> web.StreamResponse:
        record = self._record(request, wire.name)
        self.in_flight += 1
        try:
            raw = await request.read()
            try:
                record.body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                record.body = None  # answered with 400 after the auth check, as upstream
            if error := self._auth(request, wire):
                return answer_error(record, error)
            try:
                if record.body is None:
                    raise BadRequest("We could not parse the JSON body of your request.")
                prompt = wire.parse(record.body, path_model, path_stream)
            except BadRequest as exc:
                return answer_error(record, wire.error(400, _message(exc), None))
            record.model, record.stream = prompt.model, prompt.stream
            if self.models is not None and prompt.model not in self.models:
                message = (
                    f"The model `{prompt.model}` does not exist or you do not have access to it."
                )
                return answer_error(record, wire.error(404, message, None))
            item = self.script.next_for(prompt)
            scripted = item is not None
            if item is None:
                item = self._chaos.default_answer(prompt) if self._chaos.active else Reply()
            record.answer = item
            delivery = Delivery(request, record, wire, prompt, self._next_serial)
            if isinstance(item, Fault):
                return await delivery.fault(item)
            answer = plan(prompt, item, self._next_serial())
            if not scripted and self._chaos.active:
                answer = self._chaos.timed(answer, prompt)
            return await delivery.reply(answer)
        except asyncio.CancelledError:
            record.completed, record.disconnected = False, True
            raise
        finally:
            if record.finished is None or not record.completed:
                record.finished = time.monotonic()
            self.in_flight -= 1

    # --- helpers ---------------------------------------------------------------

    def _record(self, request: web.Request, protocol: WireProtocol) -> RecordedRequest:
        record = RecordedRequest(
            protocol=protocol,
            method=request.method,
            path=request.path,
            headers=request.headers,
            query=request.query,
            started=time.monotonic(),
        )
        self.history.add(record)
        return record

    def _next_serial(self) -> int:
        return next(self._serial)

    def _auth(self, request: web.Request, wire: Wire) -> ErrorAnswer | None:
        return wire.check_headers(request.headers, request.query, self.api_key)


def _message(exc: Exception) -> str:
    if isinstance(exc, BadRequest):
        return exc.message
    return "We could not parse the JSON body of your request."

"""Writing one request's answer — a reply or a fault — onto the HTTP response."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from tiergate.fakes.answer import Plan, plan
from tiergate.fakes.history import RecordedRequest
from tiergate.fakes.prompt import Prompt
from tiergate.fakes.script import Fault
from tiergate.fakes.wire import JSON, SSE, ErrorAnswer, Wire, bad_gateway_page

_GARBAGE = b'{"id": "broken", "choices": [{"index": 0, "message": {"content": "'


@dataclass(slots=True)
class Delivery:
    """Sends the answer to one parsed request, keeping its history record current."""

    request: web.Request
    record: RecordedRequest
    wire: Wire
    prompt: Prompt
    serial: Callable[[], int]

    async def reply(self, answer: Plan) -> web.StreamResponse:
        """Send a planned answer as a JSON body or an SSE stream."""
        if answer.delay_headers:
            await asyncio.sleep(answer.delay_headers)
        if not self.prompt.stream:
            self.record.status, self.record.completed = 200, True
            return web.Response(body=self.wire.render(answer), content_type=JSON)
        frames = self.wire.render_stream(answer, self.prompt)
        return await self._stream(frames, answer.chunk_delay)

    def _error(
        self, status: int, message: str | None, retry_after: float | None, code: str | None
    ) -> ErrorAnswer:
        """A scripted error: the protocol's envelope, except 502, which the providers'
        edge proxies answer with the same HTML page whatever the protocol."""
        if status == 502:
            return bad_gateway_page()
        return self.wire.error(status, message, retry_after, code)

    async def fault(self, fault: Fault) -> web.StreamResponse:
        """Misbehave as ``fault`` says (see :class:`~tiergate.fakes.script.Fault`)."""
        if fault.delay_headers:
            await asyncio.sleep(fault.delay_headers)
        if fault.drop_connection and fault.truncate_after is None:
            return drop(self.request, self.record)
        mid_stream = fault.truncate_after is not None or fault.error_after is not None
        if fault.garbage:
            if not self.prompt.stream:
                self.record.status = 200
                return web.Response(body=_GARBAGE, content_type=JSON)
            prefix = b"event: message_start\n" if self.wire.name == "anthropic" else b""
            return await self._stream([prefix + b"data: " + _GARBAGE + b"\n\n"])
        if fault.status is not None and not mid_stream:
            return answer_error(
                self.record, self._error(fault.status, fault.message, fault.retry_after, fault.code)
            )
        if not mid_stream:  # only a delay: then the reply
            answer = plan(self.prompt, fault.reply, self.serial())
            return await self.reply(answer)
        if not self.prompt.stream:
            if fault.error_after is not None:
                status = fault.status or 500
                return answer_error(
                    self.record, self._error(status, fault.message, None, fault.code)
                )
            body = self.wire.render(plan(self.prompt, fault.reply, self.serial()))
            return await self._truncated_body(body)
        answer = plan(self.prompt, fault.reply, self.serial())
        frames = self.wire.render_stream(answer, self.prompt)
        if fault.error_after is not None:
            frames = frames[: min(fault.error_after, len(frames) - 1)]
            frames.append(self.wire.stream_error(fault.status or 529, fault.message, fault.code))
            return await self._stream(frames, answer.chunk_delay)
        cut = min(fault.truncate_after or 0, len(frames) - 1)
        return await self._stream(frames[:cut], answer.chunk_delay, abort=fault.drop_connection)

    async def _stream(
        self,
        frames: list[bytes],
        chunk_delay: float = 0.0,
        *,
        abort: bool = False,
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": SSE, "Cache-Control": "no-cache"},
        )
        self.record.status = 200
        writes = frames if chunk_delay else [b"".join(frames)] if frames else []
        try:
            await response.prepare(self.request)
            for i, data in enumerate(writes):
                if chunk_delay:
                    await asyncio.sleep(chunk_delay)
                if i == len(writes) - 1 and not abort:
                    self._completed()
                await response.write(data)
            if abort:
                return drop(self.request, self.record, response)
            if not writes:
                self._completed()
            await response.write_eof()
        except ConnectionResetError:
            # The client went away mid-stream: that is what history records.
            self.record.completed, self.record.disconnected = False, True
        return response

    def _completed(self) -> None:
        # Marked before the last bytes leave: a caller that stops reading at the end
        # marker (the OpenAI SDK closes the response at `[DONE]`) already sees it.
        self.record.completed, self.record.finished = True, time.monotonic()

    async def _truncated_body(self, body: bytes) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": JSON})
        response.content_length = len(body)
        self.record.status = 200
        try:
            await response.prepare(self.request)
            await response.write(body[: len(body) // 2])
        except ConnectionResetError:
            self.record.disconnected = True
            return response
        return drop(self.request, self.record, response)


def answer_error(record: RecordedRequest, error: ErrorAnswer) -> web.Response:
    record.status, record.completed = error.status, True
    return web.Response(
        status=error.status,
        body=error.body,
        headers={"Content-Type": error.content_type, **error.headers},
    )


def drop(
    request: web.Request, record: RecordedRequest, response: web.StreamResponse | None = None
) -> web.StreamResponse:
    transport = request.transport
    if transport is not None:
        transport.abort()
    record.completed = False
    if response is not None:
        return response
    # Nothing is written on an aborted transport; aiohttp needs a response object.
    return web.Response(status=499)

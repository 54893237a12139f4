"""Fake upstream LLM providers that speak the real wire formats, scriptable per test.

One :class:`FakeUpstream` serves all three protocols on one port:

- OpenAI: ``base_url("openai")`` = ``http://127.0.0.1:PORT/v1`` (``/chat/completions``,
  ``/embeddings``, ``/models``)
- Anthropic: ``base_url("anthropic")`` = ``http://127.0.0.1:PORT`` (``/v1/messages``)
- Gemini: ``base_url("gemini")`` = ``http://127.0.0.1:PORT/v1beta``
  (``/models/{model}:generateContent``, ``:streamGenerateContent?alt=sse``)

Async tests::

    async with FakeUpstream() as fake:
        fake.enqueue(Reply("hi", input_tokens=100, cached_tokens=80))
        fake.enqueue(Fault(status=429, retry_after=2), model="gpt-4o")
        ...
        assert fake.last.disconnected

Sync tests (blocking SDK clients): ``with FakeUpstream.in_thread() as fake: ...``.
As a process: ``python -m tiergate.fakes --port 18080 --profile demo``.

Unscripted requests get a deterministic default answer: ``"echo: <last user text>"``
(about four characters per token), cut at ``max_tokens`` (finish ``length``) or a stop
sequence, valid JSON when JSON output is requested, a tool call when a tool is forced,
and ``[fake:tokens=N]`` in the prompt asks for an answer of N tokens.
``respond_with(fn)`` answers from a function of the parsed :class:`Prompt` instead.
"""

from tiergate.fakes.answer import Plan
from tiergate.fakes.history import History, RecordedRequest
from tiergate.fakes.profile import PROFILES, Profile
from tiergate.fakes.prompt import Prompt, ToolSpec, WireProtocol
from tiergate.fakes.script import Fault, Finish, Reply, Responder, Scripted, ToolCall
from tiergate.fakes.server import FakeUpstream

__all__ = [
    "PROFILES",
    "FakeUpstream",
    "Fault",
    "Finish",
    "History",
    "Plan",
    "Profile",
    "Prompt",
    "RecordedRequest",
    "Reply",
    "Responder",
    "Scripted",
    "ToolCall",
    "ToolSpec",
    "WireProtocol",
]

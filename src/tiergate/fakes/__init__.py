"""Fake upstream LLM providers that speak the real wire formats, scriptable per test.

Async tests::

    async with FakeUpstream() as fake:
        fake.enqueue(Reply("hi"), Fault(status=429, retry_after=2))
        client = AsyncOpenAI(base_url=fake.base_url("openai"), api_key="x")

Sync tests: ``with FakeUpstream.in_thread() as fake: ...``. As a process:
``python -m tiergate.fakes --port 18080 --profile demo``.
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

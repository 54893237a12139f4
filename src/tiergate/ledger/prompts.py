"""Which prompts the ledger keeps: only those of routes with `record_prompts: true`.

The text is what the learned router reads (`messages_to_prompt`), with anything shaped
like a credential masked, so that exported outcome records train on what routing sees.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from tiergate.outcomes import messages_to_prompt

if TYPE_CHECKING:
    from tiergate.chat import ChatRequest
    from tiergate.gateway import Gateway


def prompt_to_record(gateway: Gateway, route: str, chat: ChatRequest) -> str | None:
    """The prompt text to store with this request, or None when its route does not opt in."""
    config = gateway.config.routes.get(route)
    if config is None or not config.record_prompts:
        return None
    text = messages_to_prompt(msgspec.to_builtins(chat.messages))
    obs = gateway.observability
    return obs.redactor(text) if obs is not None else text

"""How long a vendor attempt may take, per provider, inside the request's own deadline.

A caller's deadline bounds the whole request, retries and fallbacks included; these bound one
attempt, so that a vendor that hangs is given up on while there is still time to try again or
to say so. The defaults suit interactive chat: a non-streaming answer of a few thousand tokens
takes well under two minutes, and a healthy stream never pauses for half a minute (vendors send
keep-alive events while a reasoning model thinks).
"""

from __future__ import annotations

import aiohttp
from pydantic import BaseModel, ConfigDict, Field


class VendorTimeouts(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    connect_s: float = Field(default=5.0, gt=0)
    # Non-streaming: the whole answer.
    response_s: float = Field(default=120.0, gt=0)
    # Streaming: the first byte, then any gap between two reads.
    stream_idle_s: float = Field(default=30.0, gt=0)

    def for_attempt(self, *, stream: bool, remaining_s: float) -> aiohttp.ClientTimeout:
        """The attempt's timeouts, none longer than what is left of the request's deadline."""
        remaining_s = max(remaining_s, 0.001)
        connect = min(self.connect_s, remaining_s)
        if stream:
            return aiohttp.ClientTimeout(
                total=remaining_s, connect=connect, sock_read=min(self.stream_idle_s, remaining_s)
            )
        return aiohttp.ClientTimeout(total=min(self.response_s, remaining_s), connect=connect)

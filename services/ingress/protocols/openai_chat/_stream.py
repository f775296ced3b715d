"""Streamed contract deltas -> OpenAI ``chat.completion.chunk`` objects.

The order follows OpenAI's: an opening chunk carrying the assistant role, content and tool-call
chunks, one chunk with the ``finish_reason``, and, when the client asked for
``stream_options.include_usage``, a last chunk with ``choices: []`` and the usage. While usage is
requested every other chunk carries ``"usage": null``, as OpenAI documents.
"""

from __future__ import annotations

from typing import Any

from contracts.chat import ChatDelta, ToolCallDelta
from services.ingress.protocols.openai_chat._response import SIMULATED_FINGERPRINT, render_usage


class ChunkRenderer:
    """Renders the chunks of one streamed completion; one instance per request, because every
    chunk repeats the completion's id, creation time and model."""

    def __init__(
        self,
        *,
        completion_id: str,
        model: str,
        created: int,
        include_usage: bool,
        simulated: bool = False,
    ) -> None:
        self._include_usage = include_usage
        self._envelope: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
        }
        if simulated:
            self._envelope["system_fingerprint"] = SIMULATED_FINGERPRINT

    def first(self) -> dict[str, Any]:
        """The opening chunk: the role, and empty content as OpenAI sends it."""
        return self._choice_chunk({"role": "assistant", "content": "", "refusal": None}, None)

    def render(self, delta: ChatDelta) -> list[dict[str, Any]]:
        """The chunks for one delta, possibly none (an empty delta, or usage nobody asked for)."""
        chunks: list[dict[str, Any]] = []
        content: dict[str, Any] = {}
        if delta.text:
            content["content"] = delta.text
        if delta.tool_call is not None:
            content["tool_calls"] = [_tool_call(delta.tool_call)]
        if content:
            chunks.append(self._choice_chunk(content, None))
        if delta.finish_reason is not None:
            chunks.append(self._choice_chunk({}, delta.finish_reason.value))
        if delta.usage is not None and self._include_usage:
            chunks.append({**self._envelope, "choices": [], "usage": render_usage(delta.usage)})
        return chunks

    def _choice_chunk(self, delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            **self._envelope,
            "choices": [
                {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
            ],
        }
        if self._include_usage:
            chunk["usage"] = None
        return chunk


def _tool_call(piece: ToolCallDelta) -> dict[str, Any]:
    """One fragment of a tool call: id, type and name ride on the first fragment only."""
    rendered: dict[str, Any] = {"index": piece.index}
    function: dict[str, Any] = {"arguments": piece.arguments}
    if piece.id is not None:
        rendered["id"] = piece.id
        rendered["type"] = "function"
    if piece.name is not None:
        function["name"] = piece.name
    rendered["function"] = function
    return rendered

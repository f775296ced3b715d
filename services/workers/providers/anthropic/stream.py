"""Messages SSE events -> contract deltas."""

from __future__ import annotations

from contracts.chat import ChatDelta, ToolCallDelta
from services.workers.providers._decoding import load_json, validate_wire
from services.workers.providers.anthropic.errors import classify_error_type
from services.workers.providers.anthropic.response import (
    ErrorObjectWire,
    StreamEventWire,
    UsageWire,
    finish_reason_of,
    usage_of,
)
from services.workers.providers.base import VendorProtocolError, VendorStreamError


class AnthropicStreamDecoder:
    """Decodes one Messages event stream.

    Usage is spread over the stream: ``message_start`` has the input side, ``message_delta``
    the cumulative output (and, on newer API versions, cumulative input fields); the decoder
    merges them and sends usage with the finish reason on ``message_stop``.
    """

    def __init__(self) -> None:
        self._usage: dict[str, int] = {}
        self._stop_reason: str | None = None
        # Anthropic indexes every content block; the contract numbers tool calls 0..n.
        self._tool_index_by_block: dict[int, int] = {}
        self._done = False

    @property
    def finished(self) -> bool:
        return self._done

    def feed(self, event: str, data: str) -> list[ChatDelta]:
        if self._done or not data.strip():
            return []
        payload = load_json(data, what="stream event")
        if isinstance(payload, dict) and "type" not in payload and event:
            payload = {**payload, "type": event}
        parsed = validate_wire(StreamEventWire, payload, what="stream event")
        kind = parsed.type
        if kind == "message_start":
            if parsed.message is None:
                raise VendorProtocolError("message_start without a message")
            self._merge_usage(parsed.message.usage)
        elif kind == "content_block_start":
            return self._block_start(parsed)
        elif kind == "content_block_delta":
            return self._block_delta(parsed)
        elif kind == "message_delta":
            if parsed.delta is not None and parsed.delta.stop_reason:
                self._stop_reason = parsed.delta.stop_reason
            self._merge_usage(parsed.usage)
        elif kind == "message_stop":
            self._done = True
            return [self._final()]
        elif kind == "error":
            error = parsed.error or ErrorObjectWire()
            raise VendorStreamError(
                classify_error_type(
                    error.type,
                    error.message or "The vendor reported an error mid-stream.",
                    status=None,
                )
            )
        # ping, content_block_stop and event types added after this was written carry nothing
        # we need; Anthropic documents that unknown events should be ignored.
        return []

    def _block_start(self, event: StreamEventWire) -> list[ChatDelta]:
        block = event.content_block
        if block is None or event.index is None:
            raise VendorProtocolError("content_block_start without a block or index")
        if block.type == "text" and block.text:
            return [ChatDelta(text=block.text)]
        if block.type != "tool_use":
            return []
        if not block.id or not block.name:
            raise VendorProtocolError("tool_use block without id or name")
        index = len(self._tool_index_by_block)
        self._tool_index_by_block[event.index] = index
        # The input arrives as input_json_delta fragments; the start block's {} is a
        # placeholder, not a fragment.
        return [ChatDelta(tool_call=ToolCallDelta(index=index, id=block.id, name=block.name))]

    def _block_delta(self, event: StreamEventWire) -> list[ChatDelta]:
        delta = event.delta
        if delta is None or event.index is None:
            raise VendorProtocolError("content_block_delta without a delta or index")
        if delta.type == "text_delta" and delta.text:
            return [ChatDelta(text=delta.text)]
        if delta.type == "input_json_delta" and delta.partial_json:
            index = self._tool_index_by_block.get(event.index)
            if index is None:
                raise VendorProtocolError("input_json_delta for a block that is not a tool_use")
            return [ChatDelta(tool_call=ToolCallDelta(index=index, arguments=delta.partial_json))]
        return []  # thinking, signature and citation deltas are not part of the answer

    def _merge_usage(self, usage: UsageWire | None) -> None:
        if usage is None:
            return
        for field, value in usage.model_dump(exclude_none=True).items():
            self._usage[field] = value

    def _final(self) -> ChatDelta:
        finish = finish_reason_of(self._stop_reason)
        usage = usage_of(UsageWire.model_validate(self._usage)) if self._usage else None
        return ChatDelta(finish_reason=finish, usage=usage)

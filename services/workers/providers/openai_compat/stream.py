"""Chat Completions SSE chunks -> contract deltas."""

from __future__ import annotations

from contracts.chat import ChatDelta, FinishReason, ToolCallDelta, Usage
from services.workers.providers._decoding import load_json, validate_wire
from services.workers.providers.base import VendorStreamError
from services.workers.providers.openai_compat.errors import classify_stream_error
from services.workers.providers.openai_compat.response import (
    ChunkWire,
    DeltaWire,
    FunctionWire,
    ToolCallWire,
    UsageWire,
    arguments_text,
    finish_reason_of,
    message_text,
    usage_of,
)


class OpenAIStreamDecoder:
    """Decodes one ``chat.completion.chunk`` stream.

    ``finish_reason`` arrives before usage (OpenAI sends usage in a final chunk with no choices)
    or in the same chunk (DeepSeek, Mistral), so it is held until usage arrives at or after it,
    or until ``[DONE]``, and the two go out together in the last delta.
    """

    def __init__(self) -> None:
        self._finish: FinishReason | None = None
        self._usage: Usage | None = None
        self._usage_after_finish = False
        self._saw_tool_calls = False
        self._final_sent = False
        self._done = False
        # Calls without an index (some copies omit it) are placed by id, in order of arrival.
        self._index_by_id: dict[str, int] = {}
        self._last_index = -1

    @property
    def finished(self) -> bool:
        return self._done

    def feed(self, event: str, data: str) -> list[ChatDelta]:
        data = data.strip()
        if self._done or not data:
            return []
        if data == "[DONE]":
            self._done = True
            return [] if self._final_sent else [self._final()]
        chunk = validate_wire(ChunkWire, load_json(data, what="stream chunk"), what="stream chunk")
        if chunk.error is not None or event == "error":
            raise VendorStreamError(classify_stream_error(chunk.error))
        if self._final_sent:
            return []
        deltas: list[ChatDelta] = []
        for choice in chunk.choices:
            if choice.index != 0:  # we never ask for n > 1
                continue
            if choice.delta is not None:
                deltas.extend(self._content_deltas(choice.delta))
            if choice.finish_reason:
                self._finish = finish_reason_of(
                    choice.finish_reason, has_tool_calls=self._saw_tool_calls
                )
            if choice.usage is not None:
                self._take_usage(choice.usage)
        if chunk.usage is not None:
            self._take_usage(chunk.usage)
        if self._finish is not None and self._usage_after_finish:
            deltas.append(self._final())
        return deltas

    def _take_usage(self, usage: UsageWire) -> None:
        self._usage = usage_of(usage)
        self._usage_after_finish = self._finish is not None

    def _final(self) -> ChatDelta:
        self._final_sent = True
        finish = self._finish or (
            FinishReason.TOOL_CALLS if self._saw_tool_calls else FinishReason.STOP
        )
        return ChatDelta(finish_reason=finish, usage=self._usage)

    def _content_deltas(self, delta: DeltaWire) -> list[ChatDelta]:
        out: list[ChatDelta] = []
        text = message_text(delta.content) or delta.refusal or ""
        if text:
            out.append(ChatDelta(text=text))
        for position, call in enumerate(delta.tool_calls or ()):
            self._saw_tool_calls = True
            function = call.function or FunctionWire()
            out.append(
                ChatDelta(
                    tool_call=ToolCallDelta(
                        index=self._call_index(call, position),
                        id=call.id or None,
                        name=function.name or None,
                        arguments=arguments_text(function) if function.arguments else "",
                    )
                )
            )
        return out

    def _call_index(self, call: ToolCallWire, position: int) -> int:
        if call.index is not None:
            index = call.index
        elif call.id and call.id in self._index_by_id:
            index = self._index_by_id[call.id]
        elif call.id:
            index = max(self._last_index + 1, position)
        else:
            index = max(self._last_index, 0)
        if call.id:
            self._index_by_id.setdefault(call.id, index)
        self._last_index = max(self._last_index, index)
        return index

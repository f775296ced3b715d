"""The protocol-neutral chat schema.

Client protocols (OpenAI Chat Completions, Anthropic Messages) are translated into these shapes in
ingress, and these shapes are translated into each vendor's protocol by a provider adapter. Nothing
in here knows any wire format; that is the point: one schema sits between N client protocols and M
vendor protocols, so the translation count is N + M rather than N * M.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    # hide_input_in_errors: a validation error must never quote prompt text into a log line.
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)


# ---- content parts -------------------------------------------------------------------------


class TextPart(_Frozen):
    type: Literal["text"] = "text"
    text: str


class ImagePart(_Frozen):
    """An image, by URL or inline. ``url`` may be an ``https://`` URL or a ``data:`` URL;
    adapters that need raw base64 (Anthropic) split a data URL themselves."""

    type: Literal["image"] = "image"
    url: str
    detail: Literal["auto", "low", "high"] | None = None


class ToolCallPart(_Frozen):
    """The assistant asks for a tool to be run. ``arguments`` is the JSON text as the model
    produced it: it is kept as text because models emit invalid JSON at times, and the client,
    not the router, decides what to do about that."""

    type: Literal["tool_call"] = "tool_call"
    id: str
    name: str
    arguments: str = "{}"


class ToolResultPart(_Frozen):
    """The result of a tool call, sent back by the client."""

    type: Literal["tool_result"] = "tool_result"
    tool_call_id: str
    content: list[TextPart | ImagePart] = Field(default_factory=list)
    is_error: bool = False


ContentPart = Annotated[
    TextPart | ImagePart | ToolCallPart | ToolResultPart, Field(discriminator="type")
]


class Role(StrEnum):
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


class Message(_Frozen):
    role: Role
    content: list[ContentPart]
    name: str | None = None

    def text(self) -> str:
        return "".join(part.text for part in self.content if isinstance(part, TextPart))


# ---- tools and output shape ----------------------------------------------------------------


class ToolSpec(_Frozen):
    name: str
    description: str | None = None
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    strict: bool | None = None


class ToolChoiceMode(StrEnum):
    AUTO = "auto"
    NONE = "none"
    REQUIRED = "required"  # some tool, the model picks which
    TOOL = "tool"  # the tool named in ``ToolChoice.name``


class ToolChoice(_Frozen):
    mode: ToolChoiceMode = ToolChoiceMode.AUTO
    name: str | None = None
    parallel: bool | None = None


class ResponseFormat(_Frozen):
    type: Literal["text", "json_object", "json_schema"] = "text"
    schema_name: str | None = None
    json_schema: dict[str, Any] | None = None
    strict: bool | None = None


class Sampling(_Frozen):
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    max_output_tokens: int | None = None
    stop: list[str] = Field(default_factory=list)
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    reasoning_effort: Literal["minimal", "low", "medium", "high"] | None = None


class ChatRequest(_Frozen):
    """What the caller asked for, independent of the protocol it asked in."""

    system: str | None = None
    messages: list[Message]
    tools: list[ToolSpec] = Field(default_factory=list)
    tool_choice: ToolChoice | None = None
    sampling: Sampling = Field(default_factory=Sampling)
    response_format: ResponseFormat | None = None
    user: str | None = None


# ---- what comes back -----------------------------------------------------------------------


class FinishReason(StrEnum):
    STOP = "stop"
    LENGTH = "length"
    TOOL_CALLS = "tool_calls"
    CONTENT_FILTER = "content_filter"


class Usage(_Frozen):
    """Token counts of one vendor call. ``input_tokens`` counts every prompt token, the cached
    ones included; ``cache_read_tokens`` and ``cache_write_tokens`` say how many of them were
    served from, or written to, the vendor's prompt cache (they are priced differently)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


class ChatResponse(_Frozen):
    """A finished assistant turn."""

    content: list[TextPart | ToolCallPart] = Field(default_factory=list)
    finish_reason: FinishReason = FinishReason.STOP
    usage: Usage = Field(default_factory=Usage)
    vendor_response_id: str | None = None
    vendor_model: str | None = None

    def text(self) -> str:
        return "".join(part.text for part in self.content if isinstance(part, TextPart))

    def tool_calls(self) -> list[ToolCallPart]:
        return [part for part in self.content if isinstance(part, ToolCallPart)]


class ToolCallDelta(_Frozen):
    """A piece of a streamed tool call. ``index`` is the call's position in the turn; ``id`` and
    ``name`` come with the first piece of each call, ``arguments`` arrives in fragments."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


class ChatDelta(_Frozen):
    """One step of a streamed turn. Usage and finish_reason come last, once."""

    text: str = ""
    tool_call: ToolCallDelta | None = None
    finish_reason: FinishReason | None = None
    usage: Usage | None = None

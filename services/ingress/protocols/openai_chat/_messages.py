"""OpenAI's ``messages`` array -> the contract's system prompt and conversation.

Mapping rules, in the order a reader will wonder about them:

- ``system`` and ``developer`` messages become ``ChatRequest.system``. Several are joined with a
  blank line, in order. A system message in the middle of the conversation is folded into the
  same system prompt: the contract (like Anthropic and Gemini) has one system prompt, and moving
  an instruction to the front keeps its words where inventing a fake user turn would change who
  said them.
- ``user`` -> a user message of text and image parts. Audio and file parts are refused (400)
  until the contract can carry them.
- ``assistant`` -> an assistant message; ``tool_calls`` and the legacy ``function_call`` become
  ``ToolCallPart``s. A legacy call has no id, so it gets one derived from its position.
- ``tool`` -> a ``Role.TOOL`` message holding one ``ToolResultPart``. Its ``tool_call_id`` must
  answer a tool call made earlier in the conversation, as OpenAI itself requires; an orphan result
  would be refused by some vendors only after routing.
- the legacy ``function`` role -> a tool result answering the latest unanswered legacy
  ``function_call`` of the same name, so old clients keep working on every vendor.

Empty text is dropped rather than kept as an empty part: it carries nothing, and some vendors
refuse empty text blocks. A user message left with no content at all is refused (400), since
vendors refuse an empty turn, and so is a conversation of empty system messages only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from contracts.chat import ImagePart, Message, Role, TextPart, ToolCallPart, ToolResultPart
from services.ingress.protocols._json import (
    Fields,
    as_list,
    as_string,
    child,
    invalid,
    missing,
    unsupported,
    wrong_type,
)

_IMAGE_DETAILS: dict[str, Literal["auto", "low", "high"]] = {
    "auto": "auto",
    "low": "low",
    "high": "high",
}
_IMAGE_URL_SCHEMES = ("https://", "http://", "data:")

# OpenAI's words for an empty string where text is required.
_EMPTY_STRING = (
    "string too short. Expected a string with minimum length 1, but got an empty string instead."
)


@dataclass(frozen=True)
class Conversation:
    system: str | None
    messages: list[Message]


def parse_messages(value: object, path: str = "messages") -> Conversation:
    items = as_list(value, path)
    if not items:
        raise invalid(
            path, "empty array. Expected an array with minimum length 1, but got an empty array."
        )
    reader = _ConversationReader()
    for index, item in enumerate(items):
        reader.read(Fields.of(item, child(path, index)), index)
    system = "\n\n".join(reader.system_texts) if reader.system_texts else None
    if not any(reader.system_texts) and not reader.messages:
        # Only empty system or developer messages: nothing would be left to send a vendor.
        raise invalid(child(child(path, len(items) - 1), "content"), _EMPTY_STRING)
    return Conversation(system=system, messages=reader.messages)


@dataclass
class _ConversationReader:
    system_texts: list[str] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    tool_call_ids: set[str] = field(default_factory=set)
    # Legacy function calls still waiting for their result: (name, synthesised id), oldest first.
    open_function_calls: list[tuple[str, str]] = field(default_factory=list)

    def read(self, message: Fields, index: int) -> None:
        role = message.require_string("role")
        if role in ("system", "developer"):
            self.system_texts.append(_plain_text(message.get("content"), message.at("content")))
        elif role == "user":
            self.messages.append(self._user(message))
        elif role == "assistant":
            self.messages.append(self._assistant(message, index))
        elif role == "tool":
            self.messages.append(self._tool(message))
        elif role == "function":
            self.messages.append(self._function(message))
        else:
            raise invalid(
                message.at("role"),
                "expected one of 'system', 'developer', 'user', 'assistant', 'tool', "
                f"'function', but got {role!r} instead.",
            )

    def _user(self, message: Fields) -> Message:
        path = message.at("content")
        content = message.require("content")
        parts: list[TextPart | ImagePart]
        if isinstance(content, str):
            parts = [*_text_parts(content)]
        else:
            parts = [
                part
                for index, raw in enumerate(_non_empty_parts(content, path))
                for part in _user_part(Fields.of(raw, child(path, index)))
            ]
        if not parts:
            # Empty text is dropped (see the module docstring), and a user turn with nothing left
            # would be dropped by the vendor adapters in turn, leaving a conversation the vendor
            # refuses for a reason the caller cannot recognise. Refused here, with its path.
            if isinstance(content, str):
                raise invalid(path, _EMPTY_STRING)
            raise invalid(path, "expected at least one content part that is not empty text.")
        return Message(role=Role.USER, content=[*parts], name=message.string("name"))

    def _assistant(self, message: Fields, index: int) -> Message:
        calls = self._tool_calls(message)
        function_call = message.nested("function_call")
        if function_call is not None:
            name = function_call.require_string("name")
            call_id = f"call_legacy_{index}"
            arguments = function_call.require_string("arguments")
            calls.append(ToolCallPart(id=call_id, name=name, arguments=arguments))
            self.open_function_calls.append((name, call_id))
        content = message.get("content")
        refusal = message.string("refusal")
        if content is None:
            if not calls and refusal is None:
                raise missing(message.at("content"))
            # A refusal the model gave earlier is what it said in that turn.
            texts = _text_parts(refusal or "")
        elif isinstance(content, str):
            texts = _text_parts(content)
        else:
            texts = []
            path = message.at("content")
            for part_index, raw in enumerate(_non_empty_parts(content, path)):
                part = Fields.of(raw, child(path, part_index))
                kind = part.require_string("type")
                if kind == "text":
                    texts += _text_parts(part.require_string("text"))
                elif kind == "refusal":
                    texts += _text_parts(part.require_string("refusal"))
                else:
                    raise _unknown_part(part, kind, ("text", "refusal"))
        return Message(role=Role.ASSISTANT, content=[*texts, *calls], name=message.string("name"))

    def _tool_calls(self, message: Fields) -> list[ToolCallPart]:
        raw_calls = message.array("tool_calls")
        if raw_calls is None:
            return []
        calls: list[ToolCallPart] = []
        for index, raw in enumerate(raw_calls):
            call = Fields.of(raw, child(message.at("tool_calls"), index))
            kind = call.require_string("type")
            if kind != "function":
                raise unsupported(call.at("type"), f"tool call type {kind!r}")
            function = call.require_nested("function")
            call_id = call.require_string("id")
            calls.append(
                ToolCallPart(
                    id=call_id,
                    name=function.require_string("name"),
                    arguments=function.require_string("arguments"),
                )
            )
            self.tool_call_ids.add(call_id)
        return calls

    def _tool(self, message: Fields) -> Message:
        call_id = message.require_string("tool_call_id")
        if call_id not in self.tool_call_ids:
            raise invalid(
                message.at("tool_call_id"),
                f"no earlier assistant message has a tool call with id {call_id!r}; a message "
                "with role 'tool' must answer a preceding message with 'tool_calls'.",
            )
        text = _plain_text(message.get("content"), message.at("content"))
        result = ToolResultPart(tool_call_id=call_id, content=list(_text_parts(text)))
        return Message(role=Role.TOOL, content=[result])

    def _function(self, message: Fields) -> Message:
        name = message.require_string("name")
        call_id = self._answer_function_call(name)
        if call_id is None:
            raise invalid(
                message.at("name"),
                f"no earlier assistant message has a 'function_call' named {name!r}; a message "
                "with role 'function' must answer one.",
            )
        content = message.get("content")
        text = "" if content is None else as_string(content, message.at("content"))
        result = ToolResultPart(tool_call_id=call_id, content=list(_text_parts(text)))
        return Message(role=Role.TOOL, content=[result])

    def _answer_function_call(self, name: str) -> str | None:
        """The id of the latest unanswered legacy call named ``name``, now marked answered."""
        for position in reversed(range(len(self.open_function_calls))):
            open_name, call_id = self.open_function_calls[position]
            if open_name == name:
                del self.open_function_calls[position]
                return call_id
        return None


def _text_parts(text: str) -> list[TextPart]:
    return [TextPart(text=text)] if text else []


def _non_empty_parts(content: object, path: str) -> list[object]:
    if not isinstance(content, list):
        raise wrong_type(path, "one of a string or array of objects", content)
    if not content:
        raise invalid(
            path, "empty array. Expected an array with minimum length 1, but got an empty array."
        )
    return content


def _plain_text(content: object, path: str) -> str:
    """The text of a message that may only hold text (system, developer, tool)."""
    if content is None:
        raise missing(path)
    if isinstance(content, str):
        return content
    texts: list[str] = []
    for index, raw in enumerate(_non_empty_parts(content, path)):
        part = Fields.of(raw, child(path, index))
        kind = part.require_string("type")
        if kind != "text":
            raise _unknown_part(part, kind, ("text",))
        texts.append(part.require_string("text"))
    # Parts are concatenated as OpenAI does: they are pieces of one text, not paragraphs.
    return "".join(texts)


def _user_part(part: Fields) -> list[TextPart | ImagePart]:
    kind = part.require_string("type")
    if kind == "text":
        return list(_text_parts(part.require_string("text")))
    if kind == "image_url":
        image = part.require_nested("image_url")
        url = image.require_string("url")
        if not url.startswith(_IMAGE_URL_SCHEMES):
            raise invalid(image.at("url"), "expected an https URL or a base64-encoded data URL.")
        detail = image.choice("detail", tuple(_IMAGE_DETAILS))
        return [ImagePart(url=url, detail=None if detail is None else _IMAGE_DETAILS[detail])]
    if kind == "input_audio":
        raise unsupported(part.path, "audio input")
    if kind == "file":
        raise unsupported(part.path, "file input")
    raise _unknown_part(part, kind, ("text", "image_url", "input_audio", "file"))


def _unknown_part(part: Fields, kind: str, allowed: tuple[str, ...]) -> Exception:
    return invalid(
        part.at("type"),
        f"expected one of {', '.join(repr(a) for a in allowed)}, but got {kind!r} instead.",
    )

"""Contract results -> OpenAI's ``chat.completion`` object, usage object and error body."""

from __future__ import annotations

from typing import Any

from contracts.chat import ChatResponse, ToolCallPart, Usage
from contracts.errors import ErrorInfo

# Set on everything the vendor simulator answered, so a simulated completion is never mistaken
# for a real vendor's (DESIGN.md: the simulator is never presented as a real vendor).
SIMULATED_FINGERPRINT = "switchyard-simulated"


def render_completion(
    response: ChatResponse, *, completion_id: str, model: str, created: int, simulated: bool
) -> dict[str, Any]:
    """A ``CreateChatCompletionResponse`` for one finished turn."""
    tool_calls = response.tool_calls()
    text = response.text()
    message: dict[str, Any] = {
        "role": "assistant",
        # OpenAI sends null, not "", when the turn is only tool calls.
        "content": None if tool_calls and not text else text,
        "refusal": None,
        "annotations": [],
    }
    if tool_calls:
        message["tool_calls"] = [_tool_call(call) for call in tool_calls]
    completion: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": response.finish_reason.value,
                "logprobs": None,
            }
        ],
        "usage": render_usage(response.usage),
    }
    if simulated:
        completion["system_fingerprint"] = SIMULATED_FINGERPRINT
    return completion


def _tool_call(call: ToolCallPart) -> dict[str, Any]:
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments},
    }


def render_usage(usage: Usage) -> dict[str, Any]:
    """OpenAI's ``CompletionUsage``. The contract's input count already includes cached tokens,
    which is OpenAI's meaning of ``prompt_tokens`` too; cache writes have no OpenAI field."""
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cache_read_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def render_error(info: ErrorInfo) -> dict[str, Any]:
    """OpenAI's error body; the HTTP status is ``info.code.http_status``."""
    return {
        "error": {
            "message": info.message,
            "type": info.code.openai_type,
            "param": info.param,
            "code": info.code.value,
        }
    }

"""How many tokens a prompt holds, roughly, before anything is sent: for passing over a model
whose context window it cannot fit (``services.router.planning``) without a vendor call.

Counted from the text alone, at four bytes of UTF-8 a token. That is about right for English and
low for code and most other scripts (Chinese runs near one token a character, three bytes): the
estimate errs low on purpose, so a model that would have fitted is never passed over. A prompt
the estimate lets through and the vendor finds too long comes back as ``context_length_exceeded``,
which moves the request to the next target all the same. This is for requests that name their
model: a check that only needs the order of size is not worth a millisecond of tokenizing a long
prompt. A request for a routing policy (``auto``) is counted with the real tokenizer instead
(``services.common.prompt_features``): there the size chooses among long-context models.
"""

from __future__ import annotations

import orjson

from contracts.chat import ChatRequest, ImagePart, TextPart, ToolCallPart, ToolResultPart

_BYTES_PER_TOKEN = 4
# Per message (role and separators), as OpenAI's own counting recipe has it.
_PER_MESSAGE = 3
# The least an image costs anywhere (OpenAI's low-detail tile is 85 tokens).
_PER_IMAGE = 85


def estimate_prompt_tokens(chat: ChatRequest) -> int:
    size = len(chat.system.encode()) if chat.system else 0
    images = 0
    for message in chat.messages:
        for part in message.content:
            if isinstance(part, TextPart):
                size += len(part.text.encode())
            elif isinstance(part, ImagePart):
                images += 1
            elif isinstance(part, ToolCallPart):
                size += len(part.name) + len(part.arguments.encode())
            elif isinstance(part, ToolResultPart):
                for inner in part.content:
                    if isinstance(inner, TextPart):
                        size += len(inner.text.encode())
                    else:
                        images += 1
    for tool in chat.tools:
        size += len(orjson.dumps(tool.model_dump(exclude_none=True)))
    return size // _BYTES_PER_TOKEN + _PER_MESSAGE * len(chat.messages) + _PER_IMAGE * images

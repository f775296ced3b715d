"""What ingress learns of a request for automatic model choice, with no text in it.

Ingress has the plaintext anyway (it parsed the body), so it computes these there and puts them
on the envelope; the router chooses from them alone and never opens the sealed body. The prompt
stays sealed on Kafka, and nothing here can rebuild it: counts, flags, a language code, a task
label and a score.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from contracts._base import WireModel


class TaskType(StrEnum):
    """What a request asks for, as far as model choice cares.

    ``vision`` and ``tool_use`` follow from the request's shape (an image part, tool
    definitions); the rest are read from the text by the task model.
    """

    CODE = "code"  # write, fix, explain or review code
    REASONING = "reasoning"  # math and logic: a worked answer, a puzzle, a proof
    SUMMARISATION = "summarisation"  # condense a document the prompt carries
    EXTRACTION = "extraction"  # pull fields or facts out of given text into a shape
    TRANSLATION = "translation"  # the same text in another language
    CREATIVE_WRITING = "creative_writing"  # stories, poems, essays, marketing copy
    ROLEPLAY = "roleplay"  # speak as a character or persona
    KNOWLEDGE = "knowledge"  # explain or answer a question of fact (science, history, law...)
    CHAT = "chat"  # small talk, greetings, advice, everyday questions
    VISION = "vision"  # the prompt carries an image
    TOOL_USE = "tool_use"  # the caller offers tools to call


def known_task(task: TaskType | str) -> TaskType | None:
    """``task`` as this build knows it, or None for a type it does not (from a newer sender)."""
    try:
        return TaskType(task)
    except ValueError:
        return None


# The task types the text model tells apart; the other two follow from the request's shape.
TEXT_TASKS: tuple[TaskType, ...] = tuple(
    t for t in TaskType if t not in (TaskType.VISION, TaskType.TOOL_USE)
)


class RequestFeatures(WireModel):
    """The features of one chat request; see ``services.common.prompt_features``."""

    # Prompt tokens counted with a real tokenizer (o200k_base); for a prompt longer than
    # ``services.common.prompt_features.EXACT_CHARS`` the density of samples is extrapolated.
    prompt_tokens: int = Field(ge=0)
    # What the caller allows the answer to take (max_tokens), else None.
    max_output_tokens: int | None = None
    images: int = Field(default=0, ge=0)
    tools: int = Field(default=0, ge=0)
    json_mode: bool = False  # response_format json_object
    json_schema: bool = False  # response_format json_schema
    sampling: bool = False  # temperature or top_p set
    reasoning_effort: bool = False  # reasoning_effort set
    turns: int = Field(default=1, ge=0)  # messages from the user
    # The last user message's language as fastText names it (ISO 639-1 where one exists,
    # "en"), when sure enough.
    language: str | None = None
    # A task type this build does not know (sent by a newer ingress) stays a plain string: the
    # router then ranks it with no task-specific adjustment rather than drop the request.
    task: Annotated[TaskType | str, Field(union_mode="left_to_right")] = TaskType.CHAT
    task_confidence: float = Field(default=0.0, ge=0, le=1)
    # How likely a cheap model is to get this prompt wrong, 0..1.
    difficulty: float = Field(default=0.5, ge=0, le=1)

"""What ingress reads of a prompt for automatic choice: shape features from the request, a
bounded token count, and the text model's guess, on ordinary and awkward inputs."""

from __future__ import annotations

import pytest

from contracts.chat import (
    ChatRequest,
    ImagePart,
    Message,
    ResponseFormat,
    Role,
    Sampling,
    TextPart,
    ToolCallPart,
    ToolSpec,
)
from contracts.features import TEXT_TASKS, TaskType, known_task
from services.common import prompt_features, tokens
from services.common.prompt_features import EXACT_CHARS, features_of, text_features
from services.common.task_model import TaskModel, featurize


def user(*parts: TextPart | ImagePart) -> Message:
    return Message(role=Role.USER, content=list(parts))


def chat(*messages: Message, **fields: object) -> ChatRequest:
    return ChatRequest.model_validate({"messages": list(messages), **fields})


def test_shape_features_come_from_the_request() -> None:
    request = chat(
        user(TextPart(text="What is in this picture?"), ImagePart(url="https://x/cat.png")),
        Message(
            role=Role.ASSISTANT,
            content=[ToolCallPart(id="c1", name="lookup", arguments='{"q": "cat"}')],
        ),
        user(TextPart(text="And this one?"), ImagePart(url="https://x/dog.png")),
        tools=[ToolSpec(name="lookup")],
        response_format=ResponseFormat(type="json_schema", json_schema={"type": "object"}),
        sampling=Sampling(temperature=0.2, max_output_tokens=300, reasoning_effort="low"),
    )
    found = features_of(request)
    assert found.images == 2
    assert found.tools == 1
    assert found.turns == 2
    assert found.json_schema
    assert not found.json_mode
    assert found.sampling
    assert found.reasoning_effort
    assert found.max_output_tokens == 300
    assert found.task is TaskType.VISION  # an image decides what the model must do
    assert found.task_confidence == 1.0


def test_tools_make_it_tool_use_and_json_object_is_json_mode() -> None:
    found = features_of(
        chat(
            user(TextPart(text="weather in Oslo?")),
            tools=[ToolSpec(name="weather")],
            response_format=ResponseFormat(type="json_object"),
        )
    )
    assert found.task is TaskType.TOOL_USE
    assert found.json_mode
    assert not found.sampling


def test_the_count_is_the_real_tokenizers_for_a_short_prompt() -> None:
    text = "Write a haiku about the sea at dawn."
    found = features_of(chat(user(TextPart(text=text)), system="Be brief."))
    exact = tokens.count_text_tokens(text) + tokens.count_text_tokens("Be brief.")
    assert found.prompt_tokens == exact + 2 * 4  # two messages' framing


def test_a_long_request_is_counted_at_a_bounded_cost_and_close_to_exact(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    paragraph = "The river rose three feet overnight and the ferry stayed docked. "
    parts = [TextPart(text=paragraph * 300) for _ in range(40)]  # 40 parts of ~20 KB
    exact = sum(tokens.count_text_tokens(p.text) for p in parts)
    counted_chars: list[int] = []
    real = tokens.count_text_tokens

    def counting(text: str) -> int:
        counted_chars.append(len(text))
        return real(text)

    monkeypatch.setattr(tokens, "count_text_tokens", counting)
    found = features_of(chat(user(*parts)))
    # Only the budget (and the last message's window, which the task model reads) went
    # through the tokenizer, not 800 KB.
    assert sum(counted_chars) <= EXACT_CHARS + 4_000
    assert abs(found.prompt_tokens - exact) / exact < 0.02


def test_one_huge_text_is_extrapolated_from_samples() -> None:
    text = "Quarterly revenue grew in every region. " * 20_000  # 800 KB
    exact = tokens.count_text_tokens(text)
    estimate = prompt_features.count_tokens(text)
    assert abs(estimate - exact) / exact < 0.02


@pytest.mark.parametrize(
    "text",
    ["", "\n\n\n\n", "\t" * 500, "🙂" * 300, "x" * 200_000, "a\ud800b", "日本語のテキスト" * 50],
)
def test_awkward_text_gives_sane_features(text: str) -> None:
    found = text_features(text)
    assert found.prompt_tokens >= 0
    assert 0.0 <= found.difficulty <= 1.0
    assert 0.0 <= found.task_confidence <= 1.0
    assert found.task in TEXT_TASKS


def test_a_request_without_user_text_still_gets_features() -> None:
    found = features_of(chat(user(ImagePart(url="https://x/y.png"))))
    assert found.task is TaskType.VISION
    assert found.turns == 1


def test_language_is_read_from_the_last_user_message() -> None:
    assert text_features("Bonjour, pouvez-vous m'aider à écrire une lettre ?").language == "fr"
    assert text_features("1234 5678").language is None


def test_the_task_model_tells_the_obvious_apart() -> None:
    # Prompts written for this test, not taken from any training or evaluation set.
    cases = {
        "Fix the off-by-one error in this loop: for i in range(len(xs)+1): print(xs[i])": "code",
        "Translate into German: the meeting moves to Thursday at nine.": "translation",
        "hey! good morning :)": "chat",
        "Write a limerick about a cat who learns to play the cello.": "creative_writing",
        "Solve for x: 3x + 7 = 22, showing each step.": "reasoning",
    }
    for text, task in cases.items():
        assert text_features(text).task == task, text


def test_featurize_is_stable_and_bounded() -> None:
    first = featurize("Hello world, hello code {}")
    again = featurize("Hello world, hello code {}")
    assert (first.indices == again.indices).all()
    assert (first.dense == again.dense).all()
    # A long text is read through a window: as many buckets as a 2,000-character text at most.
    assert len(featurize("word " * 100_000).indices) <= len(featurize("x" * 2_000).indices) + 4


def test_a_model_with_tasks_this_build_does_not_know_is_refused() -> None:
    shipped = TaskModel.shipped()
    assert set(shipped.tasks) == set(TEXT_TASKS)
    assert known_task("code") is TaskType.CODE
    assert known_task("poetry") is None

"""Parsing ``[sim:...]`` directives out of a prompt."""

from __future__ import annotations

import pytest

from services.vendorsim.directives import (
    NO_DIRECTIVES,
    TIMEOUT,
    Directives,
    Failure,
    parse_directives,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[sim:fail=429]", Directives(failures=(Failure(429),))),
        ("[sim:fail=500]", Directives(failures=(Failure(500),))),
        ("[sim:fail=529x3]", Directives(failures=(Failure(529, times=3),))),
        ("[sim:fail=timeout]", Directives(failures=(Failure(TIMEOUT),))),
        ("[sim:fail=429x2]", Directives(failures=(Failure(429, times=2),))),
        ("[sim:fail=503@gpt-4o-mini]", Directives(failures=(Failure(503, model="gpt-4o-mini"),))),
        (
            "[sim:fail=429x2@claude-haiku-4-5]",
            Directives(failures=(Failure(429, times=2, model="claude-haiku-4-5"),)),
        ),
        ("[sim:fail=timeout@gpt-4o]", Directives(failures=(Failure(TIMEOUT, model="gpt-4o"),))),
        (
            "[sim:fail=500@openai/gpt-4.1:latest]",
            Directives(failures=(Failure(500, model="openai/gpt-4.1:latest"),)),
        ),
        ("[sim:ttft=200]", Directives(ttft_ms=200.0)),
        ("[sim:itl=2.5]", Directives(itl_ms=2.5)),
        ("[sim:tokens=50]", Directives(tokens=50)),
        ("[sim:tool]", Directives(tool=True)),
        ("[sim:tool=get_time]", Directives(tool=True, tool_name="get_time")),
        ("[sim:cache=100]", Directives(cached_tokens=100)),
        ("[sim:reasoning=30]", Directives(reasoning_tokens=30)),
        ("[sim:disconnect]", Directives(disconnect=True)),
        ("[sim:malformed]", Directives(malformed=True)),
    ],
)
def test_each_directive(text: str, expected: Directives) -> None:
    assert parse_directives(f"Tell me a story. {text} Thanks") == expected


def test_directives_combine() -> None:
    parsed = parse_directives("[sim:tokens=5] hi [sim:itl=20][sim:disconnect]")
    assert parsed == Directives(tokens=5, itl_ms=20.0, disconnect=True)


def test_fail_directives_for_different_models_are_all_kept() -> None:
    parsed = parse_directives("[sim:fail=503@a] [sim:fail=500x1@b] [sim:fail=429]")

    assert parsed.failures == (Failure(503, model="a"), Failure(500, 1, "b"), Failure(429))


def test_a_later_fail_directive_for_the_same_model_replaces_the_earlier() -> None:
    parsed = parse_directives("[sim:fail=503@a] [sim:fail=429] [sim:fail=500@a] [sim:fail=529]")

    assert parsed.failures == (Failure(500, model="a"), Failure(529))


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("a", Failure(503, model="a")),
        ("b", Failure(500, model="b")),
        ("c", Failure(429)),  # no directive names it: the one for every model
        ("A", Failure(429)),  # names are compared exactly
    ],
)
def test_the_failure_naming_the_model_beats_the_one_for_every_model(
    model: str, expected: Failure
) -> None:
    # The directive for every model comes last, and still loses to one naming the model.
    parsed = parse_directives("[sim:fail=503@a] [sim:fail=500@b] [sim:fail=429]")

    assert parsed.failure_for(model) == expected


def test_without_a_failure_for_every_model_other_models_answer() -> None:
    parsed = parse_directives("[sim:fail=503@a]")

    assert parsed.failure_for("a") == Failure(503, model="a")
    assert parsed.failure_for("b") is None


@pytest.mark.parametrize(
    "text",
    [
        "no directive at all",
        "[sim:fail=abc]",
        "[sim:fail=200]",
        "[sim:fail=503@]",
        "[sim:fail=@a]",
        "[sim:fail=200@a]",
        "[sim:tokens=-3]",
        "[sim:ttft=soon]",
        "[sim:unknown=1]",
        "[SIM:tool]",
    ],
)
def test_unknown_or_malformed_directives_are_ignored(text: str) -> None:
    assert parse_directives(text) == NO_DIRECTIVES

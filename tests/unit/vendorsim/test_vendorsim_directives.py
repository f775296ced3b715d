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
        ("[sim:fail=429]", Directives(failure=Failure(429))),
        ("[sim:fail=500]", Directives(failure=Failure(500))),
        ("[sim:fail=529x3]", Directives(failure=Failure(529, times=3))),
        ("[sim:fail=timeout]", Directives(failure=Failure(TIMEOUT))),
        ("[sim:fail=429x2]", Directives(failure=Failure(429, times=2))),
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


@pytest.mark.parametrize(
    "text",
    [
        "no directive at all",
        "[sim:fail=abc]",
        "[sim:fail=200]",
        "[sim:tokens=-3]",
        "[sim:ttft=soon]",
        "[sim:unknown=1]",
        "[SIM:tool]",
    ],
)
def test_unknown_or_malformed_directives_are_ignored(text: str) -> None:
    assert parse_directives(text) == NO_DIRECTIVES

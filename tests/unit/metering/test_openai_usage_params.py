"""OpenAI's usage and costs parameters read into a ``UsageQuery``: defaults, limits, buckets,
cursors, the rollup each query can be read from, and the exact JSON money is written in. No
store: ``test_openai_usage_api`` answers real queries."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from services.metering.openai_usage import (
    BucketWidth,
    Dimension,
    InvalidUsageQueryError,
    Source,
    UsageKind,
    UsageQuery,
    cheapest_source,
    parse_usage_query,
    render_json,
)

DAY0 = 1_767_225_600  # 2026-01-01T00:00:00Z
HOUR = 3600
DAY = 86_400
NOW = DAY0 + 10 * DAY + 5 * HOUR + 17  # 2026-01-11T05:00:17Z

COMPLETIONS, EMBEDDINGS, COSTS = UsageKind.COMPLETIONS, UsageKind.EMBEDDINGS, UsageKind.COSTS


def parse(kind: UsageKind = COMPLETIONS, /, **params: str | list[str]) -> UsageQuery:
    lists = {name: value if isinstance(value, list) else [value] for name, value in params.items()}
    return parse_usage_query(kind, lists, now_s=NOW)


def refused(kind: UsageKind = COMPLETIONS, /, **params: str | list[str]) -> InvalidUsageQueryError:
    with pytest.raises(InvalidUsageQueryError) as caught:
        parse(kind, **params)
    return caught.value


def test_defaults_are_openais() -> None:
    query = parse(start_time=str(DAY0))

    assert (query.bucket_width, query.limit, query.group_by) == (BucketWidth.DAY, 7, ())
    assert (query.page_start, query.batch) == (DAY0, None)
    # No end: up to the end of the bucket holding the present moment.
    assert query.end_time == DAY0 + 11 * DAY
    assert parse(start_time=str(DAY0), bucket_width="1h").end_time == DAY0 + 10 * DAY + 6 * HOUR
    assert parse(start_time=str(DAY0), bucket_width="1h").limit == 24
    assert parse(start_time=str(DAY0), bucket_width="1m").limit == 60
    assert parse(COSTS, start_time=str(DAY0)).limit == 7


@pytest.mark.parametrize(
    ("kind", "width", "maximum"),
    [
        (COMPLETIONS, "1d", 31),
        (COMPLETIONS, "1h", 168),
        (COMPLETIONS, "1m", 1440),
        (EMBEDDINGS, "1m", 1440),
        (COSTS, "1d", 180),
    ],
)
def test_limit_ranges_per_bucket_width(kind: UsageKind, width: str, maximum: int) -> None:
    start = str(DAY0)
    assert parse(kind, start_time=start, bucket_width=width, limit=str(maximum)).limit == maximum
    assert parse(kind, start_time=start, bucket_width=width, limit="1").limit == 1
    for bad in (str(maximum + 1), "0", "-1", "7.5", "seven", "１"):
        error = refused(kind, start_time=start, bucket_width=width, limit=bad)
        assert error.param == "limit"


def test_lists_take_bracketed_and_bare_names() -> None:
    params: dict[str, str | list[str]] = {
        "start_time": str(DAY0),
        "project_ids[]": ["p1", "p2"],
        "project_ids": "p3",
        "models[]": "gpt-4o",
        "group_by[]": ["model", "project_id", "model"],
        "user_ids": "u1",
    }
    query = parse(**params)

    assert query.project_ids == {"p1", "p2", "p3"}
    assert query.models == {"gpt-4o"}
    assert query.user_ids == {"u1"}
    assert query.group_by == (Dimension.MODEL, Dimension.PROJECT)


@pytest.mark.parametrize(
    ("kind", "params", "param"),
    [
        (COMPLETIONS, {}, "start_time"),
        (COMPLETIONS, {"start_time": "yesterday"}, "start_time"),
        (COMPLETIONS, {"start_time": "-5"}, "start_time"),
        (COMPLETIONS, {"start_time": ["1", "2"]}, "start_time"),
        (COMPLETIONS, {"start_time": "99999999999"}, "start_time"),  # past the year 2100
        (COMPLETIONS, {"start_time": str(DAY0), "end_time": str(DAY0)}, "end_time"),
        (COMPLETIONS, {"start_time": str(DAY0), "end_time": str(DAY0 - 1)}, "end_time"),
        (COMPLETIONS, {"start_time": str(DAY0), "bucket_width": "1w"}, "bucket_width"),
        (COSTS, {"start_time": str(DAY0), "bucket_width": "1h"}, "bucket_width"),
        (COMPLETIONS, {"start_time": str(DAY0), "group_by": "colour"}, "group_by[]"),
        (COMPLETIONS, {"start_time": str(DAY0), "group_by[]": "line_item"}, "group_by[]"),
        (EMBEDDINGS, {"start_time": str(DAY0), "group_by": "batch"}, "group_by[]"),
        (COSTS, {"start_time": str(DAY0), "group_by": "model"}, "group_by[]"),
        (COMPLETIONS, {"start_time": str(DAY0), "batch": "maybe"}, "batch"),
        (COMPLETIONS, {"start_time": str(DAY0), "project_ids[]": ""}, "project_ids[]"),
        (COMPLETIONS, {"start_time": str(DAY0), "models": "m" * 513}, "models[]"),
        (COMPLETIONS, {"start_time": str(DAY0), "api_key_ids": ["k"] * 101}, "api_key_ids[]"),
        # another endpoint's filters are refused, not dropped: that would widen the answer
        (COSTS, {"start_time": str(DAY0), "models[]": "gpt-4o"}, "models"),
        (COSTS, {"start_time": str(DAY0), "user_ids": "u1"}, "user_ids"),
        (EMBEDDINGS, {"start_time": str(DAY0), "batch": "true"}, "batch"),
        (COMPLETIONS, {"start_time": str(DAY0), "page": "next"}, "page"),
    ],
)
def test_bad_parameters_name_themselves(
    kind: UsageKind, params: dict[str, str | list[str]], param: str
) -> None:
    error = refused(kind, **params)

    assert error.param == param
    assert str(error)


def test_batch_takes_true_and_false() -> None:
    assert parse(start_time=str(DAY0), batch="true").batch is True
    assert parse(start_time=str(DAY0), batch="False").batch is False


def test_buckets_are_utc_aligned_and_clip_at_the_bounds() -> None:
    aligned = parse(start_time=str(DAY0), end_time=str(DAY0 + 3 * DAY))
    assert aligned.buckets() == [(DAY0 + n * DAY, DAY0 + (n + 1) * DAY) for n in range(3)]

    start, end = DAY0 + 5 * HOUR + 30, DAY0 + 2 * DAY + 7
    clipped = parse(start_time=str(start), end_time=str(end))
    assert clipped.buckets() == [
        (start, DAY0 + DAY),
        (DAY0 + DAY, DAY0 + 2 * DAY),
        (DAY0 + 2 * DAY, end),
    ]
    hours = parse(start_time=str(DAY0 + 90), end_time=str(DAY0 + 2 * HOUR), bucket_width="1h")
    assert hours.buckets() == [(DAY0 + 90, DAY0 + HOUR), (DAY0 + HOUR, DAY0 + 2 * HOUR)]


def test_a_start_in_the_future_without_an_end_has_no_buckets() -> None:
    assert parse(start_time=str(NOW + DAY)).buckets() == []


def test_limit_caps_the_buckets_of_a_page() -> None:
    query = parse(start_time=str(DAY0), end_time=str(DAY0 + 30 * DAY), limit="3")

    assert query.buckets() == [(DAY0 + n * DAY, DAY0 + (n + 1) * DAY) for n in range(3)]


@pytest.mark.parametrize(
    "cursor",
    [
        "page_",
        "page_!!!",
        "page_AAAAAA==",  # too short
        "AAAAAGlWuYAAAVGA",  # no prefix
    ],
)
def test_a_malformed_cursor_is_refused(cursor: str) -> None:
    assert refused(start_time=str(DAY0), page=cursor).param == "page"


def test_a_cursor_belongs_to_its_range_and_width() -> None:
    # The cursor of the second page of two daily buckets: valid for its own query, refused
    # with another width or outside the range.
    first = parse(start_time=str(DAY0), end_time=str(DAY0 + 5 * DAY), limit="2")
    cursor = first.next_page()
    assert cursor is not None
    assert cursor.startswith("page_")
    query = parse(start_time=str(DAY0), end_time=str(DAY0 + 5 * DAY), page=cursor)
    assert query.page_start == DAY0 + 2 * DAY

    for params in (
        {"start_time": str(DAY0), "end_time": str(DAY0 + 5 * DAY), "bucket_width": "1h"},
        {"start_time": str(DAY0 + 3 * DAY), "end_time": str(DAY0 + 5 * DAY)},
        {"start_time": str(DAY0), "end_time": str(DAY0 + 2 * DAY)},
    ):
        assert refused(**params, page=cursor).param == "page"
    # A cursor made at an unaligned start is a bucket boundary all the same; the last page
    # has none.
    clipped = parse(start_time=str(DAY0 + 7), end_time=str(DAY0 + 3 * DAY + 5), limit="1")
    assert clipped.buckets() == [(DAY0 + 7, DAY0 + DAY)]
    later = parse(start_time=str(DAY0 + 7), end_time=str(DAY0 + 3 * DAY + 5), limit="4")
    assert later.next_page() is None
    assert later.buckets()[-1] == (DAY0 + 3 * DAY, DAY0 + 3 * DAY + 5)
    assert clipped.next_page() is not None
    resumed = parse(
        start_time=str(DAY0 + 7), end_time=str(DAY0 + 3 * DAY + 5), page=str(clipped.next_page())
    )
    assert resumed.page_start == DAY0 + DAY


@pytest.mark.parametrize(
    ("params", "source"),
    [
        ({"bucket_width": "1d"}, Source.HOUR),
        ({"bucket_width": "1h", "group_by": ["api_key_id", "model", "project_id"]}, Source.HOUR),
        ({"bucket_width": "1h", "api_key_ids": "key-1", "models": "m"}, Source.HOUR),
        ({"bucket_width": "1h", "group_by": "service_tier"}, Source.HOUR),
        ({"bucket_width": "1m", "group_by": ["model", "project_id"]}, Source.MINUTE),
        ({"bucket_width": "1m", "group_by": "api_key_id"}, Source.RAW),
        ({"bucket_width": "1d", "group_by": "user_id"}, Source.RAW),
        ({"bucket_width": "1d", "user_ids": "u1"}, Source.RAW),
        ({"bucket_width": "1h", "batch": "false"}, Source.RAW),
        ({"bucket_width": "1h", "group_by": "batch"}, Source.RAW),
    ],
)
def test_each_query_reads_the_smallest_table_that_answers_it(
    params: dict[str, str | list[str]], source: Source
) -> None:
    query = parse(start_time=str(DAY0), end_time=str(DAY0 + DAY), **params)

    assert cheapest_source(query, DAY0, DAY0 + DAY) is source


def test_a_bound_inside_the_rollups_grain_reads_a_finer_table() -> None:
    query = parse(start_time=str(DAY0), end_time=str(DAY0 + DAY))

    assert cheapest_source(query, DAY0 + 60, DAY0 + DAY) is Source.MINUTE
    assert cheapest_source(query, DAY0, DAY0 + DAY - 1) is Source.RAW
    costs = parse(COSTS, start_time=str(DAY0), group_by=["line_item", "api_key_id"])
    assert cheapest_source(costs, DAY0, DAY0 + DAY) is Source.HOUR
    assert cheapest_source(costs, DAY0 + 60, DAY0 + DAY) is Source.RAW


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (Decimal("0.022311000000"), "0.022311"),
        (Decimal("0E-12"), "0"),
        (Decimal("100.000000000000"), "100"),
        (Decimal("12345678901234567890.123456789012"), "12345678901234567890.123456789012"),
        (Decimal("0.000000000001"), "0.000000000001"),
        (Decimal("1E+3"), "1000"),
    ],
)
def test_money_is_written_with_exactly_its_digits(amount: Decimal, text: str) -> None:
    body = render_json({"amount": {"value": amount, "currency": "usd"}, "n": [1, True, None]})

    assert body.decode() == f'{{"amount":{{"value":{text},"currency":"usd"}},"n":[1,true,null]}}'
    assert json.loads(body, parse_float=Decimal)["amount"]["value"] == amount


def test_render_json_writes_strings_as_json_does_and_refuses_the_unknown() -> None:
    assert json.loads(render_json({"k\n": 'a"\\b ü'})) == {"k\n": 'a"\\b ü'}
    with pytest.raises(TypeError):
        render_json({"f": 0.1})
    with pytest.raises(ValueError, match="not a JSON number"):
        render_json(Decimal("NaN"))

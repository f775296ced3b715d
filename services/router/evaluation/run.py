"""Running the automatic-choice decision over an evaluation set, and the ``switchyard routing
eval`` command that loads a set, runs it and prints the report.

The decision is a parameter (``Decide``) rather than an import, so tests run the evaluation
with a fake one; only services/cli.py wires in ``services.common.prompt_features``.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, TypeVar

import typer
from rich.console import Console

from contracts.features import RequestFeatures, TaskType
from services.router.evaluation.datasets import (
    CorrectnessRow,
    DatasetError,
    DatasetFormat,
    LabelledPrompt,
    load_arena_hard,
    load_mt_bench,
    load_routellm,
)
from services.router.evaluation.metrics import (
    ClassificationReport,
    LatencySummary,
    RoutingQuality,
    classification_report,
    latency_summary,
    routing_quality,
)
from services.router.evaluation.report import (
    correctness_json,
    correctness_tables,
    task_json,
    task_tables,
)

Decide = Callable[[str], RequestFeatures]

# The first call of a decision may load a tokenizer or model; that is start-up cost, not the
# cost of a routing decision, so one untimed call on this text goes first.
WARM_UP_PROMPT = "Warm-up: what is the capital of France?"

# A file the command cannot read is the caller's mistake, like a bad option: click's usage exit.
_BAD_INPUT = 2

_LABELLED_LOADERS: Mapping[str, Callable[[Path], list[LabelledPrompt]]] = {
    "mt-bench": load_mt_bench,
    "arena-hard": load_arena_hard,
}

_Row = TypeVar("_Row")


@dataclass(frozen=True, slots=True)
class CorrectnessEvaluation:
    """The difficulty score judged as a strong/weak router."""

    routing: RoutingQuality
    latency: LatencySummary
    sources: Mapping[str, int]  # prompts per source file


@dataclass(frozen=True, slots=True)
class TaskEvaluation:
    """The task label judged against a dataset's categories."""

    classification: ClassificationReport
    latency: LatencySummary
    sources: Mapping[str, int]


def evaluate_correctness(rows: Sequence[CorrectnessRow], decide: Decide) -> CorrectnessEvaluation:
    features, durations_ns = _decide_all([row.prompt for row in rows], decide)
    return CorrectnessEvaluation(
        routing=routing_quality([f.difficulty for f in features], rows),
        latency=latency_summary(durations_ns),
        sources=_count_sources(row.source for row in rows),
    )


def evaluate_tasks(rows: Sequence[LabelledPrompt], decide: Decide) -> TaskEvaluation:
    features, durations_ns = _decide_all([row.prompt for row in rows], decide)
    return TaskEvaluation(
        classification=classification_report(
            [row.task.value for row in rows],
            [str(f.task) for f in features],
            order=[task.value for task in TaskType],
        ),
        latency=latency_summary(durations_ns),
        sources=_count_sources(row.source for row in rows),
    )


def routing_eval_command(
    dataset_format: DatasetFormat,
    paths: Sequence[Path],
    *,
    decide: Decide,
    as_json: bool,
    strong: str,
    weak: str,
    limit: int | None,
) -> None:
    """Load, evaluate and print; ``--strong``/``--weak`` only matter for RouteLLM files."""
    try:
        if dataset_format == "routellm":
            rows = _first(load_routellm(paths, strong=strong, weak=weak), limit, paths)
            correctness = evaluate_correctness(rows, decide)
            body = correctness_json(correctness, dataset_format, strong=strong, weak=weak)
            tables = correctness_tables(correctness, dataset_format, strong=strong, weak=weak)
        else:
            load = _LABELLED_LOADERS[dataset_format]
            prompts = _first([p for path in paths for p in load(path)], limit, paths)
            tasks = evaluate_tasks(prompts, decide)
            body = task_json(tasks, dataset_format)
            tables = task_tables(tasks, dataset_format)
    except DatasetError as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps(body, indent=2))
    else:
        Console().print(*tables)


def _decide_all(prompts: Sequence[str], decide: Decide) -> tuple[list[RequestFeatures], list[int]]:
    decide(WARM_UP_PROMPT)  # untimed: loading a model is not part of a decision's latency
    features: list[RequestFeatures] = []
    durations_ns: list[int] = []
    for prompt in prompts:
        started = time.perf_counter_ns()
        decision = decide(prompt)
        durations_ns.append(time.perf_counter_ns() - started)
        features.append(decision)
    return features, durations_ns


def _first(rows: list[_Row], limit: int | None, paths: Sequence[Path]) -> list[_Row]:
    """The first ``limit`` rows in load order (files in the order given, directories sorted)."""
    chosen = rows if limit is None else rows[:limit]
    if not chosen:
        raise DatasetError(f"no prompts to evaluate in {', '.join(map(str, paths))}")
    return chosen


def _count_sources(sources: Iterable[str]) -> dict[str, int]:
    return dict(sorted(Counter(sources).items()))


def _fail(message: str) -> NoReturn:
    typer.echo(f"switchyard routing eval: {message}", err=True)
    raise typer.Exit(_BAD_INPUT)

"""Loaders for the public evaluation sets ``switchyard routing eval`` reads, and the table that
maps their categories onto our ``TaskType``.

Two kinds of set:

- correctness sets (RouteLLM's per-model CSVs): for each prompt, did the weak and the strong
  model answer it right. These score the difficulty estimate as a strong/weak router.
- labelled sets (MT-Bench, Arena-Hard questions): each prompt carries a category, which the
  table below turns into the task we expect. These score the task label.

Every problem with a file is raised as ``DatasetError`` naming the file and line, so the command
can print one line and exit instead of showing a traceback.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

from contracts.features import TaskType

# The values of ``--format``; services/cli.py spells the same Literal (it cannot import this
# module at import time without loading pydantic) and a unit test pins the two together.
DatasetFormat = Literal["routellm", "mt-bench", "arena-hard"]

_T = TypeVar("_T")

# RouteLLM's released correctness files compare these two models.
DEFAULT_STRONG = "gpt-4-1106-preview"
DEFAULT_WEAK = "mistralai/Mixtral-8x7B-Instruct-v0.1"

# Decided from the definitions in contracts/features.py, not tuned on the data: a category is
# mapped to the task whose definition fits what its questions ask for. Math goes to
# ``reasoning`` because TaskType files math under it ("math and logic"); MT-Bench's stem and
# humanities questions ask to explain facts and concepts, which is ``knowledge``.
MT_BENCH_TASKS: Mapping[str, TaskType] = {
    "writing": TaskType.CREATIVE_WRITING,
    "roleplay": TaskType.ROLEPLAY,
    "reasoning": TaskType.REASONING,
    "math": TaskType.REASONING,
    "coding": TaskType.CODE,
    "extraction": TaskType.EXTRACTION,
    "stem": TaskType.KNOWLEDGE,
    "humanities": TaskType.KNOWLEDGE,
}
# Arena-Hard v2.0 labels by ``subcategory``; its ``category`` (e.g. hard_prompt) says how a
# prompt was picked, not what it asks for.
ARENA_HARD_TASKS: Mapping[str, TaskType] = {
    "coding": TaskType.CODE,
    "math": TaskType.REASONING,
    "creative_writing": TaskType.CREATIVE_WRITING,
}

_TRUE = frozenset({"true", "1", "1.0"})
_FALSE = frozenset({"false", "0", "0.0"})
# gsm8k's CSV carries whole model responses in its cells; csv's default cap (128 KiB) is a
# guard against runaway quoting, not a limit on real data, so it is raised (never lowered).
_CSV_FIELD_LIMIT = 16 * 1024 * 1024


class DatasetError(ValueError):
    """An evaluation file is missing, malformed, or lacks what the command was asked to read."""


@dataclass(frozen=True, slots=True)
class CorrectnessRow:
    """One prompt of a correctness set: whether each model answered it right."""

    prompt: str
    weak_correct: bool
    strong_correct: bool
    source: str  # the file's stem, e.g. mmlu_anatomy


@dataclass(frozen=True, slots=True)
class LabelledPrompt:
    """One prompt of a labelled set, with the task its category maps to."""

    prompt: str
    task: TaskType
    category: str  # the dataset's own label, kept for messages and reports
    source: str


def load_routellm(
    paths: Sequence[Path], *, strong: str = DEFAULT_STRONG, weak: str = DEFAULT_WEAK
) -> list[CorrectnessRow]:
    """Read RouteLLM correctness CSVs: a ``prompt`` column, then one True/False column per
    model (other columns, such as gsm8k's responses, are ignored). A directory stands for every
    ``*.csv`` in it, in name order, so a run over the same directory is the same run."""
    rows: list[CorrectnessRow] = []
    for path in _csv_files(paths):
        rows.extend(_read_correctness_csv(path, strong=strong, weak=weak))
    return rows


def load_mt_bench(path: Path) -> list[LabelledPrompt]:
    """Read MT-Bench questions (``{question_id, category, turns}``); the first turn is the
    prompt, since the router decides on the opening message."""
    prompts: list[LabelledPrompt] = []
    for line_no, record in _jsonl_records(path):
        category = _field(record, "category", str, path, line_no)
        turns = _field(record, "turns", list, path, line_no)
        if not turns or not isinstance(turns[0], str):
            raise DatasetError(f"{path}:{line_no}: 'turns' must start with a string")
        task = _task_for(category, MT_BENCH_TASKS, "MT-Bench category", path, line_no)
        prompts.append(LabelledPrompt(turns[0], task, category, path.stem))
    return prompts


def load_arena_hard(path: Path) -> list[LabelledPrompt]:
    """Read Arena-Hard questions (``{uid, category, subcategory, prompt}``), labelled by
    ``subcategory``."""
    prompts: list[LabelledPrompt] = []
    for line_no, record in _jsonl_records(path):
        subcategory = _field(record, "subcategory", str, path, line_no)
        prompt = _field(record, "prompt", str, path, line_no)
        task = _task_for(subcategory, ARENA_HARD_TASKS, "Arena-Hard subcategory", path, line_no)
        prompts.append(LabelledPrompt(prompt, task, subcategory, path.stem))
    return prompts


def _csv_files(paths: Sequence[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            found = sorted(path.glob("*.csv"))
            if not found:
                raise DatasetError(f"{path}: no *.csv files in this directory")
            yield from found
        elif path.is_file():
            yield path
        else:
            raise DatasetError(f"{path}: no such file or directory")


def _read_correctness_csv(path: Path, *, strong: str, weak: str) -> list[CorrectnessRow]:
    csv.field_size_limit(max(csv.field_size_limit(), _CSV_FIELD_LIMIT))
    with path.open(newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        header = reader.fieldnames or []
        for column in ("prompt", weak, strong):
            if column not in header:
                models = ", ".join(name for name in header if name != "prompt") or "none"
                raise DatasetError(
                    f"{path}: no column {column!r} (columns besides prompt: {models});"
                    " choose the models with --strong and --weak"
                )
        rows: list[CorrectnessRow] = []
        for record in reader:
            # The header is line 1 and a quoted cell may span lines, so ask the reader.
            line_no = reader.line_num
            rows.append(
                CorrectnessRow(
                    prompt=record["prompt"],
                    weak_correct=_boolean(record[weak], weak, path, line_no),
                    strong_correct=_boolean(record[strong], strong, path, line_no),
                    source=path.stem,
                )
            )
    return rows


def _boolean(value: str | None, column: str, path: Path, line_no: int) -> bool:
    text = (value or "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise DatasetError(f"{path}:{line_no}: column {column!r} holds {value!r}, not True/False")


def _jsonl_records(path: Path) -> Iterator[tuple[int, dict[str, object]]]:
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    with path.open(encoding="utf-8") as file:
        for line_no, line in enumerate(file, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path}:{line_no}: not JSON ({exc.msg})") from exc
            if not isinstance(record, dict):
                raise DatasetError(f"{path}:{line_no}: expected a JSON object")
            yield line_no, record


def _field(record: Mapping[str, object], name: str, kind: type[_T], path: Path, line: int) -> _T:
    value = record.get(name)
    if not isinstance(value, kind):
        raise DatasetError(f"{path}:{line}: {name!r} is missing or not a {kind.__name__}")
    return value


def _task_for(
    category: str, table: Mapping[str, TaskType], what: str, path: Path, line_no: int
) -> TaskType:
    try:
        return table[category]
    except KeyError:
        known = ", ".join(sorted(table))
        raise DatasetError(
            f"{path}:{line_no}: {what} {category!r} has no task type (known: {known})"
        ) from None

"""``switchyard routing eval``: the metrics on hand-computed cases, the loaders on small files
written here, and the command with a fake decision in place of the prompt-feature model."""

from __future__ import annotations

import inspect
import json
import random
import typing
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import pytest
from typer.testing import CliRunner

from contracts.features import RequestFeatures, TaskType
from services import cli
from services.router.evaluation import datasets, decision
from services.router.evaluation.datasets import (
    CorrectnessRow,
    DatasetError,
    LabelledPrompt,
    load_arena_hard,
    load_mt_bench,
    load_routellm,
)
from services.router.evaluation.metrics import (
    apgr,
    classification_report,
    latency_summary,
    nearest_rank,
    random_share_for_target,
    routing_quality,
    threshold_curve,
)
from services.router.evaluation.report import thin_curve
from services.router.evaluation.run import (
    WARM_UP_PROMPT,
    evaluate_correctness,
    evaluate_tasks,
)


def row(weak: bool, strong: bool, prompt: str = "p") -> CorrectnessRow:
    return CorrectnessRow(prompt=prompt, weak_correct=weak, strong_correct=strong, source="t")


def mixed_set() -> list[CorrectnessRow]:
    """100 prompts: 40 both right, 40 only strong right, 5 only weak right, 15 both wrong.

    Q_strong = 0.80, Q_weak = 0.45, and the 95% target is 76 correct: 31 more than the weak
    model's 45, which an oracle finds in the 40 prompts only the strong model gets right.
    """
    rows = (
        [row(True, True)] * 40
        + [row(False, True)] * 40
        + [row(True, False)] * 5
        + [row(False, False)] * 15
    )
    random.Random(3).shuffle(rows)
    return rows


def oracle(r: CorrectnessRow) -> float:
    return 1.0 if r.strong_correct and not r.weak_correct else 0.0


def anti_oracle(r: CorrectnessRow) -> float:
    return 1.0 if r.weak_correct and not r.strong_correct else 0.0


# -- the threshold curve ---------------------------------------------------------------------


def test_curve_ends_at_weak_only_and_strong_only_quality() -> None:
    rows = mixed_set()
    scores = [random.Random(i).random() for i in range(len(rows))]
    curve = threshold_curve(scores, rows)
    points = curve.points()
    assert len(points) == 101
    assert (points[0].share_strong, points[0].quality) == (0.0, 0.45)
    assert (points[-1].share_strong, points[-1].quality) == (1.0, 0.80)


def test_curve_sends_highest_scores_strong_first_and_ties_keep_input_order() -> None:
    rows = [row(False, True), row(True, False), row(False, True)]
    # rows 0 and 2 tie; row 0 comes first, then row 2, then row 1.
    curve = threshold_curve([0.5, 0.1, 0.5], rows)
    assert curve.correct_at == (1, 2, 3, 2)


def test_oracle_reaches_the_target_at_the_least_possible_share_and_beats_random() -> None:
    rows = mixed_set()
    quality = routing_quality([oracle(r) for r in rows], rows)
    assert quality.weak_quality == 0.45
    assert quality.strong_quality == 0.80
    assert quality.target_strong_calls == 31  # 76 - 45 gains, one per strong call at best
    assert quality.target_share == 0.31
    assert quality.target_quality == 0.76
    assert quality.cost_saved == pytest.approx(0.69)
    assert quality.target_share < quality.random_target_share


def test_oracle_apgr_is_near_one_when_few_prompts_need_the_strong_model() -> None:
    # 10 prompts only the strong model gets right, 70 both do, 20 neither: the oracle recovers
    # the whole gap by a share of 0.1 and keeps it, so APGR = 0.1 / 2 + 0.9 = 0.95.
    rows = [row(True, True)] * 70 + [row(False, False)] * 20 + [row(False, True)] * 10
    random.Random(4).shuffle(rows)
    quality = routing_quality([oracle(r) for r in rows], rows)
    assert quality.apgr is not None
    assert quality.apgr > 0.9
    assert quality.apgr == pytest.approx(0.95)


def test_anti_oracle_is_worse_than_random() -> None:
    rows = mixed_set()
    quality = routing_quality([anti_oracle(r) for r in rows], rows)
    assert quality.target_share > quality.random_target_share
    assert quality.apgr is not None
    assert quality.apgr < 0.5
    for point in quality.at_shares:
        assert point.quality < point.random_quality


def test_random_baseline_share_and_cost_saved_by_hand() -> None:
    # (0.95 * 0.80 - 0.45) / (0.80 - 0.45) = 0.31 / 0.35 = 31/35.
    assert random_share_for_target(45, 80, Fraction(95, 100)) == Fraction(31, 35)
    rows = mixed_set()
    quality = routing_quality([0.0] * len(rows), rows)
    assert quality.random_target_share == pytest.approx(31 / 35)
    assert quality.random_cost_saved == pytest.approx(4 / 35)


def test_random_baseline_needs_no_strong_calls_when_weak_is_good_enough() -> None:
    assert random_share_for_target(80, 80, Fraction(95, 100)) == 0
    assert random_share_for_target(77, 80, Fraction(95, 100)) == 0
    assert random_share_for_target(60, 50, Fraction(95, 100)) == 0


def test_apgr_of_an_ordering_blind_to_correctness_is_about_half() -> None:
    # A gain every other prompt, all scores tied (so input order): PGR climbs the diagonal in
    # steps of 2/n, each step taken at its first half, which adds 1/(2n) to the diagonal's 1/2.
    rows = [row(False, True), row(True, True)] * 50
    area = apgr(threshold_curve([0.5] * len(rows), rows))
    assert area == Fraction(1, 2) + Fraction(1, 200)


def test_apgr_is_about_half_for_random_scores() -> None:
    rng = random.Random(11)
    rows = [row(rng.random() < 0.5, rng.random() < 0.8) for _ in range(4000)]
    area = apgr(threshold_curve([rng.random() for _ in rows], rows))
    assert area is not None
    assert abs(area - Fraction(1, 2)) < Fraction(5, 100)


def test_apgr_is_undefined_without_a_gap() -> None:
    rows = [row(True, False), row(False, True)]
    quality = routing_quality([1.0, 0.0], rows)
    assert quality.apgr is None


def test_quality_at_a_share_never_exceeds_the_share() -> None:
    rows = [row(False, True)] * 3
    quality = routing_quality([0.0] * 3, rows, shares=[Fraction(1, 2)])
    [point] = quality.at_shares
    assert point.strong_calls == 1  # floor(1.5): the share is a budget
    assert point.quality == pytest.approx(1 / 3)
    assert point.random_quality == pytest.approx(0.5)


def test_curve_refuses_mismatched_or_empty_input() -> None:
    with pytest.raises(ValueError, match="scores"):
        threshold_curve([0.1], [row(True, True), row(True, True)])
    with pytest.raises(ValueError, match="no prompts"):
        threshold_curve([], [])


def test_thin_curve_keeps_both_ends_and_at_most_101_points() -> None:
    rows = mixed_set() * 7  # 700 prompts, 701 points
    thinned = thin_curve(threshold_curve([0.0] * len(rows), rows))
    assert len(thinned) == 101
    assert thinned[0].share_strong == 0.0
    assert thinned[-1].share_strong == 1.0
    assert thinned[50].share_strong == 0.5
    small = thin_curve(threshold_curve([0.0] * 3, [row(True, True)] * 3))
    assert len(small) == 4


# -- classification --------------------------------------------------------------------------


def test_classification_by_hand() -> None:
    gold = ["code", "code", "code", "chat", "chat", "math"]
    predicted = ["code", "code", "chat", "chat", "roleplay", "code"]
    report = classification_report(gold, predicted, order=["chat", "code"])
    assert report.accuracy == pytest.approx(3 / 6)
    scores = {c.label: c for c in report.classes}
    assert [c.label for c in report.classes] == ["chat", "code", "math", "roleplay"]
    # code: 2 right of 3 gold, of 3 predicted -> P = R = F1 = 2/3.
    code = scores["code"]
    assert [code.precision, code.recall, code.f1] == pytest.approx([2 / 3] * 3)
    # chat: 1 right of 2 gold, of 2 predicted -> F1 = 1/2.
    assert scores["chat"].f1 == pytest.approx(1 / 2)
    # math: never predicted -> precision 0 by convention, F1 0.
    assert (scores["math"].precision, scores["math"].f1) == (0.0, 0.0)
    # roleplay is predicted but not gold, so it stays out of the macro average.
    assert report.macro_classes == ("chat", "code", "math")
    assert report.macro_f1 == pytest.approx((1 / 2 + 2 / 3 + 0) / 3)
    assert report.confusion == {
        "chat": {"chat": 1, "code": 0, "math": 0, "roleplay": 1},
        "code": {"chat": 1, "code": 2, "math": 0, "roleplay": 0},
        "math": {"chat": 0, "code": 1, "math": 0, "roleplay": 0},
    }


# -- latency ---------------------------------------------------------------------------------


def test_nearest_rank_percentiles() -> None:
    values = list(range(1, 101))  # 1..100
    random.Random(5).shuffle(values)
    assert nearest_rank(values, 50) == 50
    assert nearest_rank(values, 99) == 99
    assert nearest_rank(values, 100) == 100
    assert nearest_rank([7], 99) == 7
    # n = 5: ranks ceil(2.5) = 3 and ceil(4.95) = 5.
    assert nearest_rank([50, 10, 40, 20, 30], 50) == 30
    assert nearest_rank([50, 10, 40, 20, 30], 99) == 50
    with pytest.raises(ValueError, match="no values"):
        nearest_rank([], 50)


def test_latency_summary_in_milliseconds() -> None:
    summary = latency_summary([1_000_000, 3_000_000, 2_000_000, 10_000_000])
    assert (summary.p50_ms, summary.p99_ms, summary.max_ms) == (2.0, 10.0, 10.0)
    assert summary.decisions == 4


# -- loaders ---------------------------------------------------------------------------------

STRONG = datasets.DEFAULT_STRONG
WEAK = datasets.DEFAULT_WEAK


def write_csv(path: Path, header: Sequence[str], lines: Sequence[str]) -> Path:
    path.write_text(",".join(header) + "\n" + "".join(line + "\n" for line in lines))
    return path


def test_routellm_csv_ignores_response_columns_and_reads_directories(tmp_path: Path) -> None:
    header = ["prompt", WEAK, STRONG, f"{WEAK}_response", f"{STRONG}_response"]
    write_csv(
        tmp_path / "b_gsm8k.csv",
        header,
        ['"Two\nlines, with a comma",True,False," 4\n\nso True","5"', "Plain,False,True,x,y"],
    )
    write_csv(tmp_path / "a_mmlu.csv", ["prompt", WEAK, STRONG], ["Q,False,False"])
    (tmp_path / "notes.txt").write_text("not a csv")
    rows = load_routellm([tmp_path])
    assert rows == [
        CorrectnessRow("Q", weak_correct=False, strong_correct=False, source="a_mmlu"),
        CorrectnessRow("Two\nlines, with a comma", True, False, "b_gsm8k"),
        CorrectnessRow("Plain", False, True, "b_gsm8k"),
    ]


def test_routellm_strong_and_weak_columns_are_chosen_by_name(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "x.csv", ["prompt", "m1", "m2"], ["Q,True,False"])
    [swapped] = load_routellm([path], strong="m1", weak="m2")
    assert (swapped.weak_correct, swapped.strong_correct) == (False, True)


def test_routellm_missing_column_names_it(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "x.csv", ["prompt", WEAK], ["Q,True"])
    with pytest.raises(DatasetError, match=r"no column 'gpt-4-1106-preview'.*--strong"):
        load_routellm([path])


def test_routellm_non_boolean_cell_names_file_and_line(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "x.csv", ["prompt", WEAK, STRONG], ["Q,True,True", "R,yes,True"])
    with pytest.raises(DatasetError, match=r"x\.csv:3: .*'yes'"):
        load_routellm([path])


def test_mt_bench_takes_the_first_turn_and_maps_categories(tmp_path: Path) -> None:
    path = tmp_path / "question.jsonl"
    records = [
        {"question_id": 1, "category": "math", "turns": ["What is 2+2?", "And 3+3?"]},
        {"question_id": 2, "category": "humanities", "turns": ["Who was Kant?"]},
    ]
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n\n")
    assert load_mt_bench(path) == [
        LabelledPrompt("What is 2+2?", TaskType.REASONING, "math", "question"),
        LabelledPrompt("Who was Kant?", TaskType.KNOWLEDGE, "humanities", "question"),
    ]


def test_arena_hard_labels_by_subcategory(tmp_path: Path) -> None:
    path = tmp_path / "arena.jsonl"
    record = {"uid": "u1", "category": "hard_prompt", "subcategory": "coding", "prompt": "Zig?"}
    path.write_text(json.dumps(record) + "\n")
    assert load_arena_hard(path) == [LabelledPrompt("Zig?", TaskType.CODE, "coding", "arena")]


def test_unknown_category_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps({"question_id": 1, "category": "poetry", "turns": ["x"]}) + "\n")
    with pytest.raises(DatasetError, match=r"q\.jsonl:1: MT-Bench category 'poetry'"):
        load_mt_bench(path)


def test_mappings_only_name_text_tasks() -> None:
    for table in (datasets.MT_BENCH_TASKS, datasets.ARENA_HARD_TASKS):
        assert not set(table.values()) & {TaskType.VISION, TaskType.TOOL_USE}


# -- running the decision --------------------------------------------------------------------


class FakeDecision:
    """Answers from a table and records what it was asked."""

    def __init__(self, difficulty: dict[str, float], task: dict[str, TaskType]) -> None:
        self.difficulty = difficulty
        self.task = task
        self.asked: list[str] = []

    def __call__(self, text: str) -> RequestFeatures:
        self.asked.append(text)
        return RequestFeatures(
            prompt_tokens=len(text.split()),
            task=self.task.get(text, TaskType.CHAT),
            difficulty=self.difficulty.get(text, 0.0),
        )


def test_evaluate_correctness_warms_up_once_then_times_every_prompt() -> None:
    rows = [row(False, True, "hard"), row(True, True, "easy")]
    decide = FakeDecision({"hard": 0.9, "easy": 0.1}, {})
    evaluation = evaluate_correctness(rows, decide)
    assert decide.asked == [WARM_UP_PROMPT, "hard", "easy"]
    assert evaluation.latency.decisions == 2
    assert evaluation.routing.curve.correct_at == (1, 2, 2)
    assert evaluation.sources == {"t": 2}


def test_evaluate_tasks_compares_the_decided_task_with_the_label() -> None:
    rows = [
        LabelledPrompt("a", TaskType.CODE, "coding", "s"),
        LabelledPrompt("b", TaskType.REASONING, "math", "s"),
    ]
    evaluation = evaluate_tasks(rows, FakeDecision({}, {"a": TaskType.CODE}))
    report = evaluation.classification
    assert report.accuracy == 0.5
    assert report.confusion["reasoning"] == {"code": 0, "reasoning": 0, "chat": 1}
    # TaskType's order, so the table reads the same from run to run.
    assert [c.label for c in report.classes] == ["code", "reasoning", "chat"]


# -- the command -----------------------------------------------------------------------------


@pytest.fixture
def fake_prompt_features(monkeypatch: pytest.MonkeyPatch) -> FakeDecision:
    """Stand in for the real decision, where the command takes it from."""
    decide = FakeDecision({"hard": 0.9}, {"Zig?": TaskType.CODE})
    monkeypatch.setattr(decision, "full_decision", lambda: decide)
    return decide


def test_cli_prints_routing_json(fake_prompt_features: FakeDecision, tmp_path: Path) -> None:
    write_csv(tmp_path / "set.csv", ["prompt", WEAK, STRONG], ["hard,False,True", "easy,True,True"])
    result = CliRunner().invoke(
        cli.app, ["routing", "eval", "--format", "routellm", str(tmp_path), "--json"]
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert list(body) == [
        "kind",
        "format",
        "strong",
        "weak",
        "prompts",
        "sources",
        "weak_quality",
        "strong_quality",
        "apgr",
        "target",
        "quality_at_share",
        "curve",
        "latency_ms",
    ]
    assert body["prompts"] == 2
    assert (body["weak_quality"], body["strong_quality"]) == (0.5, 1.0)
    assert body["target"]["router"] == {"share_strong": 0.5, "cost_saved": 0.5, "quality": 1.0}
    assert body["curve"] == [
        {"share_strong": 0.0, "quality": 0.5},
        {"share_strong": 0.5, "quality": 1.0},
        {"share_strong": 1.0, "quality": 1.0},
    ]
    assert set(body["latency_ms"]) == {"decisions", "p50", "p99", "max"}


def test_cli_prints_task_json_and_tables(
    fake_prompt_features: FakeDecision, tmp_path: Path
) -> None:
    path = tmp_path / "arena.jsonl"
    path.write_text(
        json.dumps({"uid": "1", "category": "c", "subcategory": "coding", "prompt": "Zig?"})
    )
    as_json = CliRunner().invoke(
        cli.app, ["routing", "eval", "--format", "arena-hard", str(path), "--json"]
    )
    assert as_json.exit_code == 0, as_json.output
    body = json.loads(as_json.stdout)
    assert (body["kind"], body["accuracy"], body["macro_f1"]) == ("task", 1.0, 1.0)
    assert body["confusion"] == {"code": {"code": 1}}
    table = CliRunner().invoke(cli.app, ["routing", "eval", "--format", "arena-hard", str(path)])
    assert table.exit_code == 0, table.output
    assert "macro-F1" in table.stdout


def test_cli_reports_a_bad_file_with_exit_code_2(
    fake_prompt_features: FakeDecision, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "x.csv", ["prompt", "a", "b"], ["Q,True,True"])
    result = CliRunner().invoke(cli.app, ["routing", "eval", "--format", "routellm", str(path)])
    assert result.exit_code == 2
    assert "switchyard routing eval:" in result.stderr
    assert "no column" in result.stderr


def test_cli_format_choices_and_defaults_match_the_loaders() -> None:
    assert typing.get_args(cli._EvalFormat) == typing.get_args(datasets.DatasetFormat)
    options = inspect.signature(cli.routing_eval).parameters
    assert options["strong"].default == datasets.DEFAULT_STRONG
    assert options["weak"].default == datasets.DEFAULT_WEAK

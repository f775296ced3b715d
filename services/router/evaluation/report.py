"""How ``switchyard routing eval`` prints its results: rich tables for people, and a JSON
object with stable keys for ``--json`` (scripts and dashboards compare runs by these keys).

Numbers in JSON are rounded to what a comparison between runs can use: qualities and scores
to 4 decimals, milliseconds to 3.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table

from services.router.evaluation.metrics import CurvePoint, LatencySummary, ThresholdCurve

if TYPE_CHECKING:
    # run.py imports this module to print what it computed; the types are only annotations.
    from services.router.evaluation.run import CorrectnessEvaluation, TaskEvaluation

# The JSON curve is thinned to this many points, evenly by share of strong calls: enough to
# draw it, without a point per prompt for a set of thousands.
CURVE_POINTS = 101

_SCORE_DIGITS = 4
_MS_DIGITS = 3


def correctness_json(
    evaluation: CorrectnessEvaluation, dataset_format: str, *, strong: str, weak: str
) -> dict[str, object]:
    routing = evaluation.routing
    return {
        "kind": "routing",
        "format": dataset_format,
        "strong": strong,
        "weak": weak,
        "prompts": routing.curve.prompts,
        "sources": dict(evaluation.sources),
        "weak_quality": _score(routing.weak_quality),
        "strong_quality": _score(routing.strong_quality),
        "apgr": None if routing.apgr is None else _score(routing.apgr),
        "target": {
            "fraction_of_strong_quality": float(routing.target),
            "router": {
                "share_strong": _score(routing.target_share),
                "cost_saved": _score(routing.cost_saved),
                "quality": _score(routing.target_quality),
            },
            "random": {
                "share_strong": _score(routing.random_target_share),
                "cost_saved": _score(routing.random_cost_saved),
            },
        },
        "quality_at_share": [
            {
                "share_strong": _score(point.share_strong),
                "strong_calls": point.strong_calls,
                "quality": _score(point.quality),
                "random_quality": _score(point.random_quality),
            }
            for point in routing.at_shares
        ],
        "curve": [
            {"share_strong": _score(p.share_strong), "quality": _score(p.quality)}
            for p in thin_curve(routing.curve)
        ],
        "latency_ms": _latency_json(evaluation.latency),
    }


def task_json(evaluation: TaskEvaluation, dataset_format: str) -> dict[str, object]:
    report = evaluation.classification
    return {
        "kind": "task",
        "format": dataset_format,
        "prompts": report.total,
        "sources": dict(evaluation.sources),
        "accuracy": _score(report.accuracy),
        "macro_f1": _score(report.macro_f1),
        "macro_f1_classes": list(report.macro_classes),
        "classes": {
            c.label: {
                "support": c.support,
                "predicted": c.predicted,
                "precision": _score(c.precision),
                "recall": _score(c.recall),
                "f1": _score(c.f1),
            }
            for c in report.classes
        },
        "confusion": {gold: dict(row) for gold, row in report.confusion.items()},
        "latency_ms": _latency_json(evaluation.latency),
    }


def correctness_tables(
    evaluation: CorrectnessEvaluation, dataset_format: str, *, strong: str, weak: str
) -> list[Table]:
    routing = evaluation.routing
    target = f"{float(routing.target):.0%}"
    summary = Table(
        title=f"Strong/weak routing on {dataset_format} ({routing.curve.prompts} prompts)",
        caption=(
            f"strong {strong}: quality {routing.strong_quality:.1%}; "
            f"weak {weak}: quality {routing.weak_quality:.1%}"
        ),
    )
    summary.add_column("measure")
    summary.add_column("router", justify="right")
    summary.add_column("random", justify="right")
    summary.add_row(
        f"strong calls for {target} of strong quality",
        f"{routing.target_share:.1%}",
        f"{routing.random_target_share:.1%}",
    )
    summary.add_row(
        "cost saved (calls kept off strong)",
        f"{routing.cost_saved:.1%}",
        f"{routing.random_cost_saved:.1%}",
    )
    for point in routing.at_shares:
        summary.add_row(
            f"quality at {point.share_strong:.0%} strong calls",
            f"{point.quality:.1%}",
            f"{point.random_quality:.1%}",
        )
    # Random routing recovers the gap linearly in the share of strong calls: APGR 0.5.
    summary.add_row("APGR", _optional(routing.apgr), "0.500" if routing.apgr is not None else "-")
    return [summary, _latency_table(evaluation.latency)]


def task_tables(evaluation: TaskEvaluation, dataset_format: str) -> list[Table]:
    report = evaluation.classification
    classes = Table(
        title=f"Task labels on {dataset_format} ({report.total} prompts)",
        caption=(
            f"accuracy {report.accuracy:.1%}; macro-F1 {report.macro_f1:.3f}"
            f" over the {len(report.macro_classes)} gold classes"
        ),
    )
    classes.add_column("task")
    for column in ("gold", "predicted", "precision", "recall", "F1"):
        classes.add_column(column, justify="right")
    for c in report.classes:
        classes.add_row(
            c.label,
            str(c.support),
            str(c.predicted),
            f"{c.precision:.3f}",
            f"{c.recall:.3f}" if c.support else "-",
            f"{c.f1:.3f}" if c.support else "-",
        )
    labels = [c.label for c in report.classes]
    confusion = Table(title="Confusion (rows: gold, columns: predicted)")
    confusion.add_column("gold")
    for label in labels:
        confusion.add_column(label, justify="right")
    for gold, row in report.confusion.items():
        confusion.add_row(gold, *(str(row[label]) if row[label] else "." for label in labels))
    return [classes, confusion, _latency_table(evaluation.latency)]


def thin_curve(curve: ThresholdCurve, max_points: int = CURVE_POINTS) -> list[CurvePoint]:
    """At most ``max_points`` points of the curve, evenly spaced by share and always with both
    ends (the point nearest each of ``max_points`` evenly spaced shares, rounding half up)."""
    n = curve.prompts
    if n + 1 <= max_points:
        strong_calls: list[int] = list(range(n + 1))
    else:
        steps = max_points - 1
        strong_calls = sorted({(2 * j * n + steps) // (2 * steps) for j in range(max_points)})
    return [CurvePoint(k / n, curve.quality(k)) for k in strong_calls]


def _latency_table(latency: LatencySummary) -> Table:
    table = Table(
        title="Decision time", caption=f"{latency.decisions} decisions, after one warm-up"
    )
    for column in ("p50 ms", "p99 ms", "max ms"):
        table.add_column(column, justify="right")
    table.add_row(*(f"{ms:.3f}" for ms in (latency.p50_ms, latency.p99_ms, latency.max_ms)))
    return table


def _latency_json(latency: LatencySummary) -> dict[str, object]:
    return {
        "decisions": latency.decisions,
        "p50": round(latency.p50_ms, _MS_DIGITS),
        "p99": round(latency.p99_ms, _MS_DIGITS),
        "max": round(latency.max_ms, _MS_DIGITS),
    }


def _score(value: float) -> float:
    return round(value, _SCORE_DIGITS)


def _optional(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"

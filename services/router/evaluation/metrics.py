"""The numbers ``switchyard routing eval`` reports, as pure functions: the strong/weak threshold
curve and what is read off it (cost saved at a quality target, APGR), classification scores
for the task label, and latency percentiles.

Written by hand rather than taken from scikit-learn, which is a training-time dependency only.
The curve is kept in integer counts and every comparison against a target is made in exact
fractions: "reaches 95% of strong-only quality" must not flip on a rounding error.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Protocol

# The quality target of RouteLLM's headline numbers: 95% of strong-only quality.
QUALITY_TARGET = Fraction(95, 100)
# Shares of strong calls at which the report shows quality side by side with random routing.
REPORTED_SHARES: tuple[Fraction, ...] = (Fraction(1, 5), Fraction(1, 2), Fraction(4, 5))


class GradedPrompt(Protocol):
    """Whether each model answered a prompt right (``datasets.CorrectnessRow`` is one)."""

    @property
    def weak_correct(self) -> bool: ...

    @property
    def strong_correct(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class CurvePoint:
    share_strong: float
    quality: float


@dataclass(frozen=True, slots=True)
class ThresholdCurve:
    """Quality as more of the highest-scored prompts go to the strong model.

    ``correct_at[k]`` is how many prompts are answered right when the ``k`` highest-scored go
    to the strong model and the rest to the weak one, for every ``k`` in ``0..prompts``; so
    ``correct_at[0]`` is the weak model's count and ``correct_at[-1]`` the strong model's.
    """

    prompts: int
    correct_at: tuple[int, ...]

    @property
    def weak_correct(self) -> int:
        return self.correct_at[0]

    @property
    def strong_correct(self) -> int:
        return self.correct_at[-1]

    def quality(self, strong_calls: int) -> float:
        return self.correct_at[strong_calls] / self.prompts

    def points(self) -> list[CurvePoint]:
        return [CurvePoint(k / self.prompts, self.quality(k)) for k in range(len(self.correct_at))]


@dataclass(frozen=True, slots=True)
class QualityAtShare:
    """Router and random-routing quality when at most ``share_strong`` of calls go strong."""

    share_strong: float  # the share asked for
    strong_calls: int  # floor(share * prompts): the share is a budget not to exceed
    quality: float
    random_quality: float


@dataclass(frozen=True, slots=True)
class RoutingQuality:
    """What a difficulty score is worth as a strong/weak router on one correctness set."""

    curve: ThresholdCurve
    weak_quality: float
    strong_quality: float
    target: Fraction  # of strong-only quality
    # The fewest strong calls whose quality reaches ``target * strong_quality``, and for
    # random routing the share of strong calls whose expected quality does.
    target_strong_calls: int
    random_target_share: float
    # Average performance gap recovered (Ong et al. 2024); None when both models score the
    # same, since there is no gap to recover.
    apgr: float | None
    at_shares: tuple[QualityAtShare, ...]

    @property
    def target_share(self) -> float:
        return self.target_strong_calls / self.curve.prompts

    @property
    def target_quality(self) -> float:
        """The router's quality at ``target_share`` (at least the target, maybe above it)."""
        return self.curve.quality(self.target_strong_calls)

    @property
    def cost_saved(self) -> float:
        return 1.0 - self.target_share

    @property
    def random_cost_saved(self) -> float:
        return 1.0 - self.random_target_share


def threshold_curve(scores: Sequence[float], rows: Sequence[GradedPrompt]) -> ThresholdCurve:
    """Send prompts to the strong model in order of descending score, one at a time.

    Ties keep the input order (a stable sort on the negated score), so a run is reproducible;
    the price is that a scorer with many tied scores is judged partly on the dataset's order.
    """
    if len(scores) != len(rows):
        raise ValueError(f"{len(scores)} scores for {len(rows)} prompts")
    if not rows:
        raise ValueError("no prompts to evaluate")
    if any(math.isnan(score) for score in scores):
        raise ValueError("a score is NaN, so prompts cannot be ranked")
    order = sorted(range(len(rows)), key=lambda i: -scores[i])
    correct = sum(row.weak_correct for row in rows)
    correct_at = [correct]
    for i in order:
        correct += rows[i].strong_correct - rows[i].weak_correct
        correct_at.append(correct)
    return ThresholdCurve(prompts=len(rows), correct_at=tuple(correct_at))


def routing_quality(
    scores: Sequence[float],
    rows: Sequence[GradedPrompt],
    *,
    target: Fraction = QUALITY_TARGET,
    shares: Sequence[Fraction] = REPORTED_SHARES,
) -> RoutingQuality:
    curve = threshold_curve(scores, rows)
    n = curve.prompts
    weak, strong = curve.weak_correct, curve.strong_correct
    return RoutingQuality(
        curve=curve,
        weak_quality=weak / n,
        strong_quality=strong / n,
        target=target,
        target_strong_calls=strong_calls_for_target(curve, target),
        random_target_share=float(random_share_for_target(weak, strong, target)),
        apgr=_optional_float(apgr(curve)),
        at_shares=tuple(_quality_at(curve, share) for share in shares),
    )


def strong_calls_for_target(curve: ThresholdCurve, target: Fraction) -> int:
    """The fewest strong calls whose quality reaches ``target`` of strong-only quality.

    The curve need not rise monotonically, so this is the first point that reaches the target,
    not a bisection. It always exists: sending everything strong is strong-only quality.
    """
    # correct / n >= target * strong / n, cleared of fractions.
    needed = target.numerator * curve.strong_correct
    return next(
        k for k, correct in enumerate(curve.correct_at) if correct * target.denominator >= needed
    )


def random_share_for_target(weak_correct: int, strong_correct: int, target: Fraction) -> Fraction:
    """The share of strong calls at which random routing reaches the target, in expectation.

    Sending each prompt to the strong model with probability ``s`` has expected quality
    ``s * Q_strong + (1 - s) * Q_weak``; solving for ``target * Q_strong`` gives
    ``(target * Q_strong - Q_weak) / (Q_strong - Q_weak)``, clipped to [0, 1]. Counts stand in
    for qualities (they share the denominator), which keeps the answer exact.
    """
    if not 0 < target <= 1:
        raise ValueError(f"target {target} is outside (0, 1]")
    goal = target * strong_correct
    if weak_correct >= goal:
        return Fraction(0)  # the weak model alone is good enough (this covers Q_strong <= Q_weak)
    share = (goal - weak_correct) / (strong_correct - weak_correct)
    return min(share, Fraction(1))


def apgr(curve: ThresholdCurve) -> Fraction | None:
    """Average performance gap recovered, as RouteLLM (Ong et al. 2024) defines it.

    ``PGR(s) = (quality(s) - Q_weak) / (Q_strong - Q_weak)``, and APGR is the area under PGR
    over the share of strong calls from 0 to 1. RouteLLM approximates the area on evenly spaced
    shares; here it is the trapezoid rule over every point of the curve (shares k/n), exactly.
    """
    gap = curve.strong_correct - curve.weak_correct
    if gap == 0:
        return None
    n, weak = curve.prompts, curve.weak_correct
    # Each of the n trapezoids is 1/n wide with parallel sides PGR(k-1) and PGR(k); pulling
    # the common 1/(2 n gap) out of the sum leaves integers.
    twice_gains = sum(
        (before - weak) + (after - weak)
        for before, after in zip(curve.correct_at, curve.correct_at[1:], strict=False)
    )
    return Fraction(twice_gains, 2 * n * gap)


def _quality_at(curve: ThresholdCurve, share: Fraction) -> QualityAtShare:
    n = curve.prompts
    strong_calls = math.floor(share * n)
    random_quality = share * curve.strong_correct / n + (1 - share) * curve.weak_correct / n
    return QualityAtShare(
        share_strong=float(share),
        strong_calls=strong_calls,
        quality=curve.quality(strong_calls),
        random_quality=float(random_quality),
    )


def _optional_float(value: Fraction | None) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True, slots=True)
class ClassScores:
    label: str
    support: int  # gold examples of the class
    predicted: int  # predictions of the class
    correct: int
    precision: float
    recall: float
    f1: float


@dataclass(frozen=True, slots=True)
class ClassificationReport:
    total: int
    correct: int
    # Every class seen, gold or predicted, in the order the caller gave (unlisted ones last).
    classes: tuple[ClassScores, ...]
    # Macro-F1 averages over the classes present in the gold labels only: a class the data
    # never asks for would add an F1 of 0 for predictions it could never get right, and so
    # would punish a model for the dataset's coverage rather than for its mistakes.
    macro_classes: tuple[str, ...]
    macro_f1: float
    # confusion[gold][predicted] = count: a row per gold class, a column per class seen (so a
    # predicted class the data never asks for has its column too).
    confusion: Mapping[str, Mapping[str, int]]

    @property
    def accuracy(self) -> float:
        return self.correct / self.total


def classification_report(
    gold: Sequence[str], predicted: Sequence[str], *, order: Sequence[str] = ()
) -> ClassificationReport:
    """Accuracy, per-class precision/recall/F1, macro-F1 and the confusion matrix.

    A class never predicted has precision 0 (scikit-learn's ``zero_division=0``), and F1 is 0
    when precision and recall both are.
    """
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold labels for {len(predicted)} predictions")
    if not gold:
        raise ValueError("no labels to score")
    pairs = Counter(zip(gold, predicted, strict=True))
    support = Counter(gold)
    predictions = Counter(predicted)
    rank = {label: i for i, label in enumerate(order)}
    labels = sorted(support.keys() | predictions.keys(), key=lambda c: (rank.get(c, len(rank)), c))
    classes = tuple(
        _class_scores(label, support[label], predictions[label], pairs[label, label])
        for label in labels
    )
    macro = tuple(c.label for c in classes if c.support)
    confusion = {g: {p: pairs[g, p] for p in labels} for g in labels if support[g]}
    return ClassificationReport(
        total=len(gold),
        correct=sum(pairs[label, label] for label in labels),
        classes=classes,
        macro_classes=macro,
        macro_f1=sum(c.f1 for c in classes if c.support) / len(macro),
        confusion=confusion,
    )


def _class_scores(label: str, support: int, predicted: int, correct: int) -> ClassScores:
    precision = correct / predicted if predicted else 0.0
    recall = correct / support if support else 0.0
    # 2pr/(p+r) written over counts: 2c / (support + predicted).
    f1 = 2 * correct / (support + predicted) if correct else 0.0
    return ClassScores(label, support, predicted, correct, precision, recall, f1)


@dataclass(frozen=True, slots=True)
class LatencySummary:
    decisions: int
    p50_ms: float
    p99_ms: float
    max_ms: float


def nearest_rank(values: Sequence[int], percentile: int | Fraction) -> int:
    """The nearest-rank percentile: the smallest value with at least ``percentile``% of the
    values at or below it, so always one of the values, never an interpolation."""
    if not values:
        raise ValueError("no values")
    if not 0 < percentile <= 100:
        raise ValueError(f"percentile {percentile} is outside (0, 100]")
    rank = math.ceil(Fraction(percentile) * len(values) / 100)  # 1-based
    return sorted(values)[rank - 1]


def latency_summary(durations_ns: Sequence[int]) -> LatencySummary:
    return LatencySummary(
        decisions=len(durations_ns),
        p50_ms=nearest_rank(durations_ns, 50) / 1e6,
        p99_ms=nearest_rank(durations_ns, 99) / 1e6,
        max_ms=max(durations_ns) / 1e6,
    )

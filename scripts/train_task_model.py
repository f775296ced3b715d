"""Train the text model of automatic model choice (``services/common/task_model.py``) and write
``services/common/data/task_model.npz``.

    uv run --group train python scripts/train_task_model.py [--compare] [--check]

Data, and only this data (``../shared/eval/SOURCES.md`` declares the rest a hold-out):

- task: ``scripts/routing_data/*.jsonl``, prompts this project wrote and labelled;
- difficulty: the RouteLLM MMLU correctness files whose names sort before ``mmlu_high_school``
  (the development split), label "the weak model answered wrongly".

Every figure printed is cross-validated on that data: the task model by stratified folds, the
difficulty model by folds that keep each MMLU subject whole (``GroupKFold``), since the hold-out
subjects are ones the model never saw. ``--compare`` adds word-embedding features (``wordllama``)
and prints both side by side. ``--check`` trains, compares with the shipped file and fails if
they differ (the model is reproducible from the repository).

scikit-learn is a training-time dependency only (the ``train`` group); the services read the
weights with numpy.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import sparse
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold, StratifiedKFold

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from contracts.features import TEXT_TASKS  # noqa: E402
from services.common.task_model import (  # noqa: E402
    DENSE_FEATURES,
    HASH_DIM,
    _embedder,
    featurize,
    window,
)

TASK_DATA = REPO / "scripts" / "routing_data"
EVAL_DIR = REPO.parent / "shared" / "eval"
MMLU_DIR = EVAL_DIR / "routellm" / "mmlu"
DEV_SPLIT_BEFORE = "mmlu_high_school"
WEAK = "mistralai/Mixtral-8x7B-Instruct-v0.1"
STRONG = "gpt-4-1106-preview"
OUTPUT = REPO / "services" / "common" / "data" / "task_model.npz"
SEED = 7

Matrix = Any  # scipy ships no types


def task_rows() -> tuple[list[str], list[str]]:
    texts: list[str] = []
    labels: list[str] = []
    known = {t.value for t in TEXT_TASKS}
    for path in sorted(TASK_DATA.glob("*.jsonl")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            row = json.loads(line)
            if row["task"] not in known:
                raise SystemExit(f"{path.name}:{n}: unknown task {row['task']!r}")
            texts.append(row["prompt"])
            labels.append(row["task"])
    return texts, labels


def difficulty_rows() -> tuple[list[str], npt.NDArray[np.int64], npt.NDArray[np.bool_], list[str]]:
    """Prompts, weak wrong, strong correct, and subject of the development split."""
    texts: list[str] = []
    weak_wrong: list[int] = []
    strong_right: list[bool] = []
    subjects: list[str] = []
    for path in sorted(MMLU_DIR.glob("mmlu_*.csv")):
        if path.name >= DEV_SPLIT_BEFORE:
            continue  # the hold-out: never read for training
        with path.open(newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                texts.append(row["prompt"])
                weak_wrong.append(int(row[WEAK] != "True"))
                strong_right.append(row[STRONG] == "True")
                subjects.append(path.stem)
    return texts, np.array(weak_wrong), np.array(strong_right), subjects


def hashed_matrix(texts: Sequence[str]) -> Matrix:
    """The features of ``featurize`` as one sparse matrix: hashed columns, then dense ones."""
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    for i, text in enumerate(texts):
        f = featurize(text)
        weight = 1.0 / np.sqrt(max(len(f.indices), 1))
        rows.extend([i] * len(f.indices))
        cols.extend(int(c) for c in f.indices)
        vals.extend([weight] * len(f.indices))
        rows.extend([i] * len(f.dense))
        cols.extend(range(HASH_DIM, HASH_DIM + len(f.dense)))
        vals.extend(float(v) for v in f.dense)
    shape = (len(texts), HASH_DIM + len(DENSE_FEATURES))
    return sparse.csr_matrix((vals, (rows, cols)), shape=shape)


def embedding_matrix(texts: Sequence[str]) -> Matrix:
    embed = _embedder()
    return sparse.csr_matrix(np.vstack([embed(window(t)) for t in texts]))


def features_matrix(texts: Sequence[str], *, embedding: bool) -> Matrix:
    hashed = hashed_matrix(texts)
    return sparse.hstack([hashed, embedding_matrix(texts)]).tocsr() if embedding else hashed


def evaluate_tasks(x: Matrix, labels: list[str], c: float) -> float:
    y = np.array(labels)
    hits = 0
    for train, test in StratifiedKFold(5, shuffle=True, random_state=SEED).split(x, y):
        model = LogisticRegression(C=c, max_iter=3000).fit(x[train], y[train])
        hits += int((model.predict(x[test]) == y[test]).sum())
    return hits / len(y)


def routed_quality(
    scores: npt.NDArray[np.float64],
    weak_wrong: npt.NDArray[np.int64],
    strong: npt.NDArray[np.bool_],
) -> tuple[float, float]:
    """Cost saved at 95% of the strong model's quality, and APGR, over the scores' order."""
    weak = 1 - weak_wrong
    order = np.argsort(-scores, kind="stable")
    n = len(scores)
    gain = (strong[order].astype(float) - weak[order]).cumsum()
    quality = (weak.sum() + np.concatenate([[0.0], gain])) / n
    q_weak, q_strong = weak.mean(), strong.mean()
    reach = np.nonzero(quality >= 0.95 * q_strong)[0]
    saved = 1 - reach[0] / n if len(reach) else 0.0
    pgr = (quality - q_weak) / (q_strong - q_weak)
    apgr = float(np.trapezoid(pgr, dx=1 / n))
    return float(saved), apgr


def outcome_classes(
    weak_wrong: npt.NDArray[np.int64], strong: npt.NDArray[np.bool_]
) -> npt.NDArray[np.int64]:
    """0: the weak model right where the strong one is wrong; 1: both alike; 2: the weak model
    wrong where the strong one is right (``TaskModel``'s difficulty classes, in order)."""
    weak_right = weak_wrong == 0
    return np.where(~weak_right & strong, 2, np.where(weak_right & ~strong, 0, 1))


def difficulty_scores(model: LogisticRegression, x: Matrix) -> npt.NDArray[np.float64]:
    p = model.predict_proba(x)
    return np.asarray((1 + p[:, 2] - p[:, 0]) / 2)


def evaluate_difficulty(
    x: Matrix,
    weak_wrong: npt.NDArray[np.int64],
    strong: npt.NDArray[np.bool_],
    subjects: list[str],
    c: float,
) -> tuple[float, float, float]:
    labels = outcome_classes(weak_wrong, strong)
    scores = np.zeros(len(weak_wrong))
    for train, test in GroupKFold(6).split(x, labels, subjects):
        model = LogisticRegression(C=c, max_iter=3000).fit(x[train], labels[train])
        scores[test] = difficulty_scores(model, x[test])
    saved, apgr = routed_quality(scores, weak_wrong, strong)
    return float(roc_auc_score(labels == 2, scores)), saved, apgr


def dense_range(x: Matrix) -> npt.NDArray[np.float32]:
    """Each dense feature's lowest and highest value in the training rows (2 x features): the
    services clip to it, so a text unlike any trained on (a 400 KB document, a page of blank
    lines) cannot push a score past anything the model learned from."""
    dense = x[:, HASH_DIM : HASH_DIM + len(DENSE_FEATURES)].toarray()
    return np.vstack([dense.min(axis=0), dense.max(axis=0)]).astype(np.float32)


def split(model: LogisticRegression, name: str) -> dict[str, npt.NDArray[np.float32]]:
    coef = model.coef_.astype(np.float32)
    dense_end = HASH_DIM + len(DENSE_FEATURES)
    embedding = coef[:, dense_end:]
    if embedding.shape[1] == 0:
        embedding = np.zeros((coef.shape[0], 0), dtype=np.float32)
    return {
        f"{name}_w": coef[:, :HASH_DIM],
        f"{name}_dense": coef[:, HASH_DIM:dense_end],
        f"{name}_emb": embedding,
        f"{name}_b": model.intercept_.astype(np.float32),
    }


# Chosen by the cross-validation of ``--compare`` (the README has the figures).
TASK_C = 8.0
TASK_EMBEDDING = True
DIFFICULTY_C = 2.0
DIFFICULTY_EMBEDDING = True


def train() -> dict[str, npt.NDArray[np.float32]]:
    texts, labels = task_rows()
    task_matrix = features_matrix(texts, embedding=TASK_EMBEDDING)
    task = LogisticRegression(C=TASK_C, max_iter=5000).fit(task_matrix, labels)
    d_texts, weak_wrong, strong, _ = difficulty_rows()
    # MMLU holds exam questions only. Our own small-talk prompts join as "both alike": a
    # greeting is answered as well by a cheap model as by a strong one. Without them the model
    # has never seen one, and rates "hi there" harder than a proof.
    small_talk = [t for t, label in zip(texts, labels, strict=True) if label == "chat"]
    d_matrix = features_matrix(d_texts, embedding=DIFFICULTY_EMBEDDING)
    d_train = sparse.vstack(
        [d_matrix, features_matrix(small_talk, embedding=DIFFICULTY_EMBEDDING)]
    ).tocsr()
    difficulty = LogisticRegression(C=DIFFICULTY_C, max_iter=5000).fit(
        d_train,
        np.concatenate([outcome_classes(weak_wrong, strong), np.ones(len(small_talk), int)]),
    )
    assert list(difficulty.classes_) == [0, 1, 2]
    # The raw score's percentiles over the MMLU development prompts: difficulty is reported as
    # "harder than this share of them", which reads better than a margin of probabilities.
    quantiles = np.quantile(difficulty_scores(difficulty, d_matrix), np.linspace(0, 1, 101))
    return {
        "task_labels": np.array([str(c) for c in task.classes_]),
        **split(task, "task"),
        "task_dense_range": dense_range(task_matrix),
        **split(difficulty, "difficulty"),
        "difficulty_dense_range": dense_range(d_train),
        "difficulty_quantiles": quantiles.astype(np.float32),
    }


def timed(name: str, build: Callable[[Sequence[str]], Matrix], texts: Sequence[str]) -> Matrix:
    start = time.perf_counter()
    matrix = build(texts)
    per = (time.perf_counter() - start) / max(len(texts), 1) * 1e3
    print(f"  {name}: {per:.3f} ms a prompt to featurize")
    return matrix


def compare() -> None:
    texts, labels = task_rows()
    d_texts, weak_wrong, strong, subjects = difficulty_rows()
    print(f"task data: {len(texts)} prompts; difficulty data: {len(d_texts)} MMLU dev prompts")
    print(f"  weak-only quality {1 - weak_wrong.mean():.3f}, strong-only {strong.mean():.3f}")
    hashed_t = timed("hashed", hashed_matrix, texts)
    hashed_d = hashed_matrix(d_texts)
    emb_t = timed("wordllama", embedding_matrix, texts)
    emb_d = embedding_matrix(d_texts)
    lengths = sparse.csr_matrix(np.log1p([[len(t)] for t in d_texts]))
    variants = {
        "hashed": (hashed_t, hashed_d),
        "wordllama": (emb_t, emb_d),
        "hashed+wordllama": (
            sparse.hstack([hashed_t, emb_t]).tocsr(),
            sparse.hstack([hashed_d, emb_d]).tocsr(),
        ),
    }
    print("task accuracy (5-fold):")
    for name, (x, _) in variants.items():
        for c in (2.0, 4.0, 8.0):
            print(f"  {name:18} C={c:<5} {evaluate_tasks(x, labels, c):.3f}", flush=True)
    print("difficulty (folds keep subjects whole): AUC of strong wins, cost saved at 95%, APGR")
    auc, saved, apgr = evaluate_difficulty(lengths, weak_wrong, strong, subjects, 1.0)
    print(f"  {'length only':18}         {auc:.3f} {saved:.3f} {apgr:.3f}")
    for name, (_, x) in variants.items():
        for c in (0.5, 2.0, 8.0):
            auc, saved, apgr = evaluate_difficulty(x, weak_wrong, strong, subjects, c)
            print(f"  {name:18} C={c:<5} {auc:.3f} {saved:.3f} {apgr:.3f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--compare", action="store_true", help="cross-validate the variants")
    parser.add_argument("--check", action="store_true", help="fail if the shipped file differs")
    args = parser.parse_args()
    if args.compare:
        compare()
        return
    arrays = train()
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
    if args.check:
        with np.load(OUTPUT) as shipped:
            same = all(
                np.allclose(shipped[k], v, atol=1e-5)
                if v.dtype != np.str_
                else (shipped[k] == v).all()
                for k, v in arrays.items()
            )
        raise SystemExit(0 if same else "the shipped task model differs from a fresh training")
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_bytes(buffer.getvalue())
    print(f"wrote {OUTPUT.relative_to(REPO)} ({len(buffer.getvalue()) // 1024} KiB)")


if __name__ == "__main__":
    main()

"""The text model of automatic model choice: what task a prompt asks for, and how likely a cheap
model is to get it wrong.

Two linear models over one set of features, trained offline by ``scripts/train_task_model.py``
and shipped as ``services/common/data/task_model.npz`` (no weights are fetched at run time):

- *task*: multinomial logistic regression over the text tasks (``contracts.features.TEXT_TASKS``),
  trained on prompts this project wrote and labelled (``scripts/routing_data/``);
- *difficulty*: three-class logistic regression over the RouteLLM correctness pairs (a strong
  and a weak model, GPT-4 and Mixtral-8x7B, right or wrong per prompt; ``TaskModel`` says how
  it becomes one number), trained on the development split of that data only (MMLU subjects
  before ``high_school``; see the data's SOURCES.md) and on this project's small-talk prompts.

Features (``featurize``), the same code at training and at run time, so the two cannot drift:

- word unigrams and bigrams, lower-cased, numbers folded to their digit count, each CJK character
  a word of its own (those scripts put no spaces between words), punctuation kept one symbol a
  token (``{``, ``;`` and ``=>`` say "code" louder than any word), hashed into ``HASH_DIM``
  buckets (CRC32: stable across processes, unlike ``hash()``), presence only, L2-normalised;
- a few dense shape features: length, and the shares of digits, symbols, line breaks,
  upper-case and non-ASCII characters;
- the text's embedding: ``wordllama``'s static word vectors (MIT, 256 dimensions, weights inside
  its wheel), mean-pooled over the first ``EMBED_CHARS`` characters.

Only a bounded window of a long text is read (its head and tail, ``HEAD_CHARS`` + ``TAIL_CHARS``):
the instruction sits at one end of a pasted document, and a bounded window keeps the cost per
prompt flat. The full length still counts, as a dense feature.

Chosen by measurement (``scripts/train_task_model.py --compare``, cross-validated on the
training data only; the README has the figures): the hashed words alone, the embedding alone,
and both. Both together were best for the task and for the difficulty, and the embedding costs
about a quarter of a millisecond a prompt.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
import zlib
from dataclasses import dataclass
from importlib import resources
from io import BytesIO
from pathlib import Path

import numpy as np
import numpy.typing as npt

from contracts.features import TEXT_TASKS, TaskType
from services.common.tokens import utf8_safe

__all__ = ["DENSE_FEATURES", "HASH_DIM", "Featurized", "TaskModel", "featurize", "window"]

HASH_DIM = 1 << 16
HEAD_CHARS = 1500
TAIL_CHARS = 500
# The embedding reads less: its cost grows with the text, and the first words carry the ask.
EMBED_CHARS = 600

DENSE_FEATURES: tuple[str, ...] = (
    "log_chars",
    "digit_share",
    "symbol_share",
    "newline_share",
    "upper_share",
    "non_ascii_share",
)

_TOKEN = re.compile(
    r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]"  # one CJK character a token
    r"|[^\W\d_]+"  # a run of letters, any script
    r"|\d+"
    r"|[^\w\s]"  # one symbol
)
_SYMBOL = re.compile(r"[^\w\s]")
_DIGIT = re.compile(r"\d")
_UPPER = re.compile(r"[A-Z]")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def window(text: str) -> str:
    """The part of ``text`` the model reads: all of it, or its head and tail."""
    if len(text) <= HEAD_CHARS + TAIL_CHARS:
        return text
    return text[:HEAD_CHARS] + "\n" + text[-TAIL_CHARS:]


@dataclass(frozen=True, slots=True)
class Featurized:
    """One text as the models see it: hashed indices (each weighing ``1/sqrt(len)``) and the
    dense features, in ``DENSE_FEATURES`` order."""

    indices: npt.NDArray[np.int64]
    dense: npt.NDArray[np.float64]


def _bucket(token: str) -> int:
    return zlib.crc32(token.encode("utf-8", "surrogatepass")) & (HASH_DIM - 1)


def featurize(text: str) -> Featurized:
    seen = window(text)
    words = [f"#{len(t)}" if t.isdigit() else t.lower() for t in _TOKEN.findall(seen)]
    grams = set(words)
    grams.update(f"{a} {b}" for a, b in itertools.pairwise(words))
    indices = np.fromiter({_bucket(g) for g in grams}, dtype=np.int64)
    size = max(len(seen), 1)
    dense = np.array(
        [
            math.log1p(len(text)) / 10.0,
            len(_DIGIT.findall(seen)) / size,
            len(_SYMBOL.findall(seen)) / size,
            seen.count("\n") / size * 10.0,
            len(_UPPER.findall(seen)) / size,
            len(_NON_ASCII.findall(seen)) / size,
        ],
        dtype=np.float64,
    )
    return Featurized(indices=np.sort(indices), dense=dense)


class _Embedder:
    """Static word embeddings (``wordllama``'s 256-dimension model, weights inside its wheel),
    mean-pooled over the first ``EMBED_CHARS`` of a text and normalised."""

    def __init__(self) -> None:
        import wordllama

        # Its own look-up of the shipped files fails (it looks in ``tokenizer/``, the wheel has
        # ``tokenizers/``) and falls back to a download; naming its package folder as the cache
        # finds both files, and ``disable_download`` makes a miss an error, never a fetch.
        self._model = wordllama.WordLlama.load(
            cache_dir=Path(wordllama.__file__).parent, disable_download=True
        )

    def __call__(self, text: str) -> npt.NDArray[np.float64]:
        vector = self._model.embed([utf8_safe(text[:EMBED_CHARS]) or " "], norm=True)[0]
        return np.asarray(vector, dtype=np.float64)


@functools.cache
def _embedder() -> _Embedder:
    return _Embedder()


@dataclass(frozen=True)
class _Linear:
    """One linear model: per class, weights over the hashed buckets, the dense features and the
    embedding (zero columns when the model does not use it), and a bias."""

    # Bucket-major (HASH_DIM x classes): a text's buckets are then whole rows, gathered from
    # contiguous memory.
    by_bucket: npt.NDArray[np.float64]
    dense: npt.NDArray[np.float64]
    # The dense features' lowest and highest values in training; a text's are clipped to them.
    dense_low: npt.NDArray[np.float64]
    dense_high: npt.NDArray[np.float64]
    embedding: npt.NDArray[np.float64]
    bias: npt.NDArray[np.float64]

    @classmethod
    def named(cls, arrays: dict[str, npt.NDArray[np.float32]], name: str) -> _Linear:
        def f64(a: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
            return np.ascontiguousarray(a, dtype=np.float64)

        return cls(
            by_bucket=f64(arrays[f"{name}_w"].T),
            dense=f64(arrays[f"{name}_dense"]),
            dense_low=f64(arrays[f"{name}_dense_range"][0]),
            dense_high=f64(arrays[f"{name}_dense_range"][1]),
            embedding=f64(arrays[f"{name}_emb"]),
            bias=f64(arrays[f"{name}_b"]),
        )

    @property
    def uses_embedding(self) -> bool:
        return bool(self.embedding.shape[1] > 0)

    def scores(
        self, features: Featurized, embedding: npt.NDArray[np.float64] | None
    ) -> npt.NDArray[np.float64]:
        # The hashed part as a sum over the text's buckets: a gather of a few hundred columns,
        # not a product with 65,536 zeros.
        n = len(features.indices)
        out = self.by_bucket[features.indices].sum(axis=0)
        if n:
            out /= math.sqrt(n)
        dense = np.clip(features.dense, self.dense_low, self.dense_high)
        out += self.dense @ dense + self.bias
        if embedding is not None and self.uses_embedding:
            out += self.embedding @ embedding
        result: npt.NDArray[np.float64] = out
        return result


def _softmax(scores: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    shifted = np.exp(scores - scores.max())
    result: npt.NDArray[np.float64] = shifted / shifted.sum()
    return result


@dataclass(frozen=True)
class TaskGuess:
    task: TaskType
    confidence: float
    difficulty: float


class TaskModel:
    """The two trained models. Load the shipped one with ``TaskModel.shipped()``.

    The difficulty model has three classes, from the RouteLLM correctness pairs: the weak model
    right where the strong one is wrong, both alike, the weak one wrong where the strong one is
    right. Its raw score is ``(1 + P(weak loses) - P(weak wins)) / 2``, the likelier a cheap model
    fails where a strong one would not, the higher; difficulty is that score's percentile among
    the MMLU development prompts (0.72: harder than 72% of them). Predicting plain failure of the
    weak model ranked worse than random routing in cross-validation: the prompts a cheap model
    fails are often ones a strong model fails too.
    """

    def __init__(self, arrays: dict[str, npt.NDArray[np.float32]]) -> None:
        self.tasks: tuple[TaskType, ...] = tuple(
            TaskType(str(name)) for name in arrays["task_labels"]
        )
        unknown = set(self.tasks) - set(TEXT_TASKS)
        if unknown:
            raise ValueError(f"the task model knows tasks this build does not: {unknown}")
        self._task = _Linear.named(arrays, "task")
        self._difficulty = _Linear.named(arrays, "difficulty")
        if self._difficulty.bias.shape != (3,):
            raise ValueError("the difficulty model must have three classes")
        self._quantiles = np.asarray(arrays["difficulty_quantiles"], dtype=np.float64)
        self._percentiles = np.linspace(0.0, 1.0, len(self._quantiles))

    @classmethod
    def from_bytes(cls, raw: bytes) -> TaskModel:
        with np.load(BytesIO(raw), allow_pickle=False) as npz:
            return cls({name: npz[name] for name in npz.files})

    @classmethod
    @functools.cache
    def shipped(cls) -> TaskModel:
        raw = resources.files("services.common").joinpath("data", "task_model.npz").read_bytes()
        return cls.from_bytes(raw)

    def warm(self) -> None:
        """Load what the first guess would (the embeddings); call it in a thread at start."""
        self.guess("warm up")

    def guess(self, text: str) -> TaskGuess:
        features = featurize(text)
        uses_embedding = self._task.uses_embedding or self._difficulty.uses_embedding
        embedding = _embedder()(window(text)) if uses_embedding else None
        tasks = _softmax(self._task.scores(features, embedding))
        best = int(tasks.argmax())
        lose, _, win = _softmax(self._difficulty.scores(features, embedding))
        raw = (1.0 + win - lose) / 2.0
        return TaskGuess(
            task=self.tasks[best],
            confidence=float(tasks[best]),
            difficulty=float(np.interp(raw, self._quantiles, self._percentiles)),
        )

"""Prompt features: TF-IDF over word 1-2 grams plus a few dense shape features.

One code path serves training and scoring (:meth:`TextFeatures.transform`), so
a router can never see different features at routing time than it learned on.
Everything here is plain Python and numpy over a vocabulary stored in the
router file: no hashing salt, no download, the same numbers on every machine.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.sparse import csr_matrix

__all__ = ["DENSE_FEATURE_NAMES", "TextFeatures", "dense_features", "fit_features", "terms"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# The same token rule as scikit-learn's default, so measured baselines compare like with like.
_TOKEN = re.compile(r"\b\w\w+\b")
_OPTION_LINE = re.compile(r"^\s*\(?[A-Ea-e][.):]\s", re.MULTILINE)
_CODE_MARK = re.compile(r"```|\bdef |\bclass |\breturn\b|[{};]\s*$|==|=>|->", re.MULTILINE)
_MATH = re.compile(r"[=+*/^<>√∑∫π]|\\frac|\\sqrt|\d\s*[-x\u00d7]\s*\d")
_NEGATION = re.compile(r"\b(NOT|EXCEPT|LEAST|FALSE|INCORRECT)\b")
_ALNUM_ASCII = np.array([chr(c).isalnum() for c in range(128)], dtype=bool)

DENSE_FEATURE_NAMES = (
    "log_chars",
    "log_words",
    "log_lines",
    "digit_share",
    "upper_share",
    "punct_share",
    "mean_word_len",
    "long_word_share",
    "option_lines",
    "code_marks",
    "math_marks",
    "question_marks",
    "negation",
    "blank_line_blocks",
)


def terms(text: str) -> list[str]:
    """Lower-cased word unigrams and bigrams of a text, in order."""
    words = _TOKEN.findall(text.lower())
    return words + [f"{a} {b}" for a, b in itertools.pairwise(words)]


def dense_features(text: str) -> FloatArray:
    """Shape features that carry across domains: length, digits, code, math, options."""
    n = max(len(text), 1)
    words = text.split()
    n_words = max(len(words), 1)
    # Character classes from code points in one vectorised pass (ASCII classes;
    # other scripts count as letters), far cheaper than per-character Python calls.
    code = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    digits = int(np.count_nonzero((code >= 48) & (code <= 57)))
    upper = int(np.count_nonzero((code >= 65) & (code <= 90)))
    ascii_punct = (code >= 33) & (code <= 126) & ~_ALNUM_ASCII[np.minimum(code, 127)]
    punct = int(np.count_nonzero(ascii_punct))
    word_chars = len(text) - len(code[(code == 32) | (code == 10) | (code == 9) | (code == 13)])
    long_words = sum(len(w) >= 9 for w in words)
    return np.array(
        [
            math.log1p(len(text)),
            math.log1p(len(words)),
            math.log1p(text.count("\n")),
            digits / n,
            upper / n,
            punct / n,
            word_chars / n_words,
            long_words / n_words,
            math.log1p(len(_OPTION_LINE.findall(text))),
            math.log1p(len(_CODE_MARK.findall(text))),
            math.log1p(len(_MATH.findall(text))),
            math.log1p(text.count("?")),
            float(bool(_NEGATION.search(text))),
            math.log1p(text.count("\n\n")),
        ],
        dtype=np.float64,
    )


@dataclass(frozen=True)
class TextFeatures:
    """A fitted feature map: vocabulary, IDF weights and dense-feature scaling.

    Feature vector layout: ``len(vocabulary)`` TF-IDF columns (sub-linear term
    frequency, smoothed IDF, L2-normalised), then the standardised dense
    features of :data:`DENSE_FEATURE_NAMES`.
    """

    vocabulary: dict[str, int]
    idf: FloatArray
    dense_mean: FloatArray
    dense_scale: FloatArray

    @property
    def n_sparse(self) -> int:
        """Number of TF-IDF columns."""
        return len(self.vocabulary)

    @property
    def n_features(self) -> int:
        """Total width of a feature vector."""
        return self.n_sparse + len(DENSE_FEATURE_NAMES)

    def sparse(self, text: str) -> tuple[IntArray, FloatArray]:
        """TF-IDF columns of one text as (indices, values); unknown terms are ignored."""
        vocab = self.vocabulary
        counts = Counter(i for t in terms(text) if (i := vocab.get(t)) is not None)
        if not counts:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
        idx = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
        vals = (1.0 + np.log(tf)) * self.idf[idx]
        vals /= np.sqrt(vals @ vals)
        return idx, vals

    def dense(self, text: str) -> FloatArray:
        """Standardised dense features of one text."""
        return (dense_features(text) - self.dense_mean) / self.dense_scale

    def transform(self, texts: Sequence[str]) -> csr_matrix:
        """Feature matrix (one row a text) for training and batch scoring."""
        indptr = [0]
        indices: list[IntArray] = []
        values: list[FloatArray] = []
        dense_cols = np.arange(self.n_sparse, self.n_features, dtype=np.int64)
        for text in texts:
            idx, vals = self.sparse(text)
            indices += [idx, dense_cols]
            values += [vals, self.dense(text)]
            indptr.append(indptr[-1] + len(idx) + len(dense_cols))
        return csr_matrix(
            (np.concatenate(values), np.concatenate(indices), np.array(indptr)),
            shape=(len(texts), self.n_features),
        )


def fit_features(texts: Iterable[str], *, min_df: int = 2, max_terms: int = 60_000) -> TextFeatures:
    """Learn the vocabulary (terms in >= ``min_df`` texts, most frequent first) and scaling."""
    doc_freq: Counter[str] = Counter()
    dense_rows: list[FloatArray] = []
    n_docs = 0
    for text in texts:
        n_docs += 1
        doc_freq.update(set(terms(text)))
        dense_rows.append(dense_features(text))
    kept = sorted(
        (t for t, df in doc_freq.items() if df >= min_df), key=lambda t: (-doc_freq[t], t)
    )
    kept = kept[:max_terms]
    vocabulary = {t: i for i, t in enumerate(kept)}
    df = np.array([doc_freq[t] for t in kept], dtype=np.float64)
    idf = np.log((1.0 + n_docs) / (1.0 + df)) + 1.0
    dense = np.vstack(dense_rows) if dense_rows else np.zeros((1, len(DENSE_FEATURE_NAMES)))
    scale = dense.std(axis=0)
    # A constant feature (e.g. no code anywhere in training) must not divide by zero.
    scale[scale < 1e-9] = 1.0
    return TextFeatures(vocabulary, idf, dense.mean(axis=0), scale)

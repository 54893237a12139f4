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

# scikit-learn's default token rule (runs of 2+ word characters); without its
# \b anchors, which change nothing for greedy runs and cost time.
_TOKEN = re.compile(r"\w\w+")
_OPTION_LINE = re.compile(r"^[ \t]*\(?[A-Ea-e][.):] ", re.MULTILINE)
# Plain substring counts (str.count runs in C) instead of one big regex: the
# scoring budget is a couple of milliseconds for a 1,000-token prompt.
_CODE_MARKS = ("```", "def ", "class ", "return", "==", "=>", "->", ";\n", "{\n", "}\n", "    ")
_MATH_MARKS = ("\\frac", "\\sqrt", "\u00d7", "\u2211", "\u222b", "\u03c0", "\u221a", "^")
_NEGATIONS = (" NOT ", " EXCEPT ", " LEAST ", " FALSE ", " INCORRECT ")
_ALNUM_ASCII = np.array([chr(c).isalnum() for c in range(128)], dtype=bool)
_OPERATOR_ASCII = np.array([chr(c) in "=+*/<>" for c in range(128)], dtype=bool)

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
    ascii_code = np.minimum(code, 127)
    ascii_punct = (code >= 33) & (code <= 126) & ~_ALNUM_ASCII[ascii_code]
    punct = int(np.count_nonzero(ascii_punct))
    operators = int(np.count_nonzero(_OPERATOR_ASCII[ascii_code] & (code < 128)))
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
            math.log1p(sum(text.count(mark) for mark in _CODE_MARKS)),
            math.log1p(operators + sum(text.count(mark) for mark in _MATH_MARKS)),
            math.log1p(text.count("?")),
            float(any(word in text for word in _NEGATIONS)),
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
        words = _TOKEN.findall(text.lower())
        get = self.vocabulary.get
        # Same terms as terms(), looked up without building an intermediate list.
        found = [i for i in map(get, words) if i is not None]
        found += [i for i in map(get, map(" ".join, itertools.pairwise(words))) if i is not None]
        if not found:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
        idx, counts = np.unique(np.array(found, dtype=np.int64), return_counts=True)
        tf = counts.astype(np.float64)
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

"""Prompt features: one code path for training and scoring."""

from __future__ import annotations

import numpy as np

from tiergate.learned.features import DENSE_FEATURE_NAMES, dense_features, fit_features, terms


def test_terms_are_lowercased_unigrams_and_bigrams() -> None:
    assert terms("Hello big World, a") == ["hello", "big", "world", "hello big", "big world"]


def test_dense_features_are_finite_for_any_text() -> None:
    for text in ["", "x", "def f():\n    return 1;", "Ünïcödé ∑ 3\u00d74 = 12?", "A. yes\nB. no"]:
        values = dense_features(text)
        assert values.shape == (len(DENSE_FEATURE_NAMES),)
        assert np.isfinite(values).all()


def test_dense_features_see_code_math_and_options() -> None:
    names = list(DENSE_FEATURE_NAMES)
    code = dense_features("```python\ndef f(x):\n    return x == 1\n```")
    options = dense_features("Which?\nA. one\nB. two\nC. three\nD. four")
    plain = dense_features("tell me a story about a cat")
    assert code[names.index("code_marks")] > plain[names.index("code_marks")]
    assert options[names.index("option_lines")] > plain[names.index("option_lines")]
    assert dense_features("Which is NOT true")[names.index("negation")] == 1.0


def test_fit_keeps_terms_seen_twice_and_transform_matches_single_prompt_path() -> None:
    texts = ["red apple pie", "red apple tart", "green pear", "blue sky"]
    features = fit_features(texts, min_df=2)
    assert set(features.vocabulary) == {"red", "apple", "red apple"}
    matrix = features.transform(["red apple red", "nothing known"])
    assert matrix.shape == (2, features.n_features)
    idx, vals = features.sparse("red apple red")
    row = matrix[0].toarray()[0]
    assert np.allclose(row[idx], vals)
    assert np.isclose(np.linalg.norm(row[: features.n_sparse]), 1.0)
    assert np.allclose(row[features.n_sparse :], features.dense("red apple red"))
    assert matrix[1, : features.n_sparse].nnz == 0


def test_fitting_is_deterministic() -> None:
    texts = [f"word{i % 7} common text {i % 3}" for i in range(50)]
    a, b = fit_features(texts), fit_features(list(reversed(texts)))
    assert a.vocabulary == b.vocabulary
    assert np.allclose(a.idf, b.idf)

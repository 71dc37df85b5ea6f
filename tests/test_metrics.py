"""attribkit.evaluation.metrics against hand-computed values (and scipy as a second reference)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from attribkit.errors import InvalidInputError, OptionError
from attribkit.evaluation import metrics


def test_spearman_hand_computed():
    # ranks equal the values; d = (0, 1, -1, 0): rho = 1 - 6 * 2 / (4 * 15) = 0.8
    assert metrics.spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8, abs=1e-12)
    # ties share ranks: (1.5, 1.5, 3) vs (1, 2, 3): cov 1.5 / sqrt(1.5 * 2) = sqrt(3) / 2
    assert metrics.spearman([1, 1, 2], [1, 2, 3]) == pytest.approx(math.sqrt(3) / 2, abs=1e-12)
    assert metrics.spearman([3, 2, 1], [1, 2, 3]) == pytest.approx(-1.0, abs=1e-12)


def test_kendall_hand_computed():
    # one discordant pair of six: (5 - 1) / 6
    assert metrics.kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6, abs=1e-12)
    # tau-b with a tie in x: (2 concordant) / sqrt(2 untied x-pairs * 3 untied y-pairs)
    assert metrics.kendall_tau([1, 1, 2], [1, 2, 3]) == pytest.approx(2 / math.sqrt(6), abs=1e-12)


def test_rank_correlations_match_scipy_on_random_maps_with_ties():
    rng = np.random.default_rng(0)
    for _ in range(20):
        a, b = rng.integers(-3, 4, size=12).astype(float), rng.normal(size=12).round(1)
        assert metrics.spearman(a, b) == pytest.approx(stats.spearmanr(a, b).statistic, abs=1e-12)
        assert metrics.kendall_tau(a, b) == pytest.approx(stats.kendalltau(a, b).statistic, abs=1e-12)


def test_top_k_overlap_and_cosine_hand_computed():
    # |a| top-2 = {0, 1}; |b| top-2 = {2, 1}: one shared of two
    assert metrics.top_k_overlap([5, -4, 1, 0], [0, 4, -6, 1], 2) == 0.5
    # by signed value: a top-2 = {0, 2}, b top-2 = {1, 3}
    assert metrics.top_k_overlap([5, -4, 1, 0], [0, 4, -6, 1], 2, by="value") == 0.0
    assert metrics.top_k_overlap([1, 2], [2, 1], 10) == 1.0  # k cut to the number of tokens
    assert metrics.cosine([1, 0], [1, 1]) == pytest.approx(1 / math.sqrt(2), abs=1e-12)
    assert metrics.cosine([1, 2], [-2, -4]) == pytest.approx(-1.0, abs=1e-12)
    assert metrics.top_k_indices([1, 3, 3, -5], 3) == [3, 1, 2]  # ties: earlier position first


def test_undefined_values_are_nan_and_summaries_skip_them():
    assert math.isnan(metrics.spearman([1, 1, 1], [1, 2, 3]))
    assert math.isnan(metrics.kendall_tau([2, 2], [1, 2]))
    assert math.isnan(metrics.cosine([0, 0], [1, 2]))
    summary = metrics.summarize([{"s": 1.0}, {"s": math.nan}, {"s": 0.0, "c": 0.5}])
    assert summary["s"] == {"mean": 0.5, "std": 0.5, "n": 2, "undefined": 1}
    assert summary["c"]["mean"] == 0.5 and summary["c"]["n"] == 1


def test_agreement_keys_and_bad_input():
    scores = metrics.agreement([1, 2, 3], [1, 2, 3], k=2)
    assert set(scores) == {"spearman", "kendall", "top2_overlap", "cosine"} and scores["top2_overlap"] == 1.0
    with pytest.raises(InvalidInputError, match="same number of tokens"):
        metrics.spearman([1, 2], [1, 2, 3])
    with pytest.raises(InvalidInputError, match="finite"):
        metrics.cosine([1, math.nan], [1, 2])
    with pytest.raises(OptionError):
        metrics.top_k_overlap([1, 2], [1, 2], 0)


def test_deletion_counts_and_faithfulness_arithmetic():
    assert [metrics.deletion_count(10, f) for f in (0.01, 0.2, 0.25, 1.0)] == [1, 2, 3, 10]
    assert metrics.deletion_count(3, 0.5) == 2 and metrics.deletion_count(10, 0.3) == 3  # no float round-up to 4
    with pytest.raises(OptionError):
        metrics.deletion_count(10, 0.0)
    assert metrics.comprehensiveness(0.9, 0.3) == pytest.approx(0.6)
    assert metrics.sufficiency(0.9, 0.85) == pytest.approx(0.05)
    assert metrics.aopc([0.1, 0.2, 0.6]) == pytest.approx(0.3)
    assert metrics.ERASER_FRACTIONS == (0.01, 0.05, 0.1, 0.2, 0.5)


def test_inputs_are_not_mutated():
    a, b = np.array([3.0, 1.0, 2.0]), np.array([1.0, 2.0, 3.0])
    before = (a.copy(), b.copy())
    metrics.agreement(a, b)
    np.testing.assert_array_equal(a, before[0])
    np.testing.assert_array_equal(b, before[1])

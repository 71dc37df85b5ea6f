"""The perturbation family (Captum at token level) against independent references."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

import attribkit as ak
from attribkit.methods.baselines import replacement_id
from attribkit.methods.surrogate import WeightedLinearModel

TEXTS = ["the movie was really good", ("a cat sat", "on the mat"), "bad"]


def _value(clf, text, keep: set[int], target: int) -> float:
    """F(x with every real token outside ``keep`` replaced by [MASK]): a plain forward on edited input ids."""
    batch = clf.encode([text])
    real = (~clf.special_mask(batch))[0].nonzero().view(-1).tolist()
    ids = batch["input_ids"].clone()
    for i, position in enumerate(real):
        if i not in keep:
            ids[0, position] = replacement_id(clf, "mask")
    with torch.no_grad():
        return float(clf.logits({**batch, "input_ids": ids})[0, target])


def _exact_shapley(clf, text, target: int) -> np.ndarray:
    """Shapley values of the real tokens by enumerating every coalition (the textbook formula)."""
    n = int((~clf.special_mask(clf.encode([text])))[0].sum())
    values = {s: _value(clf, text, set(s), target) for r in range(n + 1) for s in itertools.combinations(range(n), r)}
    phi = np.zeros(n)
    for i in range(n):
        for s, v in values.items():
            if i in s:
                continue
            with_i = tuple(sorted((*s, i)))
            phi[i] += math.factorial(len(s)) * math.factorial(n - len(s) - 1) / math.factorial(n) * (values[with_i] - v)
    return phi


def _real_scores(record) -> np.ndarray:
    return np.array([s for s, seg in zip(record.scores[0], record.segments) if seg >= 0])


def test_feature_ablation_is_occlusion(tiny):
    clf = tiny("bert", 3)
    a = ak.explain(clf, TEXTS, method="feature_ablation", targets="all")
    b = ak.explain(clf, TEXTS, method="occlusion", targets="all")
    for x, y in zip(a, b):
        np.testing.assert_allclose(x.scores, y.scores, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("n_samples", [1, 3])
def test_shapley_sampling_is_efficient_for_any_sample_count(tiny, n_samples):
    # every sampled order telescopes: the scores sum to F(x) - F(all real tokens replaced), exactly
    clf = tiny("bert", 2)
    for text in TEXTS:
        record = ak.explain(clf, [text], method="shapley_sampling", targets=[1], n_samples=n_samples)[0]
        n = int((np.array(record.segments) >= 0).sum())
        expected = _value(clf, text, set(range(n)), 1) - _value(clf, text, set(), 1)
        assert record.scores[0].sum() == pytest.approx(expected, rel=1e-5, abs=1e-7)


def test_sampling_methods_approach_exact_shapley_values(tiny):
    clf = tiny("bert", 2)
    text = "a cat sat"  # 3 real tokens: 8 coalitions, enumerated for the reference
    exact = _exact_shapley(clf, text, 1)
    scale = np.abs(exact).max()
    shapley = _real_scores(ak.explain(clf, [text], method="shapley_sampling", targets=[1], n_samples=300)[0])
    kernel = _real_scores(ak.explain(clf, [text], method="kernel_shap", targets=[1], n_samples=3000)[0])
    np.testing.assert_allclose(shapley, exact, atol=0.05 * scale)
    np.testing.assert_allclose(kernel, exact, atol=0.05 * scale)
    # and a few samples are not the exact answer: the tolerance above is tight enough to see sampling error
    rough = _real_scores(ak.explain(clf, [text], method="kernel_shap", targets=[1], n_samples=4)[0])
    assert np.abs(rough - exact).max() > 1e-3 * scale


@pytest.mark.parametrize("method", ["shapley_sampling", "kernel_shap", "lime"])
def test_seeded_sampling_repeats_and_another_seed_differs(tiny, method):
    clf = tiny("bert", 2)
    text = "the movie was really good"
    a = ak.explain(clf, [text], method=method, n_samples=6, seed=3)[0]
    b = ak.explain(clf, [text, "bad"], method=method, n_samples=6, seed=3, batch_size=2)[0]
    c = ak.explain(clf, [text], method=method, n_samples=6, seed=4)[0]
    np.testing.assert_array_equal(a.scores, b.scores)
    assert not np.allclose(a.scores, c.scores)
    assert a.options["n_samples"] == 6 and a.options["seed"] == 3


def test_one_real_token_scores_the_whole_difference(tiny):
    clf = tiny("bert", 2)
    expected = _value(clf, "bad", {0}, 1) - _value(clf, "bad", set(), 1)
    for method in ("feature_ablation", "shapley_sampling", "kernel_shap", "lime"):
        record = ak.explain(clf, ["bad"], method=method, targets=[1])[0]
        assert _real_scores(record) == pytest.approx([expected], rel=1e-9), method


def test_surrogate_is_weighted_ridge_in_closed_form():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, size=(40, 5)).astype(float)
    y = x @ np.array([1.0, -2.0, 0.5, 0.0, 3.0]) + 0.7 + rng.normal(0, 0.1, 40)
    w = rng.uniform(0.1, 2.0, 40)
    for ridge in (0.0, 1.0):
        model = WeightedLinearModel(ridge=ridge)
        model.fit([(torch.tensor(x), torch.tensor(y), torch.tensor(w))])
        # reference: minimise sum w (y - Xb - c)^2 + ridge |b|^2 via the sqrt-weighted augmented system in numpy
        design = np.hstack([x, np.ones((40, 1))]) * np.sqrt(w)[:, None]
        target = y * np.sqrt(w)
        penalty = np.sqrt(ridge) * np.hstack([np.eye(5), np.zeros((5, 1))])
        reference = np.linalg.lstsq(np.vstack([design, penalty]), np.hstack([target, np.zeros(5)]), rcond=None)[0]
        np.testing.assert_allclose(model.representation().numpy()[0], reference[:5], rtol=1e-5, atol=1e-6)
        assert float(model.intercept[0]) == pytest.approx(reference[5], rel=1e-5)


@pytest.mark.parametrize(
    ("method", "options", "message"),
    [
        ("feature_ablation", {"n_samples": 5}, "unknown option .*it takes: replacement, perturbations_per_eval"),
        ("shapley_sampling", {"n_samples": 0}, "n_samples must be a positive integer"),
        ("kernel_shap", {"seed": "x"}, "seed must be an integer"),
        ("lime", {"ridge": -1}, "ridge must be a number >= 0"),
        ("lime", {"replacement": "cls"}, "unknown replacement"),
        ("kernel_shap", {"perturbations_per_eval": 0}, "perturbations_per_eval must be a positive integer"),
    ],
)
def test_bad_options_are_one_line_errors(tiny, method, options, message):
    with pytest.raises(ak.OptionError, match=message):
        ak.explain(tiny("bert", 2), ["bad"], method=method, **options)

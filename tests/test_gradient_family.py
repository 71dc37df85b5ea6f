"""Saliency and GradientSHAP against Captum and Integrated Gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import attribkit as ak
from attribkit.targets import apply_target_fn

TEXTS = ["the movie was really good", ("a cat sat", "on the mat"), "bad"]


@pytest.mark.parametrize("layer", ["word_embeddings", "embeddings"])
def test_saliency_is_captum_saliency(tiny, layer):
    from captum.attr import Saliency

    clf = tiny("bert", 3)
    batch = clf.encode(TEXTS)
    targets = torch.tensor([[0, 2], [1, 0], [2, 1]])
    ours = ak.attribute(clf, batch, targets=targets, method="saliency", layer=layer)
    with torch.no_grad():
        x = clf.layer_output(batch, layer)

    def forward(z):
        return apply_target_fn(clf.forward_with_layer(batch, layer, lambda _out: z), "logit", is_regression=False)

    for v in range(2):
        ref = Saliency(forward).attribute(x, target=targets[:, v].tolist(), abs=True)
        ref = ref * batch["attention_mask"][:, :, None]
        torch.testing.assert_close(ours[:, v], ref, rtol=1e-10, atol=1e-12)


def test_saliency_token_score_is_the_l1_norm_of_the_gradient(tiny):
    clf = tiny("bert", 2)
    record = ak.explain(clf, ["the movie was good"], method="saliency", targets=[1])[0]
    batch = clf.encode(["the movie was good"])
    x = clf.layer_output(batch, "word_embeddings").detach().requires_grad_(True)
    logit = clf.forward_with_layer(batch, "word_embeddings", lambda _out: x)[0, 1]
    (grad,) = torch.autograd.grad(logit, x)
    np.testing.assert_allclose(record.scores[0], grad[0].abs().sum(-1).numpy(), rtol=1e-6)


def test_gradient_shap_without_noise_converges_to_integrated_gradients(tiny):
    # stdevs = 0, one baseline: Monte-Carlo IG over the straight path; many samples approach the IG map
    clf = tiny("bert", 2)
    text = "the movie was really good"
    ig = ak.explain(clf, [text], method="fast_ig", steps=64, targets=[1])[0]
    shap = ak.explain(clf, [text], method="gradient_shap", n_samples=4000, targets=[1])[0]
    scale = np.abs(ig.scores).max()
    np.testing.assert_allclose(shap.scores, ig.scores, atol=0.05 * scale)
    assert shap.scores.sum() == pytest.approx(ig.scores.sum(), rel=0.05)  # completeness in expectation
    few = ak.explain(clf, [text], method="gradient_shap", n_samples=2, targets=[1])[0]
    assert np.abs(few.scores - ig.scores).max() > 1e-3 * scale  # the tolerance can see sampling error


def test_gradient_shap_is_seeded(tiny):
    clf = tiny("bert", 2)
    a = ak.explain(clf, ["the movie was good"], method="gradient_shap", n_samples=3, stdevs=0.1, seed=5)[0]
    b = ak.explain(clf, ["the movie was good"], method="gradient_shap", n_samples=3, stdevs=0.1, seed=5)[0]
    c = ak.explain(clf, ["the movie was good"], method="gradient_shap", n_samples=3, stdevs=0.1, seed=6)[0]
    np.testing.assert_array_equal(a.scores, b.scores)
    assert not np.allclose(a.scores, c.scores)
    assert a.options["baseline"] == "pad" and a.options["stdevs"] == 0.1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"n_samples": 0}, "n_samples must be a positive integer"),
        ({"stdevs": -1}, "stdevs must be a number >= 0"),
        ({"baseline": "nope"}, "baseline"),
    ],
)
def test_gradient_shap_bad_options(tiny, options, message):
    with pytest.raises(ak.OptionError, match=message):
        ak.explain(tiny("bert", 2), ["bad"], method="gradient_shap", **options)

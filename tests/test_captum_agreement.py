"""fast_ig against Captum's LayerIntegratedGradients, called directly here (float64, tiny BERTs)."""

from __future__ import annotations

import pytest
import torch
from captum.attr import LayerIntegratedGradients

import attribkit as ak
from attribkit.methods.baselines import baseline_ids

TEXTS = ["the movie was really good", "an awful boring plot", ("a cat sat", "on the mat")]


def captum_reference(clf: ak.Classifier, batch, targets, *, layer_module, steps, rule, target_fn="logit"):
    """Captum LIG per view, written without attribkit's hooks or substitution code."""
    model = clf.model

    def forward(ids, mask, types):
        logits = model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits
        return {"logit": logits, "prob": logits.softmax(-1), "log_prob": logits.log_softmax(-1)}[target_fn]

    lig = LayerIntegratedGradients(forward, layer_module)
    views = []
    for v in range(targets.shape[1]):
        attr, delta = lig.attribute(
            batch["input_ids"],
            baselines=baseline_ids(clf, batch, "pad"),
            target=targets[:, v].tolist(),
            additional_forward_args=(batch["attention_mask"], batch["token_type_ids"]),
            n_steps=steps,
            method=rule,
            return_convergence_delta=True,
        )
        views.append(attr)
    return torch.stack(views, dim=1) * batch["attention_mask"][:, None, :, None]


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("rule", ["riemann_right", "riemann_left", "riemann_middle", "gausslegendre"])
@pytest.mark.parametrize("layer", ["word_embeddings", "embeddings"])
def test_fast_ig_equals_captum_lig(tiny, rule, layer):
    clf = tiny("bert", 3)
    batch = clf.encode(TEXTS)
    targets = torch.tensor([[0, 2], [1, 0], [2, 1]])
    reference = captum_reference(
        clf, batch, targets, layer_module=clf.layer_module(layer), steps=8, rule=rule, target_fn="log_prob"
    )
    ours = ak.attribute(
        clf,
        batch,
        targets=targets,
        method="fast_ig",
        steps=8,
        rule=rule,
        layer=layer,
        baseline="pad",
        target_fn="log_prob",
        internal_batch_size=5,
    )
    assert relative_error(ours, reference) <= 1e-5


def test_integrated_gradients_method_equals_direct_captum(tiny):
    clf = tiny("bert", 2)
    batch = clf.encode(TEXTS)
    targets = torch.tensor([[1], [0], [1]])
    reference = captum_reference(
        clf, batch, targets, layer_module=clf.layer_module("word_embeddings"), steps=20, rule="gausslegendre"
    )
    ours = ak.attribute(clf, batch, targets=targets, method="integrated_gradients", steps=20)
    assert relative_error(ours, reference) <= 1e-10


@pytest.mark.parametrize("method", ["fast_ig", "integrated_gradients"])
def test_completeness_delta_is_reported_and_shrinks_with_steps(tiny, method):
    clf = tiny("bert", 2)
    batch = clf.encode(TEXTS)
    targets = torch.tensor([[0], [1], [1]])
    deltas = []
    for steps in (4, 64):
        attributions, delta = ak.attribute(
            clf, batch, targets=targets, method=method, steps=steps, rule="gausslegendre", return_delta=True
        )
        # independent check of the reported delta: F(x) - F(x') from two plain forwards
        with torch.no_grad():
            f_x = clf.logits(batch).gather(1, targets)
            f_base = clf.logits({**batch, "input_ids": baseline_ids(clf, batch, "pad")}).gather(1, targets)
        torch.testing.assert_close(delta, attributions.sum(dim=(2, 3)) - (f_x - f_base), rtol=1e-9, atol=1e-9)
        deltas.append(delta.abs().max().item())
    assert deltas[1] < 1e-6 and deltas[1] < deltas[0]


def test_zero_baseline_captum_path_equals_fast_ig(tiny):
    clf = tiny("bert", 2)
    batch = clf.encode(TEXTS)
    targets = torch.tensor([[0], [1], [0]])
    kwargs = {"targets": targets, "steps": 6, "rule": "riemann_middle", "layer": "embeddings", "baseline": "zero"}
    ours = ak.attribute(clf, batch, method="fast_ig", **kwargs)
    captum = ak.attribute(clf, batch, method="integrated_gradients", **kwargs)
    assert relative_error(ours, captum) <= 1e-6  # Captum builds its alphas in float32

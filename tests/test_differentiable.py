"""create_graph=True: a loss on fast_ig or saliency scores reaches the parameters, matching finite differences."""

from __future__ import annotations

import pytest
import torch

import attribkit as ak
from attribkit.reduce import normalize_scores, reduce_dims

TEXTS = ["the movie was really good", "an awful plot"]


METHODS = {"fast_ig": {"steps": 2}, "saliency": {}}


def attribution_loss(clf: ak.Classifier, batch, targets, method: str = "fast_ig") -> torch.Tensor:
    attributions = ak.attribute(
        clf,
        batch,
        targets=targets,
        method=method,
        **METHODS[method],
        layer="embeddings",
        target_fn="log_prob",
        create_graph=True,
    )
    scores = reduce_dims(attributions, sign="absolute", top_k=8, aggregate="l2")
    maps = normalize_scores(scores, batch["attention_mask"][:, None, :], method="l2")
    reference = torch.linspace(0, 1, maps.shape[-1], dtype=maps.dtype)
    return ((maps - reference) ** 2).sum()


@pytest.mark.parametrize("method", sorted(METHODS))
def test_gradients_of_an_attribution_loss_match_finite_differences(tiny, method):
    clf = tiny("bert", 2)
    batch = clf.encode(TEXTS)
    targets = torch.tensor([[1], [0]])
    params = dict(clf.model.named_parameters())
    probes = [
        ("classifier.weight", (1, 3)),
        ("bert.encoder.layer.0.attention.self.query.weight", (2, 5)),
        ("bert.encoder.layer.1.output.dense.weight", (4, 1)),
        ("bert.embeddings.LayerNorm.weight", (7,)),
    ]
    clf.model.zero_grad()
    attribution_loss(clf, batch, targets, method).backward()
    eps = 1e-6
    for name, index in probes:
        p = params[name]
        analytic = p.grad[index].item()
        with torch.no_grad():
            original = p[index].item()
            p[index] = original + eps
            up = attribution_loss_value(clf, batch, targets, method)
            p[index] = original - eps
            down = attribution_loss_value(clf, batch, targets, method)
            p[index] = original
        numeric = (up - down) / (2 * eps)
        assert analytic == pytest.approx(numeric, rel=1e-5, abs=1e-8), name
    assert params["classifier.weight"].grad.abs().sum() > 0


def attribution_loss_value(clf, batch, targets, method) -> float:
    return attribution_loss(clf, batch, targets, method).item()


def test_a_differentiable_saliency_map_equals_the_plain_one(tiny):
    clf = tiny("bert", 2)
    batch = clf.encode(TEXTS)
    targets = torch.tensor([[1], [0]])
    plain = ak.attribute(clf, batch, targets=targets, method="saliency")
    graph = ak.attribute(clf, batch, targets=targets, method="saliency", create_graph=True)
    assert graph.requires_grad and not plain.requires_grad
    torch.testing.assert_close(graph.detach(), plain, rtol=1e-10, atol=1e-12)  # another SDPA kernel


def test_double_backward_works_on_sdpa_flash_path(minilm_path):
    """PyTorch's CPU flash-attention kernel has no double backward; fast_ig must avoid it."""
    clf = ak.load_classifier(minilm_path, num_labels=2, device="cpu")
    assert clf.model.config._attn_implementation == "sdpa"
    batch = clf.encode(["a fine film", "not good at all"])
    attributions = ak.attribute(
        clf,
        batch,
        targets=torch.tensor([[0], [1]]),
        method="fast_ig",
        layer="embeddings",
        target_fn="log_prob",
        create_graph=True,
    )
    attributions.abs().sum().backward()
    grad = clf.model.bert.encoder.layer[0].attention.self.query.weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_non_differentiable_method_refuses_create_graph(tiny):
    clf = tiny("bert", 2)
    batch = clf.encode(TEXTS)
    with pytest.raises(ak.OptionError, match="not differentiable"):
        ak.attribute(clf, batch, targets=torch.tensor([[0], [0]]), method="occlusion", create_graph=True)

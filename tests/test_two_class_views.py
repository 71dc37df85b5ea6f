"""Both classes' maps of a two-class head from one backward: the same maps and second-order gradients as one each."""

from __future__ import annotations

import pytest
import torch

import attribkit as ak
import attribkit.targets
from attribkit.methods.fast_ig import FastIntegratedGradients
from attribkit.reduce import normalize_scores, reduce_dims
from attribkit_distill.maps import forward_with_maps

TEXTS = ["the movie was really good", "an awful plot", "fine"]
BOTH = torch.tensor([[0, 1], [0, 1], [1, 0]])  # every view order: class 1 first in the last row


@pytest.mark.parametrize("target_fn", ["log_prob", "prob"])
def test_the_scales_are_the_derivatives_of_each_class_against_the_logit_difference(target_fn):
    logits = torch.tensor([[0.3, -1.2], [2.0, 2.5], [-4.0, 3.0]], dtype=torch.float64, requires_grad=True)
    targets = torch.tensor([[0, 1], [1, 0], [1, 1]])
    scales = ak.two_class_view_scales(logits, targets, target_fn)
    out = ak.apply_target_fn(logits, target_fn)
    for row in range(3):
        for view in range(2):
            (grad,) = torch.autograd.grad(out[row, targets[row, view]], logits, retain_graph=True)
            # dF/dz = s * d(z1 - z0)/dz = s * (-1, +1) on that row, zero elsewhere
            expected = torch.zeros_like(logits)
            expected[row] = scales[row, view] * torch.tensor([-1.0, 1.0], dtype=torch.float64)
            torch.testing.assert_close(grad, expected, rtol=1e-14, atol=1e-15)


def test_no_scales_where_one_gradient_cannot_serve_every_class():
    two, three = torch.zeros(2, 2), torch.zeros(2, 3)
    targets = torch.tensor([[0, 1], [0, 1]])
    assert ak.two_class_view_scales(two, targets, "logit") is None  # the two logits' gradients are unrelated
    assert ak.two_class_view_scales(three, targets, "log_prob") is None


def _maps(clf, batch, create_graph: bool, **options) -> torch.Tensor:
    return ak.attribute(clf, batch, targets=BOTH, method="fast_ig", create_graph=create_graph, **options)


def _loss(attributions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    maps = normalize_scores(reduce_dims(attributions, sign="absolute", aggregate="l2"), mask[:, None, :], method="l2")
    return ((maps - torch.linspace(0, 1, maps.shape[-1], dtype=maps.dtype)) ** 2).sum()


@pytest.mark.parametrize("target_fn", ["log_prob", "prob"])
@pytest.mark.parametrize("steps", [1, 5])
def test_fast_ig_views_from_one_backward_equal_one_backward_per_view(tiny, monkeypatch, target_fn, steps):
    clf = tiny("bert", 2)
    batch = clf.encode(TEXTS)
    rule = "gausslegendre" if steps > 1 else "riemann_right"
    options = {"steps": steps, "rule": rule, "layer": "embeddings", "target_fn": target_fn}
    backwards = []
    grad = torch.autograd.grad
    monkeypatch.setattr(torch.autograd, "grad", lambda *a, **k: backwards.append(1) or grad(*a, **k))
    shared = _maps(clf, batch, False, **options)
    assert len(backwards) == 1  # one chunk, one backward for both views
    clf.model.zero_grad()
    _loss(_maps(clf, batch, True, **options), batch["attention_mask"]).backward()
    second_order = {name: p.grad.clone() for name, p in clf.model.named_parameters()}
    monkeypatch.setattr(FastIntegratedGradients, "views_share_a_gradient", False)
    backwards.clear()
    separate = _maps(clf, batch, False, **options)
    assert len(backwards) == 2
    torch.testing.assert_close(shared, separate, rtol=1e-10, atol=1e-13)
    assert not torch.allclose(shared[:, 0], shared[:, 1])  # the two views are not the same map
    clf.model.zero_grad()
    _loss(_maps(clf, batch, True, **options), batch["attention_mask"]).backward()
    for name, p in clf.model.named_parameters():
        torch.testing.assert_close(second_order[name], p.grad, rtol=1e-9, atol=1e-12, msg=name)
    # each view is the map asked for on its own (one view: the per-class backward, as before)
    for view in range(2):
        alone = ak.attribute(clf, batch, targets=BOTH[:, view : view + 1], method="fast_ig", **options)
        torch.testing.assert_close(shared[:, view : view + 1], alone, rtol=1e-10, atol=1e-13)


def test_distillation_maps_of_both_views_from_one_backward_equal_one_backward_per_view(tiny, monkeypatch):
    clf = tiny("bert", 2)
    batch = clf.encode(TEXTS)

    def maps_and_gradients():
        clf.model.zero_grad()
        out = forward_with_maps(clf.model, batch, BOTH, steps=3, create_graph=True)
        (_loss(out.attributions, batch["attention_mask"]) + out.logits.sum()).backward()
        return out.attributions.detach(), {name: p.grad.clone() for name, p in clf.model.named_parameters()}

    shared, shared_grads = maps_and_gradients()
    monkeypatch.setattr(attribkit.targets, "two_class_view_scales", lambda *args: None)  # one backward per view
    separate, separate_grads = maps_and_gradients()
    torch.testing.assert_close(shared, separate, rtol=1e-10, atol=1e-13)
    for name in shared_grads:
        torch.testing.assert_close(shared_grads[name], separate_grads[name], rtol=1e-9, atol=1e-12, msg=name)


@pytest.mark.parametrize("create_graph", [False, True])
def test_attnlrp_views_are_each_class_asked_alone(tiny, create_graph):
    """AttnLRP keeps one backward per view (with create_graph its gradient is taken in the rules' twin graph)."""
    clf = tiny("bert", 2)
    batch = clf.encode(TEXTS)
    options = {"method": "attnlrp", "target_fn": "log_prob", "create_graph": create_graph}
    both = ak.attribute(clf, batch, targets=BOTH, **options)
    for view in range(2):
        alone = ak.attribute(clf, batch, targets=BOTH[:, view : view + 1], **options)
        torch.testing.assert_close(both[:, view : view + 1], alone, rtol=1e-10, atol=1e-13)

"""Attributions of a toy model computed by hand (closed forms), for every method."""

from __future__ import annotations

import pytest
import torch
from tiny_models import write_tokenizer
from torch.testing import assert_close
from toy_model import ToyClassifier

import attribkit as ak


@pytest.fixture()
def toy(tmp_path):
    from transformers import AutoTokenizer

    write_tokenizer(tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)

    def make(power: int) -> ak.Classifier:
        return ak.Classifier(ToyClassifier(power=power), tokenizer)

    return make


def _batch(clf: ak.Classifier):
    return clf.encode(["the movie was good", "bad"])


def test_linear_ig_is_exact_for_any_steps_and_rule(toy):
    clf = toy(power=1)
    batch = _batch(clf)
    emb = clf.model.get_input_embeddings().weight
    x = emb[batch["input_ids"]]
    special = batch["special_tokens_mask"]
    x_base = torch.where(special.unsqueeze(-1), x, emb[clf.pad_token_id])  # [PAD] at real tokens
    targets = torch.tensor([[1], [0]])
    w = clf.model.head[targets[:, 0]]  # [B, D]
    expected = (x - x_base) * w[:, None, :] * batch["attention_mask"][..., None]
    for steps, rule in [(1, "riemann_right"), (3, "riemann_left"), (7, "gausslegendre")]:
        got = ak.attribute(clf, batch, targets=targets, method="fast_ig", steps=steps, rule=rule)
        assert_close(got[:, 0], expected, rtol=1e-12, atol=1e-12)
    captum = ak.attribute(clf, batch, targets=targets, method="integrated_gradients", steps=5)
    assert_close(captum[:, 0], expected, rtol=1e-10, atol=1e-10)


def test_quadratic_ig_depends_on_the_rule_as_computed_by_hand(toy):
    # F = sum_t (w.x_t)^2, zero baseline: grad at a*x is 2a(w.x)w, so the token score of IG is
    # (w.x)^2 * sum_k w_k 2 a_k = (w.x)^2 * (m+1)/m (right), (m-1)/m (left), 1 (middle, Gauss).
    clf = toy(power=2)
    batch = _batch(clf)
    x = clf.model.get_input_embeddings().weight[batch["input_ids"]]
    targets = torch.tensor([[0], [1]])
    u2 = (x * clf.model.head[targets[:, 0]][:, None, :]).sum(-1) ** 2 * batch["attention_mask"]
    m = 4
    for rule, factor in [
        ("riemann_right", (m + 1) / m),
        ("riemann_left", (m - 1) / m),
        ("riemann_middle", 1.0),
        ("gausslegendre", 1.0),
        ("riemann_trapezoid", 1.0),
    ]:
        got = ak.attribute(
            clf, batch, targets=targets, method="fast_ig", steps=m, rule=rule, layer="embeddings", baseline="zero"
        )
        assert_close(got[:, 0].sum(-1), u2 * factor, rtol=1e-12, atol=1e-12)


def test_gradient_x_input_and_occlusion_by_hand(toy):
    clf = toy(power=1)
    batch = _batch(clf)
    emb = clf.model.get_input_embeddings().weight
    x = emb[batch["input_ids"]]
    targets = torch.tensor([[1, 0], [1, 0]])  # two views
    mask = batch["attention_mask"].double()
    gxi = ak.attribute(clf, batch, targets=targets, method="gradient_x_input")
    for v in range(2):
        w = clf.model.head[v]
        assert_close(gxi[:, 1 - v].sum(-1), (x @ w) * mask, rtol=1e-12, atol=1e-12)
    occ = ak.attribute(clf, batch, targets=targets, method="occlusion", replacement="mask")
    real = (~batch["special_tokens_mask"]).double()
    w0 = clf.model.head[0]
    mask_vec = emb[clf.tokenizer.mask_token_id]
    assert_close(occ[:, 1], ((x - mask_vec) @ w0) * real, rtol=1e-12, atol=1e-12)

"""Methods against each other and against naive loops."""

from __future__ import annotations

import torch
from torch.testing import assert_close

import attribkit as ak
from attribkit.reduce import normalize_scores, reduce_dims
from attribkit.targets import apply_target_fn

TEXTS = ["the movie was really good", "bad acting", ("a cat sat", "on the mat")]


def test_gradient_x_input_equals_single_step_fast_ig_with_zero_baseline(tiny):
    clf = tiny("bert", 2)
    batch = clf.encode(TEXTS)
    targets = torch.tensor([[0, 1], [1, 0], [1, 1]])
    gxi = ak.attribute(clf, batch, targets=targets, method="gradient_x_input", layer="embeddings")
    ig1 = ak.attribute(clf, batch, targets=targets, method="fast_ig", steps=1, layer="embeddings", baseline="zero")
    assert_close(gxi, ig1, rtol=1e-12, atol=1e-12)
    # and by definition: x * dF/dx at the embeddings output
    x = clf.layer_output(batch, "embeddings").detach().requires_grad_(True)
    f = clf.forward_with_layer(batch, "embeddings", lambda _o: x).gather(1, targets[:, :1]).sum()
    (g,) = torch.autograd.grad(f, x)
    assert_close(gxi[:, 0], x.detach() * g * batch["attention_mask"][..., None], rtol=1e-10, atol=1e-12)


def test_occlusion_equals_a_naive_one_token_loop(tiny):
    clf = tiny("bert", 3)
    batch = clf.encode(TEXTS)
    targets = torch.tensor([[0, 2], [1, 1], [2, 0]])
    ours = ak.attribute(
        clf, batch, targets=targets, method="occlusion", replacement="unk", target_fn="prob", internal_batch_size=3
    )
    expected = torch.zeros_like(ours)
    unk = clf.tokenizer.unk_token_id
    with torch.no_grad():
        for b in range(batch["input_ids"].shape[0]):
            one = {k: v[b : b + 1] for k, v in batch.items()}
            full = clf.logits(one).softmax(-1)[0]
            for t in range(int(one["attention_mask"].sum())):
                if one["special_tokens_mask"][0, t]:
                    continue
                ids = one["input_ids"].clone()
                ids[0, t] = unk
                occluded = clf.logits({**one, "input_ids": ids}).softmax(-1)[0]
                for v in range(2):
                    expected[b, v, t] = full[targets[b, v]] - occluded[targets[b, v]]
    assert_close(ours, expected, rtol=1e-12, atol=1e-12)


def test_two_class_views_are_identical_after_abs_and_normalization(tiny):
    clf = tiny("bert", 2)
    batch = clf.encode(TEXTS)
    mask = batch["attention_mask"][:, None, :]
    for target_fn in ("prob", "log_prob"):
        a = ak.attribute(clf, batch, targets="all", method="fast_ig", steps=1, layer="embeddings", target_fn=target_fn)
        maps = normalize_scores(reduce_dims(a, sign="absolute", aggregate="l2"), mask, method="l2")
        assert_close(maps[:, 0], maps[:, 1], rtol=1e-10, atol=1e-12)
    # ... which is not true of logits, so the check can fail
    a = ak.attribute(clf, batch, targets="all", method="fast_ig", steps=1, layer="embeddings", target_fn="logit")
    maps = normalize_scores(reduce_dims(a, sign="absolute", aggregate="l2"), mask, method="l2")
    assert (maps[:, 0] - maps[:, 1]).abs().max() > 1e-3


def test_target_functions(tiny):
    logits = torch.tensor([[1.0, 2.0, 0.5]], dtype=torch.float64)
    assert_close(apply_target_fn(logits, "prob"), torch.softmax(logits, -1))
    assert_close(apply_target_fn(logits, "log_prob").exp().sum(), torch.tensor(1.0, dtype=torch.float64))


def test_multi_view_equals_separate_single_views(tiny):
    clf = tiny("bert", 3)
    batch = clf.encode(TEXTS)
    both = ak.attribute(clf, batch, targets="all", method="fast_ig", steps=3, internal_batch_size=4)
    for c in range(3):
        one = ak.attribute(clf, batch, targets=torch.full((3, 1), c), method="fast_ig", steps=3)
        assert_close(both[:, c], one[:, 0], rtol=1e-12, atol=1e-12)

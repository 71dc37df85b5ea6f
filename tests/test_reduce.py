"""Reduction and normalization utilities against hand-computed values."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

import attribkit as ak
from attribkit.reduce import merge_words, normalize_scores, reduce_dims, top_tokens

A = torch.tensor([[[3.0, -4.0, 0.0], [1.0, 2.0, -2.0], [0.0, 0.0, 0.0]]])  # [1, 3 tokens, 3 dims]


def test_reduce_dims_by_hand():
    assert_close(reduce_dims(A, sign="signed", aggregate="sum"), torch.tensor([[-1.0, 1.0, 0.0]]))
    assert_close(reduce_dims(A, sign="absolute", aggregate="sum"), torch.tensor([[7.0, 5.0, 0.0]]))
    assert_close(reduce_dims(A, sign="absolute", aggregate="l2"), torch.tensor([[5.0, 3.0, 0.0]]))
    # top-2 |A| per token: token 0 keeps (3, -4); token 1 keeps (2, -2)
    assert_close(reduce_dims(A, sign="absolute", top_k=2, aggregate="l2"), torch.tensor([[5.0, 8**0.5, 0.0]]))
    assert_close(reduce_dims(A, sign="signed", top_k=1, aggregate="sum"), torch.tensor([[-4.0, 2.0, 0.0]]))


def test_l2_reduction_has_finite_gradient_at_zero_tokens():
    a = A.clone().requires_grad_(True)
    reduce_dims(a, sign="absolute", aggregate="l2").sum().backward()
    assert torch.isfinite(a.grad).all()
    assert_close(a.grad[0, 0], torch.tensor([0.6, -0.8, 0.0]))


def test_normalize_by_hand_keeps_padding_and_zero_maps_zero():
    s = torch.tensor([[3.0, -4.0, 9.0], [0.0, 0.0, 5.0]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 0]])
    before = s.clone()
    assert_close(normalize_scores(s, mask, method="l2"), torch.tensor([[0.6, -0.8, 0.0], [0.0, 0.0, 0.0]]))
    assert_close(normalize_scores(s, mask, method="l1"), torch.tensor([[3 / 7, -4 / 7, 0.0], [0.0, 0.0, 0.0]]))
    assert_close(normalize_scores(s, mask, method="max"), torch.tensor([[0.75, -1.0, 0.0], [0.0, 0.0, 0.0]]))
    assert_close(normalize_scores(s, mask, method=None), torch.tensor([[3.0, -4.0, 0.0], [0.0, 0.0, 0.0]]))
    assert torch.equal(s, before)  # inputs are never mutated


def test_normalize_all_zero_map_has_zero_finite_gradient():
    s = torch.zeros(2, 4, requires_grad=True)
    out = normalize_scores(s, method="l2")
    assert torch.equal(out, torch.zeros(2, 4))
    out.sum().backward()
    assert torch.isfinite(s.grad).all()


def test_merge_words_and_top_tokens():
    scores = torch.tensor([[1.0, 2.0, -3.0, 4.0]])
    assert_close(merge_words(scores, [0, 1, 1, 2]), torch.tensor([[1.0, -1.0, 4.0]]))
    assert_close(merge_words(scores, [0, 1, 1, 2], aggregate="l2"), torch.tensor([[1.0, 13**0.5, 4.0]]))
    assert top_tokens([0.1, -0.9, 0.5], ["a", "b", "c"], k=2) == [(1, "b", -0.9), (2, "c", 0.5)]
    assert top_tokens([0.1, -0.9, 0.5], ["a", "b", "c"], k=1, by="pos") == [(2, "c", 0.5)]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"sign": "signed", "aggregate": "l2"}, "sign='absolute'"),
        ({"sign": "both"}, "unknown sign"),
        ({"aggregate": "mean"}, "unknown aggregate"),
        ({"top_k": 4}, "larger than the layer's hidden size 3"),
        ({"top_k": 0}, "positive integer"),
    ],
)
def test_reduction_option_errors(kwargs, match):
    with pytest.raises(ak.OptionError, match=match):
        reduce_dims(A, **kwargs)


def test_word_level_records_merge_subwords(tiny):
    clf = tiny("bert", 2)
    text = "cats sat"  # "cat ##s" -> one word
    sub = ak.explain(clf, [text], method="gradient_x_input")[0]
    words = ak.explain(clf, [text], method="gradient_x_input", word_level=True)[0]
    assert sub.tokens == ("[CLS]", "cat", "##s", "sat", "[SEP]")
    assert words.tokens == ("[CLS]", "cats", "sat", "[SEP]")
    assert words.offsets[1] == (0, 4)
    assert words.scores[0, 1] == pytest.approx(sub.scores[0, 1] + sub.scores[0, 2], rel=1e-6)

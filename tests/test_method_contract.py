"""One contract, checked for every registered method."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import attribkit as ak

TEXTS = ["the movie was really good", "bad", ("a cat sat", "on the mat"), "i like it very much and so do you"]
STEPS = {"fast_ig": {"steps": 3}, "integrated_gradients": {"steps": 4}}


@pytest.mark.parametrize("method", ak.list_methods())
def test_records_shapes_order_and_options(tiny, method):
    clf = tiny("bert", 3)
    records = ak.explain(clf, TEXTS, method=method, targets="all", batch_size=2, **STEPS.get(method, {}))
    assert [r.text for r in records] == [t if isinstance(t, str) else t[0] for t in TEXTS]
    for record, text in zip(records, TEXTS):
        expected = clf.tokenize(text)
        assert record.tokens == expected.tokens
        assert record.scores.shape == (3, len(expected.tokens))
        assert record.scores.dtype == np.float32
        assert record.views == clf.labels
        assert record.method == method
        assert record.probs.sum() == pytest.approx(1.0, abs=1e-6)
        assert np.isfinite(record.scores).all() and np.abs(record.scores).sum() > 0
        for key, value in STEPS.get(method, {}).items():
            assert record.options[key] == value
    assert records[2].pair == "on the mat"


@pytest.mark.parametrize("method", ak.list_methods())
def test_same_scores_alone_and_in_a_padded_batch(tiny, method):
    clf = tiny("bert", 2)
    options = STEPS.get(method, {})
    alone = ak.explain(clf, ["bad"], method=method, **options)[0]
    batched = ak.explain(clf, ["i like it very much and so do you", "bad"], method=method, batch_size=2, **options)[1]
    np.testing.assert_allclose(batched.scores, alone.scores, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("method", ak.list_methods())
def test_padding_positions_are_exactly_zero(tiny, method):
    clf = tiny("bert", 2)
    batch = clf.encode(["bad", "i like it very much and so do you"])
    out = ak.attribute(clf, batch, targets=torch.tensor([[0], [1]]), method=method, **STEPS.get(method, {}))
    pad = batch["attention_mask"][0] == 0
    assert pad.any()
    assert out[0, :, pad].abs().max().item() == 0.0


@pytest.mark.parametrize("arch", ["bert", "roberta", "distilbert", "electra", "deberta-v2"])
@pytest.mark.parametrize("method", ak.list_methods())
def test_every_architecture_single_and_pair(tiny, arch, method):
    clf = tiny(arch, 2)
    records = ak.explain(
        clf, ["the movie was good", ("a cat sat", "on the mat")], method=method, **STEPS.get(method, {})
    )
    assert len(records) == 2 and records[1].segments.count(1) == 3
    assert all(np.abs(r.scores).sum() > 0 for r in records)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("method", ak.list_methods())
def test_cuda_matches_cpu(checkpoint_dir, method):
    cpu = ak.load_classifier(checkpoint_dir("bert", 2), device="cpu")
    gpu = ak.load_classifier(checkpoint_dir("bert", 2), device="cuda")
    options = STEPS.get(method, {})
    a = ak.explain(cpu, TEXTS, method=method, **options)
    b = ak.explain(gpu, TEXTS, method=method, **options)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x.scores, y.scores, rtol=1e-3, atol=1e-4)

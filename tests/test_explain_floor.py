"""``explain`` at the floor: no forward pass is run twice.

Counts the rows each encoder pass takes: single-step IG and gradient x input take the prediction from
their own forward pass (one row per text), the completeness delta adds one forward on the baselines
only, and occlusion's unoccluded forward is the prediction.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import attribkit as ak
from attribkit.methods.baselines import baseline_ids

TEXTS = ["the movie was really good", "bad", ("a cat sat", "on the mat"), "i like it very much and so do you", "awful"]


def encoder_rows(clf: ak.Classifier, run) -> tuple[int, object]:
    """Rows (texts x steps x variants) that went through the encoder while ``run()`` ran, and its result."""
    seen: list[int] = []
    handle = clf.model.base_model.encoder.register_forward_hook(lambda _m, args, _out: seen.append(args[0].shape[0]))
    try:
        result = run()
    finally:
        handle.remove()
    return sum(seen), result


@pytest.mark.parametrize("method, options", [("fast_ig", {"steps": 1}), ("gradient_x_input", {})])
def test_single_step_methods_run_each_text_once(tiny, method, options):
    clf = tiny("bert", 2)
    rows, _ = encoder_rows(clf, lambda: ak.explain(clf, TEXTS, method=method, completeness=False, **options))
    assert rows == len(TEXTS)


def test_completeness_adds_one_forward_on_the_distinct_baselines_only(tiny):
    """A [PAD] baseline depends on the length and segments only: 'bad' and 'awful' share theirs."""
    clf = tiny("bert", 2)
    rows, records = encoder_rows(clf, lambda: ak.explain(clf, TEXTS, method="fast_ig", steps=1, batch_size=8))
    distinct = {clf.tokenize(t).token_type_ids for t in TEXTS}
    assert len(distinct) == len(TEXTS) - 1
    assert rows == len(TEXTS) + len(distinct)
    # the reported delta against an independent reference: two plain forwards, target = the prediction
    batch = clf.encode(TEXTS)
    with torch.no_grad():
        logits = clf.logits(batch)
        target = logits.argmax(-1, keepdim=True)
        f_base = clf.logits({**batch, "input_ids": baseline_ids(clf, batch, "pad")}).gather(1, target)
    attributions = ak.attribute(clf, batch, targets=target, method="fast_ig", steps=1)
    expected = attributions.sum(dim=(2, 3)) - (logits.gather(1, target) - f_base)
    for i, record in enumerate(records):
        np.testing.assert_allclose(record.delta, expected[i].numpy(), rtol=1e-6, atol=1e-9)
        assert record.prediction == clf.labels[int(target[i])]


def test_no_completeness_leaves_delta_out_and_the_maps_unchanged(tiny):
    clf = tiny("bert", 3)
    with_delta = ak.explain(clf, TEXTS, method="fast_ig", steps=1, targets="all")
    without = ak.explain(clf, TEXTS, method="fast_ig", steps=1, targets="all", completeness=False)
    for a, b in zip(with_delta, without):
        assert a.delta is not None and b.delta is None
        np.testing.assert_array_equal(a.scores, b.scores)
        np.testing.assert_array_equal(a.probs, b.probs)


def test_inline_prediction_equals_a_separate_forward(tiny):
    """Targets 'pred' resolved inside the attribution pass: same predictions, probabilities and maps."""
    clf = tiny("bert", 3)
    batch = clf.encode(TEXTS)
    with torch.no_grad():
        logits = clf.logits(batch)
    records = ak.explain(clf, TEXTS, method="fast_ig", steps=1, batch_size=5)
    maps = ak.attribute(clf, batch, targets=logits.argmax(-1, keepdim=True), method="fast_ig", steps=1)
    for i, record in enumerate(records):
        np.testing.assert_allclose(
            record.probs, logits[i].softmax(-1).numpy(), rtol=1e-6
        )  # probs are stored as float32
        n = len(record.tokens)
        np.testing.assert_allclose(record.scores[0], maps[i, 0, :n].sum(-1).numpy(), rtol=1e-6, atol=1e-9)


def test_occlusion_uses_its_unoccluded_forward_as_the_prediction(tiny):
    clf = tiny("bert", 2)
    rows, records = encoder_rows(clf, lambda: ak.explain(clf, TEXTS, method="occlusion"))
    variants = sum(len(clf.tokenize(t).input_ids) - (3 if isinstance(t, tuple) else 2) for t in TEXTS)
    assert rows == len(TEXTS) + variants


def test_many_step_methods_pay_one_extra_forward_for_the_prediction(tiny):
    """m > 1: the integration points are not the input; one no-grad forward gives the prediction."""
    clf = tiny("bert", 2)
    rows, _ = encoder_rows(clf, lambda: ak.explain(clf, TEXTS, method="fast_ig", steps=4, completeness=False))
    assert rows == len(TEXTS) * (4 + 1)
    # with completeness, that same forward gives F(x): only the distinct baselines are added
    rows, _ = encoder_rows(clf, lambda: ak.explain(clf, TEXTS, method="fast_ig", steps=4, batch_size=8))
    assert rows == len(TEXTS) * (4 + 1) + len({clf.tokenize(t).token_type_ids for t in TEXTS})


def test_completeness_must_be_a_bool(tiny):
    with pytest.raises(ak.OptionError, match="completeness"):
        ak.explain(tiny("bert", 2), "good", completeness="no")

"""Faithfulness: the deleted tokens and the probabilities, against re-tokenized reference texts."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import attribkit as ak
from attribkit.evaluation.erasure import unit_positions


def _output(clf, text) -> torch.Tensor:
    """Reference: the tokenizer called directly ("" gives [CLS] [SEP]) and the plain model."""
    with torch.no_grad():
        return clf.model(**clf.tokenizer(text, return_tensors="pt")).logits[0]


def _prob(clf, text, cls: int) -> float:
    return float(torch.softmax(_output(clf, text), dim=-1)[cls])


def _record(clf, text, scores, view="positive", max_length=None):
    """A record of ``text`` (truncated to ``max_length``) with hand-set scores on its words (specials get 0)."""
    item = clf.tokenize(text, max_length=max_length)
    values = np.zeros((1, len(item.tokens)))
    real = [i for i, s in enumerate(item.segments) if s >= 0]
    values[0, real] = scores
    return ak.Attribution(
        text=text,
        pair=None,
        tokens=item.tokens,
        offsets=item.offsets,
        segments=item.segments,
        scores=values,
        views=(view,),
        labels=clf.labels,
        probs=np.array([0.5, 0.5]),
        prediction=view,
        method="hand",
        options={},
        truncated=item.truncated,
    )


def test_comprehensiveness_and_sufficiency_delete_the_top_tokens(tiny):
    clf = tiny("bert", 2)
    text = "the movie was very good"
    record = _record(clf, text, [0.1, -0.3, 0.05, 0.7, 0.4])  # ranking: very, good, the, was, movie
    [scores] = ak.faithfulness(clf, [record], fractions=(0.2, 0.4, 1.0))
    full = _prob(clf, text, 1)
    assert scores.probability == pytest.approx(full, abs=1e-12)
    # ceil(0.2 * 5) = 1 -> "very"; ceil(0.4 * 5) = 2 -> "very good"; 1.0 -> everything
    without = [_prob(clf, "the movie was good", 1), _prob(clf, "the movie was", 1), _prob(clf, "", 1)]
    only = [_prob(clf, "very", 1), _prob(clf, "very good", 1), full]
    np.testing.assert_allclose(scores.comprehensiveness, [full - p for p in without], atol=1e-12)
    np.testing.assert_allclose(scores.sufficiency, [full - p for p in only], atol=1e-12)
    assert scores.sufficiency[-1] == pytest.approx(0.0, abs=1e-12)
    assert scores.aopc_comprehensiveness == pytest.approx(np.mean([full - p for p in without]), abs=1e-12)
    data = scores.to_dict()
    assert data["fractions"] == (0.2, 0.4, 1.0) and math.isclose(data["aopc_sufficiency"], scores.aopc_sufficiency)


def test_word_level_records_delete_whole_words(tiny):
    clf = tiny("bert", 2)
    text = "dogs ran"  # "dog ##s" is one word
    records = ak.explain(clf, [text], method="occlusion", word_level=True)
    assert records[0].tokens[1:3] == ("dogs", "ran")
    item = clf.tokenize(text)
    units = unit_positions(records[0], item)
    assert [len(u) for u in units] == [0, 2, 1, 0]


def test_explained_class_and_regression(tiny):
    clf = tiny("bert", 2)
    record = _record(clf, "good fun", [1.0, 0.0], view="negative")
    [scores] = ak.faithfulness(clf, [record], fractions=(0.5,))
    assert scores.view == "negative"
    assert scores.comprehensiveness[0] == pytest.approx(_prob(clf, "good fun", 0) - _prob(clf, "fun", 0), abs=1e-12)
    reg = tiny("bert", 1)
    [r] = ak.explain(reg, ["a good film"], method="gradient_x_input")
    [s] = ak.faithfulness(reg, [r], fractions=(1.0,))
    full, empty = float(_output(reg, "a good film")[0]), float(_output(reg, "")[0])
    assert s.comprehensiveness[0] == pytest.approx(full - empty, abs=1e-12)


def test_bad_fractions(tiny):
    clf = tiny("bert", 2)
    record = _record(clf, "good", [1.0])
    with pytest.raises(ak.OptionError, match=r"\(0, 1\]"):
        ak.faithfulness(clf, [record], fractions=(0.0,))
    with pytest.raises(ak.InvalidInputError):
        ak.faithfulness(clf, [record], fractions=())


def test_records_batched_together_score_as_alone(tiny):
    clf = tiny("bert", 2)
    texts = ["the movie was very good", "awful", "i love this film and the story", "boring plot"]
    records = ak.explain(clf, texts, method="gradient_x_input")
    together = ak.faithfulness(clf, records, fractions=(0.3, 0.6), batch_size=12)  # 5 variants per record: 2 per batch
    for record, joint in zip(records, together):
        [alone] = ak.faithfulness(clf, [record], fractions=(0.3, 0.6), batch_size=1)
        np.testing.assert_allclose(joint.comprehensiveness, alone.comprehensiveness, atol=1e-10)
        np.testing.assert_allclose(joint.sufficiency, alone.sufficiency, atol=1e-10)
        assert joint.probability == pytest.approx(alone.probability, abs=1e-10)


def test_max_length_perturbs_the_truncated_input_the_record_explains(tiny):
    clf = tiny("bert", 2)
    text = "the movie was very good"
    with pytest.warns(ak.TruncationWarning):
        record = _record(clf, text, [0.1, 0.9, 0.2], max_length=5)  # [CLS] the movie was [SEP]
    assert record.truncated and len(record.tokens) == 5
    with pytest.warns(ak.TruncationWarning):
        [scores] = ak.faithfulness(clf, [record], fractions=(0.33, 1.0), max_length=5)  # ceil(0.33 * 3) = 1: "movie"
    full = _prob(clf, "the movie was", 1)  # what the model saw; "very good" was cut
    assert scores.probability == pytest.approx(full, abs=1e-12)
    np.testing.assert_allclose(
        scores.comprehensiveness, [full - _prob(clf, "the was", 1), full - _prob(clf, "", 1)], atol=1e-12
    )
    np.testing.assert_allclose(scores.sufficiency, [full - _prob(clf, "movie", 1), 0.0], atol=1e-12)


def test_a_record_truncated_differently_is_refused(tiny):
    clf = tiny("bert", 2)
    text = "the movie was very good"
    with pytest.warns(ak.TruncationWarning):
        short = _record(clf, text, [0.1, 0.9, 0.2], max_length=5)
    with pytest.raises(ak.InvalidInputError, match="pass the max_length it was explained with"):
        ak.faithfulness(clf, [short], fractions=(0.5,))  # would keep "very good" in every variant, unscored
    full = _record(clf, text, [0.1, 0.9, 0.2, 0.3, 0.4])
    with pytest.warns(ak.TruncationWarning), pytest.raises(ak.InvalidInputError, match="truncated differently"):
        ak.faithfulness(clf, [full], fractions=(0.5,), max_length=5)  # "very good" scored but has nothing to delete

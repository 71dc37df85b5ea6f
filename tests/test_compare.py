"""Aligning two records and the teacher/student comparison."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_models import SPECIALS, build_checkpoint

import attribkit as ak


def _rec(tokens, offsets, segments, scores, text="unbelievable film", view="positive"):
    return ak.Attribution(
        text=text,
        pair=None,
        tokens=tokens,
        offsets=offsets,
        segments=segments,
        scores=[scores],
        views=(view,),
        labels=("negative", "positive"),
        probs=[0.2, 0.8],
        prediction="positive",
        method="hand",
        options={},
    )


def test_same_tokenizer_aligns_token_by_token():
    a = _rec(
        ["[CLS]", "un", "##believable", "film", "[SEP]"],
        [(0, 0), (0, 2), (2, 12), (13, 17), (0, 0)],
        [-1, 0, 0, 0, -1],
        [0, 1, 2, 3, 0],
    )
    aligned = ak.align(a, a)
    assert aligned.by == "tokens" and aligned.units == ("[CLS]", "un", "believable", "film", "[SEP]")
    np.testing.assert_array_equal(aligned.first, [0, 1, 2, 3, 0])


def test_different_tokenizers_align_by_character_offsets():
    a = _rec(
        ["[CLS]", "un", "##believ", "##able", "film", "[SEP]"],
        [(0, 0), (0, 2), (2, 8), (8, 12), (13, 17), (0, 0)],
        [-1, 0, 0, 0, 0, -1],
        [9, 1.0, 2.0, 4.0, 8.0, 9],
    )
    b = _rec(
        ["<s>", "unbeliev", "able", "film", "</s>"],
        [(0, 0), (0, 8), (8, 12), (13, 17), (0, 0)],
        [-1, 0, 0, 0, -1],
        [5, 0.5, -1.0, 3.0, 5],
    )
    aligned = ak.align(a, b)
    # un+believ overlap unbeliev -> one unit; able and film line up; specials dropped
    assert aligned.by == "offsets" and aligned.units == ("unbeliev", "able", "film")
    np.testing.assert_array_equal(aligned.first, [3.0, 4.0, 8.0])
    np.testing.assert_array_equal(aligned.second, [0.5, -1.0, 3.0])
    c = ak.compare_records(a, b, k=1)
    assert c.agreement["top1_overlap"] == 1.0 and c.agreement["spearman"] == pytest.approx(0.5)
    # each map scaled to max |.| = 1: teacher (3/8, 4/8, 1), student (0.5/3, -1/3, 1)
    np.testing.assert_allclose(c.differences(), [3 / 8 - 0.5 / 3, 0.5 + 1 / 3, 0.0], atol=1e-12)
    assert c.most_different(1) == [("able", pytest.approx(0.5 + 1 / 3))]


def test_align_refuses_different_texts():
    a = _rec(["x"], [(0, 1)], [0], [1.0], text="x")
    b = _rec(["y"], [(0, 1)], [0], [1.0], text="y")
    with pytest.raises(ak.InvalidInputError, match="different texts"):
        ak.align(a, b)


def _letters_model(tmp_path):
    """A tiny classifier whose tokenizer knows only letters: words split into characters."""
    from transformers import BertTokenizerFast

    directory = build_checkpoint(tmp_path / "letters", "bert", num_labels=2, seed=3)
    vocab = (
        SPECIALS + list("abcdefghijklmnopqrstuvwxyz") + ["##" + c for c in "abcdefghijklmnopqrstuvwxyz"] + list(".,!?")
    )
    for name in ("tokenizer.json", "vocab.txt"):
        (directory / name).unlink(missing_ok=True)
    BertTokenizerFast(vocab={t: i for i, t in enumerate(vocab)}, do_lower_case=True).save_pretrained(directory)
    return directory


def test_compare_models_explains_the_same_class_and_aligns_words(checkpoint_dir, tmp_path):
    teacher = ak.load_classifier(checkpoint_dir("bert", 2), device="cpu")
    student = ak.load_classifier(_letters_model(tmp_path), device="cpu")
    texts = ["the movie was good", "awful plot"]
    comparisons = ak.compare(teacher, student, texts, method="gradient_x_input")
    for c, text in zip(comparisons, texts):
        assert c.aligned_by == "offsets" and c.units == tuple(text.split())
        assert c.student.views == c.teacher.views == (c.teacher.prediction,)
        assert len(c.student.tokens) == len(text.replace(" ", "")) + 2  # one token per letter
        # pooled student scores are the sums of its letter scores per word
        letters = c.student.scores[0][1:-1].astype(np.float64)
        sums, start = [], 0
        for word in text.split():
            sums.append(letters[start : start + len(word)].sum())
            start += len(word)
        np.testing.assert_allclose(c.student_scores, sums, rtol=1e-12)
    with_gold = ak.compare(teacher, student, texts, labels=["negative", "negative"], method="gradient_x_input")
    assert all(c.teacher.views == c.student.views == ("negative",) for c in with_gold)


def test_compare_refuses_models_of_different_tasks(checkpoint_dir):
    teacher = ak.load_classifier(checkpoint_dir("bert", 2), device="cpu")
    other = ak.load_classifier(checkpoint_dir("bert", 3), device="cpu")
    with pytest.raises(ak.InvalidInputError, match="different classes"):
        ak.compare(teacher, other, ["good"])

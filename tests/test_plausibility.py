"""Plausibility against human rationales, on hand-made examples (ERASER / ferret definitions)."""

from __future__ import annotations

import numpy as np
import pytest

import attribkit as ak
from attribkit.evaluation.rationales import auprc, f1, hard_rationale, iou
from attribkit.record import Attribution


def record(tokens, offsets, segments, scores, text, pair=None):
    return Attribution(
        text=text,
        pair=pair,
        tokens=tokens,
        offsets=offsets,
        segments=segments,
        scores=np.array([scores], dtype=np.float32),
        views=("pos",),
        labels=("neg", "pos"),
        probs=np.array([0.2, 0.8]),
        prediction="pos",
        method="hand",
    )


# "unbelievably good" -> [CLS] un ##believ ##ably good [SEP]: one word, three sub-words
TEXT = "unbelievably good film"
TOKENS = ("[CLS]", "un", "##believ", "##ably", "good", "film", "[SEP]")
OFFSETS = ((0, 0), (0, 2), (2, 8), (8, 12), (13, 17), (18, 22), (0, 0))
SEGMENTS = (-1, 0, 0, 0, 0, 0, -1)


def test_word_masks_and_character_spans_cover_every_sub_word():
    r = record(TOKENS, OFFSETS, SEGMENTS, [9, 1, 1, 1, 1, 1, 9], TEXT)
    # ERASER token mask over whitespace words: "unbelievably" marked -> its three sub-words
    assert ak.rationale_from_word_mask(r, [1, 0, 0]) == [False, True, True, True, False, False, False]
    # a character span inside one sub-word marks only that sub-word; specials never count
    assert ak.rationale_from_spans(r, [(3, 5)]) == [False, False, True, False, False, False, False]
    assert ak.rationale_from_spans(r, [(13, 22)]) == [False] * 4 + [True, True, False]
    with pytest.raises(ak.InvalidInputError, match="3 whitespace-separated words"):
        ak.rationale_from_word_mask(r, [1, 0])
    with pytest.raises(ak.InvalidInputError, match="not inside the text"):
        ak.rationale_from_spans(r, [(20, 40)])


def test_pair_rationales_follow_the_segment():
    tokens = ("[CLS]", "good", "[SEP]", "good", "[SEP]")
    offsets = ((0, 0), (0, 4), (0, 0), (0, 4), (0, 0))
    r = record(tokens, offsets, (-1, 0, -1, 1, -1), [0, 1, 0, 1, 0], "good", pair="good")
    assert ak.rationale_from_spans(r, [], pair_spans=[(0, 4)]) == [False, False, False, True, False]
    assert ak.rationale_from_word_mask(r, [0], pair_mask=[1]) == [False, False, False, True, False]


def test_hard_rationale_f1_iou_by_hand():
    scores = [0.0, 0.5, -0.2, 0.9, 0.1, 0.0]
    real = [False, True, True, True, True, False]
    assert hard_rationale(scores, real, 2) == [False, True, False, True, False, False]
    # only positive scores: k = 4 still leaves the negative unit out
    assert hard_rationale(scores, real, 4) == [False, True, False, True, True, False]
    assert hard_rationale(scores, real, 4, only_positive=False) == [False, True, True, True, True, False]
    predicted, gold = [True, True, False, False], [True, False, True, False]
    assert f1(predicted, gold) == pytest.approx(0.5)  # P = 1/2, R = 1/2
    assert iou(predicted, gold) == pytest.approx(1 / 3)
    assert f1([False] * 4, gold) == 0.0 and iou([False] * 2, [False] * 2) == 0.0


def test_auprc_by_hand():
    # thresholds 0.9, 0.8, 0.4, 0.1 -> (R, P) = (0.5, 1), (0.5, 1/2), (0.5, 1/3), (1, 1/2), plus (0, 1):
    # trapezoids 0.5 * (1 + 1) / 2 + 0 + 0 + 0.5 * (1/3 + 1/2) / 2
    assert auprc([0.9, 0.8, 0.1, 0.4], [1, 0, 1, 0]) == pytest.approx(0.5 + 0.5 * (1 / 3 + 0.5) / 2)
    assert auprc([0.9, 0.8, 0.1], [1, 1, 0]) == pytest.approx(1.0)  # perfect ranking
    assert np.isnan(auprc([0.3, 0.2], [0, 0]))  # no human rationale: undefined, not 0


def test_plausibility_summary_and_iou_f1():
    a = record(TOKENS, OFFSETS, SEGMENTS, [0, 0.5, 0.4, 0.3, -0.1, 0.0, 0], TEXT)
    b = record(TOKENS, OFFSETS, SEGMENTS, [0, -0.2, -0.1, -0.3, 0.8, 0.1, 0], TEXT)
    gold = [ak.rationale_from_word_mask(a, [1, 0, 0]), ak.rationale_from_word_mask(b, [1, 0, 0])]
    scores = ak.plausibility([a, b], gold, k=3)
    # a: hard = the three sub-words of "unbelievably" = gold -> F1 1, IOU 1; b: hard = {good, film}, disjoint -> 0, 0
    assert scores.token_f1 == (1.0, 0.0) and scores.iou == (1.0, 0.0)
    assert scores.mean_token_f1 == 0.5
    # one match of 2 predicted and 2 annotated examples: P = R = 1/2
    assert scores.iou_f1 == pytest.approx(0.5)
    # a: gold ranked first by positive scores -> 1; b: negatives count as 0, ties at 0 with the gold at the end
    assert scores.auprc[0] == pytest.approx(1.0)
    assert scores.auprc[1] == pytest.approx(auprc([0, 0, 0, 0.8, 0.1], [1, 1, 1, 0, 0]))
    assert scores.to_dict()["examples"][0] == {"token_f1": 1.0, "iou": 1.0, "auprc": 1.0}
    with pytest.raises(ak.InvalidInputError, match="2 records but 1 rationales"):
        ak.plausibility([a, b], gold[:1])
    with pytest.raises(ak.OptionError, match="k must be a positive integer"):
        ak.plausibility([a], gold[:1], k=0)


@pytest.mark.slow
def test_cli_reads_rationales_and_refuses_bad_lines(checkpoint_dir, tmp_path):
    import json
    import subprocess
    import sys

    model = str(checkpoint_dir("bert", 2))
    good = tmp_path / "r.jsonl"
    good.write_text(
        json.dumps({"text": "the movie was good", "rationale_mask": [0, 0, 0, 1]})
        + "\n"
        + json.dumps(
            {"text": "a cat sat", "pair": "on the mat", "rationale_spans": [], "pair_rationale_spans": [[7, 10]]}
        )
        + "\n"
    )
    out = tmp_path / "p.json"
    command = [sys.executable, "-m", "attribkit", "plausibility", "--model", model, "--method", "occlusion"]
    done = subprocess.run(
        [*command, "--input", str(good), "--k", "2", "--json", str(out), "--no-progress"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(out.read_text())
    # the same numbers as the library on the same records
    clf = ak.load_classifier(model, device="cpu")
    records = ak.explain(clf, ["the movie was good", ("a cat sat", "on the mat")], method="occlusion")
    masks = [ak.rationale_from_word_mask(records[0], [0, 0, 0, 1]), ak.rationale_from_spans(records[1], [], [(7, 10)])]
    direct = ak.plausibility(records, masks, k=2)
    assert data["token_f1"] == pytest.approx(direct.mean_token_f1) and data["iou_f1"] == pytest.approx(direct.iou_f1)
    assert sum(masks[1]) == 1 and data["k"] == 2
    bad = tmp_path / "bad.jsonl"
    for line, message in [
        ('{"text": "good"}', "exactly one of rationale_spans or rationale_mask"),
        ('{"text": "good", "rationale_mask": [1, 0]}', "line 1: a rationale mask has 2 entries"),
        ('{"text": "good", "rationale_spans": [[0, 99]]}', "line 1: rationale span (0, 99) is not inside"),
        ("not json", "not JSON"),
    ]:
        bad.write_text(line + "\n")
        done = subprocess.run([*command, "--input", str(bad)], capture_output=True, text=True)
        assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr, done.stderr

"""The Attribution record: validation, immutability, dict and JSONL round trips."""

from __future__ import annotations

import json

import numpy as np
import pytest

import attribkit as ak


def make_record(**overrides):
    fields = {
        "text": "good film",
        "pair": None,
        "tokens": ["[CLS]", "good", "film", "[SEP]"],
        "offsets": [(0, 0), (0, 4), (5, 9), (0, 0)],
        "segments": [-1, 0, 0, -1],
        "scores": [[0.0, 0.5, -0.25, 0.0]],
        "views": ["positive"],
        "labels": ["negative", "positive"],
        "probs": [0.2, 0.8],
        "prediction": "positive",
        "method": "fast_ig",
        "options": {"steps": 1},
        "delta": [0.01],
        "truncated": False,
        "gold": "positive",
    }
    fields.update(overrides)
    return ak.Attribution(**fields)


def test_record_is_frozen_and_validated():
    record = make_record()
    with pytest.raises(AttributeError):
        record.text = "x"  # type: ignore[misc]
    with pytest.raises(ValueError):
        record.scores[0, 0] = 1.0
    with pytest.raises(ak.InvalidInputError, match="scores must be"):
        make_record(scores=[[0.0, 1.0]])
    with pytest.raises(ak.InvalidInputError, match="NaN"):
        make_record(scores=[[0.0, float("nan"), 0.0, 0.0]])
    assert record.view("positive").tolist() == [0.0, 0.5, -0.25, 0.0]


def test_dict_and_jsonl_round_trip(tmp_path, tiny):
    clf = tiny("bert", 2)
    records = ak.explain(clf, ["the movie was good", ("a cat sat", "on the mat")], method="fast_ig", steps=2)
    records.append(make_record())
    path = ak.save(records, tmp_path / "out.jsonl")
    assert not (tmp_path / "out.jsonl.partial").exists()
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[0])["method"] == "fast_ig"
    loaded = ak.load(path)
    for a, b in zip(records, loaded):
        assert a.to_dict() == b.to_dict()
        np.testing.assert_array_equal(a.scores, b.scores)


def test_load_rejects_a_bad_file(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "x"}\n')
    with pytest.raises(ak.InvalidInputError, match="bad.jsonl:1"):
        ak.load(bad)
    with pytest.raises(ak.InvalidInputError, match="no such file"):
        ak.load(tmp_path / "missing.jsonl")

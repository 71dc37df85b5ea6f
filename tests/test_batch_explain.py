"""ak.explain_to_file: the command line's resumable batch run from Python, equal to ak.explain."""

from __future__ import annotations

import numpy as np
import pytest

import attribkit as ak
from attribkit import batch_explain

TEXTS = [f"{w} movie {i}" for i, w in enumerate(["good", "bad", "fine", "awful", "great", "boring"] * 25)]


def test_the_file_holds_what_explain_returns(tiny, tmp_path):
    clf = tiny("bert", 2)
    result = ak.explain_to_file(clf, TEXTS[:10], tmp_path / "maps.jsonl", method="gradient_x_input", batch_size=4)
    assert result.path == tmp_path / "maps.jsonl" and result.records == 10 and result.resumed == 0
    direct = ak.explain(clf, TEXTS[:10], method="gradient_x_input")
    for got, want in zip(ak.load(result.path), direct):
        assert got.tokens == want.tokens
        np.testing.assert_allclose(got.scores, want.scores, rtol=1e-6, atol=1e-9)


def test_an_interrupted_run_resumes_and_another_run_is_refused(tiny, tmp_path, monkeypatch):
    clf = tiny("bert", 2)
    out = tmp_path / "maps.jsonl"
    calls = []
    real = ak.explain

    def dies_on_the_third_chunk(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(ak, "explain", dies_on_the_third_chunk)
    with pytest.raises(KeyboardInterrupt):
        ak.explain_to_file(clf, TEXTS, out, method="gradient_x_input")
    monkeypatch.setattr(ak, "explain", real)
    assert not out.exists()  # two chunks of 64 are on disk in the partial file, nothing is presented as done
    with pytest.raises(
        ak.InvalidInputError, match="made with method='gradient_x_input', this run has method='saliency'"
    ):
        ak.explain_to_file(clf, TEXTS, out, method="saliency", resume=True)
    result = ak.explain_to_file(clf, TEXTS, out, method="gradient_x_input", resume=True)
    assert result.resumed == 2 * batch_explain.CHUNK and result.records == len(TEXTS)
    assert [r.text for r in ak.load(out)] == TEXTS


@pytest.mark.parametrize(
    ("inputs", "out", "message"),
    [([], "a.jsonl", "no inputs"), (["ok"], "a.csv", "must be a .jsonl or .parquet"), ([3], "a.jsonl", "got int")],
)
def test_bad_input_is_refused_in_one_line(tiny, tmp_path, inputs, out, message):
    with pytest.raises(ak.AttribkitError, match=message):
        ak.explain_to_file(tiny("bert", 2), inputs, tmp_path / out)

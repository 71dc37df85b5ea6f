"""Soft comprehensiveness and sufficiency (Zhao & Aletras, 2023) against hand-computed perturbations."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import attribkit as ak


def _prob(clf, text, keep: torch.Tensor, target: int) -> float:
    """p(target) with the word-embedding vectors multiplied by ``keep`` ``[seq]`` (a plain forward)."""
    batch = clf.encode([text])
    with torch.no_grad():
        x = clf.layer_output(batch, "word_embeddings")
        logits = clf.forward_with_layer(batch, "word_embeddings", lambda _out: x * keep.view(1, -1, 1).to(x.dtype))
    return float(torch.softmax(logits.double(), -1)[0, target])


def _with_scores(record, values):
    scores = np.array([values], dtype=np.float32)
    return dataclasses.replace(record, scores=scores)


def test_zero_one_scores_make_the_soft_criterion_hard_and_exact(tiny):
    # min-max normalised scores of 0 and 1 give keep probabilities of exactly 0 or 1: every draw is the same
    clf = tiny("bert", 2)
    text = "the movie was really good"
    record = ak.explain(clf, [text], method="occlusion", targets=[1])[0]
    n = len(record.tokens)  # [CLS] the movie was really good [SEP]
    record = _with_scores(record, [0.0, 0.1, 0.1, 0.1, 0.1, 0.9, 0.0])  # "good" on top, the others at the minimum
    got = ak.soft_faithfulness(clf, [record], n_samples=3)[0]
    ones = torch.ones(n)
    top = torch.tensor([1.0, 0, 0, 0, 0, 1, 1])  # specials and "good" kept: sufficiency's only input
    without_top = torch.tensor([1.0, 1, 1, 1, 1, 0, 1])
    nothing = torch.tensor([1.0, 0, 0, 0, 0, 0, 1])
    p, p_s, p_c, p0 = (_prob(clf, text, keep, 1) for keep in (ones, top, without_top, nothing))
    s0 = 1 - max(0.0, p - p0)
    assert got.probability == pytest.approx(p, rel=1e-9) and got.null_probability == pytest.approx(p0, rel=1e-9)
    assert got.soft_comprehensiveness == pytest.approx(max(0.0, p - p_c) / (1 - s0), rel=1e-9)
    assert got.soft_sufficiency == pytest.approx((1 - max(0.0, p - p_s) - s0) / (1 - s0), rel=1e-9)


def test_draws_keep_elements_at_the_normalised_rate_and_are_seeded(tiny):
    clf = tiny("bert", 2)
    record = ak.explain(clf, ["the movie was really good"], method="occlusion", targets=[1])[0]
    a = ak.soft_faithfulness(clf, [record], n_samples=8, seed=1)[0]
    b = ak.soft_faithfulness(clf, [record, record], n_samples=8, seed=1)[1]
    c = ak.soft_faithfulness(clf, [record], n_samples=8, seed=2)[0]
    assert a == b and a != c
    # q per token: min-max normalised scores; the retention draw keeps each element with that probability
    from attribkit.evaluation.erasure import unit_positions
    from attribkit.evaluation.soft_erasure import retention

    item = clf.tokenize("the movie was really good")
    q, real = retention(record, unit_positions(record, item), len(item.input_ids))
    scores = record.scores[0][1:-1].astype(float)
    np.testing.assert_allclose(q[1:-1].numpy(), (scores - scores.min()) / (scores.max() - scores.min()))
    assert q[0] == q[-1] == 1 and not real[0] and not real[-1]
    kept = torch.bernoulli(q.view(1, -1, 1).expand(4000, -1, 16), generator=torch.Generator().manual_seed(0))
    np.testing.assert_allclose(kept.mean(dim=(0, 2)).numpy(), q.numpy(), atol=0.01)


def test_bad_options(tiny):
    clf = tiny("bert", 2)
    record = ak.explain(clf, ["bad movie"], method="occlusion")[0]
    with pytest.raises(ak.OptionError, match="n_samples must be a positive integer"):
        ak.soft_faithfulness(clf, [record], n_samples=0)


def test_cli_soft_rows_and_json(checkpoint_dir, tmp_path):
    import json

    from typer.testing import CliRunner

    from attribkit.cli import app

    model = str(checkpoint_dir("bert", 2))
    out = tmp_path / "f.json"
    args = ["faithfulness", "--model", model, "--text", "the movie was good", "--method", "occlusion", "--soft"]
    result = CliRunner().invoke(app, [*args, "--soft-samples", "3", "--json", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    soft = json.loads(out.read_text())["examples"][0]["soft"]
    # the soft scores have a table of their own, after the hard one, not a row under "sufficiency (lower better)"
    hard, _, soft_part = result.output.partition("soft faithfulness of occlusion")
    assert "AOPC" in hard and "soft" not in hard.split("AOPC")[1]
    assert f"{soft['soft_comprehensiveness']:.4f}" in soft_part and f"{soft['soft_sufficiency']:.4f}" in soft_part
    clf = ak.load_classifier(model, device="cpu")
    record = ak.explain(clf, ["the movie was good"], method="occlusion")[0]
    direct = ak.soft_faithfulness(clf, [record], n_samples=3)[0]
    assert soft["soft_comprehensiveness"] == pytest.approx(direct.soft_comprehensiveness, rel=1e-6)
    assert soft["soft_sufficiency"] == pytest.approx(direct.soft_sufficiency, rel=1e-6) and soft["n_samples"] == 3
    import subprocess
    import sys

    bad = subprocess.run(
        [sys.executable, "-m", "attribkit", *args, "--soft-samples", "0"], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "--soft-samples must be a positive integer" in bad.stderr
    assert "Traceback" not in bad.stderr

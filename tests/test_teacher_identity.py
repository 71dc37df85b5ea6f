"""A study teacher retrained on another CPU is the same teacher; one of another seed is not (bench/teacher_identity.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tiny_glue import write_tiny_glue

import attribkit as ak

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture
def identity(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    import teacher_identity

    return teacher_identity


def _record(digest: str, final: float, outputs: list[list[float]] | None = None) -> dict:
    record = {"weights_sha256": digest * 64, "final": final}
    return record if outputs is None else record | {"dev_outputs": outputs}


def test_same_weights_or_dev_outputs_within_tolerance_are_one_teacher(identity):
    logits = [[0.8, -0.6], [-1.2, 1.0], [0.1, 0.3]]
    assert identity.compare(_record("a", 50.0, logits), _record("a", 50.0)) == (True, "the same weights bit for bit")
    # another CPU's kernels: every output moves by at most 9e-6 (what AVX2 vs AVX-512 gave on CoLA)
    nudged = [[x + 9e-6 * (-1) ** i for i, x in enumerate(row)] for row in logits]
    same, reason = identity.compare(_record("a", 50.0, logits), _record("b", 50.0, nudged))
    assert same and reason == "max |dev output difference| 9.0e-06 <= 0.001"
    # another seed: outputs far apart, even with an equal dev metric
    moved = [[x + 0.05 for x in row[:1]] + row[1:] for row in logits]
    same, reason = identity.compare(_record("a", 50.0, logits), _record("b", 50.0, moved))
    assert not same and reason == "max |dev output difference| 5.0e-02 > 0.001"
    # within tolerance, but one dev prediction flips: not the same teacher
    tied = [[0.5, 0.5002], *logits[1:]]
    flipped = [[0.5002, 0.5], *logits[1:]]
    same, reason = identity.compare(_record("a", 50.0, tied), _record("b", 50.0, flipped))
    assert not same and reason.startswith("1 dev predictions differ")
    # a regression head (one output) has no predictions to flip
    assert identity.compare(_record("a", 80.0, [[2.5], [3.1]]), _record("b", 80.0, [[2.5004], [3.1]]))[0]
    assert identity.compare(_record("a", 80.0, [[2.5], [3.1]]), _record("b", 80.0, [[2.5]]))[1] == (
        "dev outputs of another shape"
    )


def test_a_record_without_dev_outputs_is_compared_by_its_dev_metric(identity):
    same, reason = identity.compare(_record("a", 84.9239), _record("b", 84.924, [[1.0]]))
    assert same and reason == "recorded without dev outputs; dev metric within 0.0001 <= 0.01 points"
    same, reason = identity.compare(_record("a", 84.9239), _record("b", 84.9539, [[1.0]]))
    assert not same and reason == "recorded without dev outputs; dev metric differs by 0.0300 > 0.01 points"


def test_dev_outputs_are_the_models_dev_logits(identity, checkpoint_dir, tmp_path):
    glue = write_tiny_glue(tmp_path / "glue")
    path = checkpoint_dir("bert", 2)
    outputs = identity.dev_outputs(path, "SST-2", glue)
    clf = ak.load_classifier(path, device="cpu")
    sentences = [line.split("\t")[0].strip() for line in (glue / "SST-2" / "dev.tsv").read_text().splitlines()[1:]]
    with torch.no_grad():
        expected = clf.model.eval()(**clf.tokenizer(sentences, padding=True, return_tensors="pt")).logits
    assert len(outputs) == 16 and len(outputs[0]) == 2
    assert torch.allclose(torch.tensor(outputs, dtype=expected.dtype), expected, atol=2e-7)


def test_a_record_is_found_by_digest_among_accepted_retrains_and_the_studys_own(identity, tmp_path):
    (tmp_path / "seed3.json").write_text(json.dumps({"weights_sha256": "a" * 64, "final": 30.0}))
    (tmp_path / "accepted-bbbbbbbbbbbb.json").write_text(json.dumps({"weights_sha256": "b" * 64, "final": 31.0}))
    assert identity.load_record(tmp_path, "a" * 64)["final"] == 30.0
    assert identity.load_record(tmp_path, "b" * 64)["final"] == 31.0
    assert identity.load_record(tmp_path, "c" * 64) is None

"""Narrow students by weight selection, and `attribkit export` (half precision, minimal tokenizer files)."""

from __future__ import annotations

import json
import os

import pytest
import torch
from tiny_glue import write_tiny_glue
from typer.testing import CliRunner

import attribkit as ak
from attribkit.cli import _load_plugins, app
from attribkit_distill.students import narrow_student

_load_plugins()
runner = CliRunner()


@pytest.mark.parametrize("arch", ["bert", "roberta", "electra", "distilbert"])
def test_full_width_selection_is_the_teacher(tiny, arch):
    clf = tiny(arch, 2)
    student = narrow_student(clf.model, [0, 1], 16).eval()
    batch = clf.model_inputs(clf.encode(["the movie was good", "awful"]))
    torch.testing.assert_close(student(**batch).logits, clf.model(**batch).logits, rtol=0, atol=1e-12)


def test_narrow_student_keeps_the_selected_weights(tiny):
    clf = tiny("bert", 2)  # hidden 16, 2 heads of 8, feed-forward 32
    student = narrow_student(clf.model, [1], 8)
    config = student.config
    assert (config.hidden_size, config.num_attention_heads, config.intermediate_size, config.num_hidden_layers) == (
        8,
        1,
        16,
        1,
    )
    dims = torch.linspace(0, 15, 8).round().long()  # evenly spaced residual dims
    teacher, kept = clf.model.state_dict(), student.state_dict()
    torch.testing.assert_close(
        kept["bert.embeddings.word_embeddings.weight"], teacher["bert.embeddings.word_embeddings.weight"][:, dims]
    )
    # attention keeps whole head 0 (dims 0..7) of the teacher's layer 1, reading the selected residual dims
    query = teacher["bert.encoder.layer.1.attention.self.query.weight"][:8][:, dims]
    torch.testing.assert_close(kept["bert.encoder.layer.0.attention.self.query.weight"], query)
    out = teacher["bert.encoder.layer.1.attention.output.dense.weight"][dims][:, :8]
    torch.testing.assert_close(kept["bert.encoder.layer.0.attention.output.dense.weight"], out)
    neurons = torch.linspace(0, 31, 16).round().long()
    torch.testing.assert_close(
        kept["bert.encoder.layer.0.intermediate.dense.weight"],
        teacher["bert.encoder.layer.1.intermediate.dense.weight"][neurons][:, dims],
    )
    with pytest.raises(ak.OptionError, match="multiple of the teacher's head size 8"):
        narrow_student(clf.model, [0], 12)


def test_distill_narrow_student_then_export_half_precision(checkpoint_dir, tmp_path):
    glue = write_tiny_glue(tmp_path / "glue")
    out = tmp_path / "student"
    result = runner.invoke(
        app,
        [
            "distill",
            "--teacher",
            str(checkpoint_dir("bert", 2)),
            "--task",
            "SST-2",
            "--data-dir",
            str(glue),
            "--out",
            str(out),
            "--student-layers",
            "0",
            "--student-hidden",
            "8",
            "--max-steps",
            "2",
            "--batch-size",
            "8",
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads((out / "run.json").read_text())["student_hidden"] == 8
    umask = os.umask(0)
    os.umask(umask)
    modes = {p.name: p.stat().st_mode & 0o777 for p in out.iterdir() if p.is_file()}
    assert modes["model.safetensors"] == modes["config.json"] == 0o666 & ~umask, modes  # not safetensors' 0600
    card = tmp_path / "card.md"
    card.write_text("# a card\n")
    result = runner.invoke(app, ["export", "--model", str(out), "--out", str(tmp_path / "small"), "--card", str(card)])
    assert result.exit_code == 0, result.output
    assert "Writing model shards" not in result.output and "it/s" not in result.output
    files = {p.name for p in (tmp_path / "small").iterdir()}
    # the tiny test vocabulary lists "a" and "i" twice, so vocab.txt cannot rebuild it: tokenizer.json is kept
    assert {"config.json", "model.safetensors", "tokenizer.json", "README.md"} <= files and "vocab.txt" not in files
    full = ak.load_classifier(out, device="cpu")
    small = ak.load_classifier(tmp_path / "small", device="cpu")
    assert small.dtype == torch.float32  # half precision on disk, float32 on the CPU
    assert small.tokenize("the movie was good").input_ids == full.tokenize("the movie was good").input_ids
    halved = {k: v.half().float() for k, v in full.model.state_dict().items()}
    torch.testing.assert_close(small.model.state_dict(), halved)
    again = runner.invoke(app, ["export", "--model", str(out), "--out", str(tmp_path / "small")])
    assert again.exit_code != 0 and "not empty" in str(again.exception)


def test_wordpiece_tokenizer_is_slimmed_to_vocab_txt_when_identical(minilm_path, tmp_path):
    from transformers import AutoTokenizer

    from attribkit.commands.export import _slim_tokenizer

    tokenizer = AutoTokenizer.from_pretrained(minilm_path)
    folder = tmp_path / "tok"
    tokenizer.save_pretrained(folder)
    _slim_tokenizer(tokenizer, folder)
    assert (folder / "vocab.txt").is_file() and not (folder / "tokenizer.json").exists()
    rebuilt = AutoTokenizer.from_pretrained(folder)
    text = "A gripping, beautifully acted film -- naïve, unbelievably Ünïcödé [SEP] 42!"
    assert rebuilt(text, "a pair")["input_ids"] == tokenizer(text, "a pair")["input_ids"]
    assert (
        rebuilt(text, return_offsets_mapping=True)["offset_mapping"]
        == tokenizer(text, return_offsets_mapping=True)["offset_mapping"]
    )


def test_student_from_a_pretrained_model_keeps_its_layers_and_gets_a_fresh_head(checkpoint_dir):
    import torch

    from attribkit_distill import student_from_pretrained

    source = ak.load_classifier(
        checkpoint_dir("bert", 2, seed=3, layers=3), device="cpu"
    ).model  # stands in for a pre-trained BERT
    torch.manual_seed(0)
    student = student_from_pretrained(
        str(checkpoint_dir("bert", 2, seed=3, layers=3)),
        [0, 2],
        num_labels=3,
        labels=["entailment", "neutral", "contradiction"],
    )
    assert student.config.num_hidden_layers == 2 and student.config.num_labels == 3
    assert student.config.id2label[2] == "contradiction"
    theirs, ours = source.state_dict(), student.state_dict()
    for name in ("bert.embeddings.word_embeddings.weight", "bert.embeddings.LayerNorm.weight"):
        assert torch.equal(ours[name], theirs[name])
    for kept, original in ((0, 0), (1, 2)):  # student layer 1 is the source's layer 2
        a = ours[f"bert.encoder.layer.{kept}.attention.self.query.weight"]
        assert torch.equal(a, theirs[f"bert.encoder.layer.{original}.attention.self.query.weight"])
    assert ours["classifier.weight"].shape == (3, 16)  # a new head (the source's has 2 outputs)
    torch.manual_seed(0)
    again = student_from_pretrained(str(checkpoint_dir("bert", 2, seed=3, layers=3)), [0, 2], num_labels=3)
    assert torch.equal(again.state_dict()["classifier.weight"], ours["classifier.weight"])  # seeded: reproducible
    narrow = student_from_pretrained(
        str(checkpoint_dir("bert", 2, seed=3, layers=3)), [1], num_labels=1, hidden=8, regression=True
    )
    assert narrow.config.hidden_size == 8 and narrow.config.problem_type == "regression"
    with pytest.raises(ak.OptionError, match="cannot load a pre-trained model"):
        student_from_pretrained("/no/such/model", [0], num_labels=2)

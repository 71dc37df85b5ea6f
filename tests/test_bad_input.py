"""Bad input gets an AttribkitError whose message says what to do."""

from __future__ import annotations

import warnings

import pytest
import torch

import attribkit as ak


def test_empty_or_whitespace_text(tiny):
    clf = tiny("bert", 2)
    for text in ["", "   \n", ("fine", " ")]:
        with pytest.raises(ak.InvalidInputError, match="empty or whitespace"):
            ak.explain(clf, [text], method="gradient_x_input")
    with pytest.raises(ak.InvalidInputError, match="no texts"):
        ak.explain(clf, [], method="gradient_x_input")


def test_long_text_is_truncated_with_a_warning_and_recorded(tiny):
    clf = tiny("bert", 2)  # model_max_length 64
    long_text = " ".join(["good"] * 200)
    with pytest.warns(ak.TruncationWarning, match="truncated"):
        record = ak.explain(clf, [long_text, "bad"], method="gradient_x_input")[0]
    assert record.truncated and len(record.tokens) == 64
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not ak.explain(clf, ["bad"], method="gradient_x_input")[0].truncated


def test_max_length_truncates_below_the_model_limit_and_bad_values_are_refused(tiny):
    clf = tiny("bert", 2)  # model_max_length 64
    text = " ".join(["good"] * 20)  # 22 tokens with [CLS] and [SEP]
    with pytest.warns(ak.TruncationWarning, match=r"22 tokens truncated to 8: "):  # not "the model's limit": ours
        record = ak.explain(clf, [text], method="gradient_x_input", max_length=8)[0]
    assert record.truncated and record.tokens == ("[CLS]", *["good"] * 6, "[SEP]")
    full = ak.explain(clf, [" ".join(["good"] * 6)], method="gradient_x_input")[0]  # the same 8 tokens, untruncated
    assert not full.truncated and torch.allclose(
        torch.as_tensor(record.scores), torch.as_tensor(full.scores), atol=1e-6
    )
    pair = ak.explain(clf, [(text, "bad film")], method="gradient_x_input", max_length=5)[
        0
    ]  # the shortest a pair allows
    assert pair.tokens == ("[CLS]", "good", "[SEP]", "bad", "[SEP]")
    for bad, match in [
        (0, "positive number"),
        (-3, "positive number"),
        (2.5, "positive number"),
        (2, "needs at least 3 tokens"),
    ]:
        with pytest.raises(ak.OptionError, match=match):
            ak.explain(clf, [text], method="gradient_x_input", max_length=bad)
    with pytest.raises(ak.OptionError, match="needs at least 5 tokens"):
        ak.explain(clf, [(text, "bad")], method="gradient_x_input", max_length=4)


def test_unknown_method_lists_the_choices(tiny):
    clf = tiny("bert", 2)
    with pytest.raises(ak.UnknownNameError) as info:
        ak.explain(clf, ["good"], method="gradcam")
    message = str(info.value)
    assert "unknown method 'gradcam'" in message
    for name in ("fast_ig", "integrated_gradients", "occlusion", "gradient_x_input"):
        assert name in message


@pytest.mark.parametrize(
    "targets, match",
    [
        (5, "out of range"),
        ("maybe", "unknown target class 'maybe'"),
        ("gold", "needs the gold labels"),
    ],
)
def test_bad_targets(tiny, targets, match):
    clf = tiny("bert", 2)
    with pytest.raises(ak.TargetError, match=match):
        ak.explain(clf, ["good"], method="gradient_x_input", targets=targets)


def test_targets_by_name_and_gold(tiny):
    clf = tiny("bert", 3)
    by_name = ak.explain(clf, ["good", "bad"], method="gradient_x_input", targets="neutral")
    assert [r.views for r in by_name] == [("neutral",), ("neutral",)]
    gold = ak.explain(clf, ["good", "bad"], method="gradient_x_input", targets="gold", labels=[2, "entailment"])
    assert [r.views for r in gold] == [("contradiction",), ("entailment",)]
    assert [r.gold for r in gold] == ["contradiction", "entailment"]


def test_bad_options(tiny):
    clf = tiny("bert", 2)
    with pytest.raises(ak.OptionError, match="hidden size 16"):
        ak.explain(clf, ["good"], method="fast_ig", top_k=17)
    with pytest.raises(ak.OptionError, match="unknown option"):
        ak.explain(clf, ["good"], method="occlusion", steps=3)
    with pytest.raises(ak.OptionError, match="steps >= 2"):
        ak.explain(clf, ["good"], method="integrated_gradients", steps=1)
    with pytest.raises(ak.OptionError, match="unknown layer"):
        ak.explain(clf, ["good"], method="fast_ig", layer="encoder")
    with pytest.raises(ak.OptionError, match="do not apply"):
        ak.explain(clf, ["good"], method="occlusion", top_k=2)
    with pytest.raises(ak.OptionError, match="unknown target_fn"):
        ak.explain(clf, ["good"], method="fast_ig", target_fn="softmax")


def test_regression_model(tiny):
    clf = tiny("bert", 1)
    record = ak.explain(clf, ["good"], method="fast_ig", steps=2)[0]
    assert record.views == ("output",) and record.labels == ("output",)
    with pytest.raises(ak.OptionError, match="regression"):
        ak.explain(clf, ["good"], method="fast_ig", target_fn="prob")


def test_bad_checkpoints(tmp_path, checkpoint_dir):
    from transformers import BertConfig, BertModel

    with pytest.raises(ak.ModelLoadError, match="no config.json"):
        ak.load_classifier(tmp_path)
    with pytest.raises(ak.ModelLoadError, match="no such checkpoint directory"):
        ak.load_classifier(str(tmp_path / "does-not-exist"))
    encoder = tmp_path / "encoder"
    BertModel(
        BertConfig(vocab_size=80, hidden_size=8, num_hidden_layers=1, num_attention_heads=1, intermediate_size=8)
    ).save_pretrained(encoder)
    with pytest.raises(ak.ModelLoadError, match="not a sequence-classification checkpoint"):
        ak.load_classifier(encoder)
    with pytest.raises(ak.ModelLoadError, match="tokenizer"):
        ak.load_classifier(encoder, num_labels=2)  # loads as a classifier, but has no tokenizer


def test_fresh_head_and_label_names(checkpoint_dir, minilm_path):
    clf = ak.load_classifier(checkpoint_dir("bert", 2), device="cpu")
    assert clf.labels == ("negative", "positive") and not clf.model.training
    fresh = ak.load_classifier(minilm_path, num_labels=3, device="cpu")
    assert fresh.num_labels == 3


def test_tensor_entry_validates_shapes(tiny):
    clf = tiny("bert", 2)
    batch = clf.encode(["good", "bad"])
    with pytest.raises(ak.InvalidInputError, match=r"targets must be \[batch, views\]"):
        ak.attribute(clf, batch, targets=torch.tensor([0, 1]))
    with pytest.raises(ak.InvalidInputError, match="out of range"):
        ak.attribute(clf, batch, targets=torch.tensor([[0], [2]]))


@pytest.mark.parametrize("name", ["in.tsv", "in.csv", "in.jsonl", "in.txt"])
@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_an_empty_input_file_is_said_to_be_empty(tmp_path, name, content):
    from attribkit.inputs import read_dataset

    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ak.InvalidInputError) as raised:
        ak.read_inputs(path)
    assert str(raised.value) == f"{path} is empty: give a file with one or more inputs"
    if name != "in.txt":
        with pytest.raises(ak.InvalidInputError, match="is empty: give a file with one or more inputs"):
            read_dataset(str(path), "train")


def test_a_local_file_given_as_a_dataset_reads_its_only_split_by_default(tiny, tmp_path):
    from attribkit.commands.options import read_rows

    path = tmp_path / "local.tsv"
    path.write_text("sentence\tlabel\ngood film\t1\nbad film\t0\n")
    rows = read_rows(None, None, None, str(path), None, None, None, None, None)
    assert [(r.text, r.label) for r in rows] == [("good film", 1), ("bad film", 0)]

"""GLUE readers (on a committed GLUE-layout fixture, and on the full data where present), metrics, batching."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
import torch

import attribkit as ak
from attribkit_distill.data import encode_examples, epoch_batches, subsample
from attribkit_distill.glue_metrics import average_ranks, f1, matthews_corrcoef, pearson, spearman, task_metrics
from attribkit_distill.tasks import TASKS, get_task, load_examples, split_names

#: The full GLUE data (``<TASK>/{train,dev}.tsv``), wherever it lies: set ATTRIBKIT_TEST_GLUE to its folder.
GLUE = Path(os.environ.get("ATTRIBKIT_TEST_GLUE", "") or "/nonexistent").expanduser()
needs_glue = pytest.mark.skipif(
    not GLUE.is_dir(), reason="set ATTRIBKIT_TEST_GLUE to a GLUE folder (<TASK>/{train,dev}.tsv) to run"
)
#: A few hand-written rows per task in GLUE's exact layouts (MRPC's byte-order mark, CoLA without a
#: header, STS-B's ten columns, RTE/QNLI label names): always present, so the readers are always tested.
FIXTURE = Path(__file__).resolve().parent / "data" / "glue"
FIXTURE_COUNTS = {
    ("SST-2", "train"): (6, {1: 4, 0: 2}),
    ("SST-2", "dev"): (4, {1: 2, 0: 2}),
    ("MRPC", "train"): (4, {1: 3, 0: 1}),
    ("MRPC", "dev"): (3, {1: 1, 0: 2}),
    ("RTE", "train"): (4, {0: 2, 1: 2}),
    ("RTE", "dev"): (2, {0: 1, 1: 1}),
    ("CoLA", "train"): (5, {1: 3, 0: 2}),
    ("CoLA", "dev"): (3, {1: 2, 0: 1}),
    ("QNLI", "dev"): (2, {0: 1, 1: 1}),
    ("STS-B", "train"): (3, None),
    ("STS-B", "dev"): (2, None),
}


def check_rows_and_labels(task: str, split: str, data_dir: Path, counts: dict) -> list:
    """The split has the expected number of rows, class counts (scores within 0-5), and pairs where the task has them."""
    examples = load_examples(get_task(task), split, data_dir=data_dir)
    rows, labels = counts[(task, split)]
    assert len(examples) == rows
    if labels is not None:
        assert {k: sum(e.label == k for e in examples) for k in labels} == labels
    else:
        assert all(0.0 <= e.label <= 5.0 for e in examples)
    assert all((e.pair is not None) == get_task(task).has_pair for e in examples)
    return examples


@pytest.mark.parametrize(("task", "split"), sorted(FIXTURE_COUNTS))
def test_glue_layout_fixture_reads_as_written(task, split):
    examples = check_rows_and_labels(task, split, FIXTURE, FIXTURE_COUNTS)
    if task == "STS-B":
        assert [e.label for e in examples] == ([5.0, 0.5, 4.2] if split == "train" else [4.75, 0.0])


def test_fixture_quirks_mrpc_bom_cola_headerless_rte_names():
    mrpc = load_examples(get_task("mrpc"), "dev", data_dir=FIXTURE)
    assert (mrpc[0].text, mrpc[0].pair, mrpc[0].label) == ("She won the race .", "She came first in the race .", 1)
    cola = load_examples(get_task("CoLA"), "dev", data_dir=FIXTURE)
    assert [e.text for e in cola] == ["The sailors rode home.", "Rode sailors the home.", "It rained."]
    assert [e.label for e in cola] == [1, 0, 1]  # the first row is data, not a header
    rte = load_examples(get_task("rte"), "dev", data_dir=FIXTURE)
    assert [e.label for e in rte] == [0, 1]  # entailment = 0, not_entailment = 1, as GLUE numbers them
    sst = load_examples(get_task("sst2"), "dev", data_dir=FIXTURE)
    assert sst[0].text == "it 's a gripping story "  # kept as written; the tokenizer ignores the space


# rows and label counts from the data's README
COUNTS = {
    ("SST-2", "train"): (67349, {1: 37569, 0: 29780}),
    ("SST-2", "dev"): (872, {1: 444, 0: 428}),
    ("MRPC", "train"): (3668, {1: 2474, 0: 1194}),
    ("MRPC", "dev"): (408, {1: 279, 0: 129}),
    ("RTE", "train"): (2490, {0: 1249, 1: 1241}),
    ("RTE", "dev"): (277, {0: 146, 1: 131}),
    ("CoLA", "train"): (8551, {1: 6023, 0: 2528}),
    ("CoLA", "dev"): (1043, {1: 721, 0: 322}),
    ("QNLI", "dev"): (5463, {0: 2702, 1: 2761}),
    ("STS-B", "train"): (5749, None),
    ("STS-B", "dev"): (1500, None),
}


@needs_glue
@pytest.mark.parametrize(("task", "split"), sorted(COUNTS))
def test_local_glue_files_read_as_the_readme_says(task, split):
    check_rows_and_labels(task, split, GLUE, COUNTS)


@needs_glue
def test_mrpc_bom_header_and_cola_headerless_rows():
    mrpc = load_examples(get_task("mrpc"), "dev", data_dir=GLUE)
    assert mrpc[0].text and mrpc[0].pair and mrpc[0].label in (0, 1)
    cola = load_examples(get_task("CoLA"), "dev", data_dir=GLUE)
    assert cola[0].pair is None and not cola[0].text.startswith("gj04")


def test_task_names_and_splits():
    assert get_task("SST-2") is get_task("sst2") is TASKS["sst2"]
    assert get_task("sts-b").is_regression and get_task("mnli").num_labels == 3
    assert split_names(get_task("mnli"), "dev") == ["dev_matched", "dev_mismatched"]
    assert split_names(get_task("rte"), "validation") == ["dev"]
    with pytest.raises(ak.UnknownNameError, match="SST-2"):
        get_task("sst5")
    with pytest.raises(ak.InvalidInputError, match="unknown split"):
        split_names(get_task("rte"), "dev_matched")


def test_missing_and_malformed_files_say_what_is_wrong(tmp_path):
    with pytest.raises(ak.InvalidInputError, match="does not exist"):
        load_examples(get_task("rte"), "train", data_dir=tmp_path)
    (tmp_path / "SST-2").mkdir()
    (tmp_path / "SST-2" / "train.tsv").write_text("text\tlabel\nfine\t1\n")
    with pytest.raises(ak.InvalidInputError, match="no column 'sentence'"):
        load_examples(get_task("sst2"), "train", data_dir=tmp_path)
    (tmp_path / "SST-2" / "train.tsv").write_text("sentence\tlabel\nfine\t7\n")
    with pytest.raises(ak.InvalidInputError, match="line 2"):
        load_examples(get_task("sst2"), "train", data_dir=tmp_path)


def test_metrics_match_hand_computed_values():
    # tp=2 tn=1 fp=1 fn=1: F1 = 4/6, MCC = (2-1)/sqrt(3*3*2*2) = 1/6
    p, y = [1, 1, 1, 0, 0], [1, 1, 0, 1, 0]
    assert f1(p, y) == pytest.approx(2 / 3)
    assert matthews_corrcoef(p, y) == pytest.approx(1 / 6)
    assert matthews_corrcoef([1, 1, 1], [1, 0, 1]) == 0.0
    assert average_ranks([10, 20, 20, 5]).tolist() == [2.0, 3.5, 3.5, 1.0]
    assert pearson([1, 2, 3], [2, 4, 7]) == pytest.approx(0.9933992677987828)
    # ranks x: 1,2,3,4 ; y: 1,3,2,4 -> rho = 1 - 6*2/(4*15) = 0.8
    assert spearman([1, 2, 3, 4], [10, 30, 20, 40]) == pytest.approx(0.8)
    scipy = pytest.importorskip("scipy.stats")
    rng = torch.Generator().manual_seed(0)
    a, b = torch.randint(0, 5, (50,), generator=rng).tolist(), torch.randn(50, generator=rng).tolist()
    assert spearman(a, b) == pytest.approx(scipy.spearmanr(a, b).statistic, rel=1e-12)
    # one rank implementation with the core (ak.metrics): the same value, and one stated convention for a
    # constant prediction: nan for an agreement score, 0 for a GLUE score (best-checkpoint selection needs a number)
    assert spearman(a, b) == ak.metrics.spearman(a, b) and pearson(a, b) == ak.metrics.pearson(a, b)
    assert math.isnan(ak.metrics.spearman([2.0] * 4, [1, 2, 3, 4])) and spearman([2.0] * 4, [1, 2, 3, 4]) == 0.0
    assert math.isnan(ak.metrics.pearson([2.0] * 4, [1, 2, 3, 4])) and pearson([2.0] * 4, [1, 2, 3, 4]) == 0.0
    m = task_metrics(get_task("mrpc"), p, y)
    assert m == {"f1": pytest.approx(200 / 3), "accuracy": pytest.approx(60.0)}


def test_batches_pad_and_carry_labels_and_positions(checkpoint_dir):
    from attribkit_distill.tasks import Example

    tokenizer = ak.load_classifier(checkpoint_dir("bert", 2), device="cpu").tokenizer
    data = encode_examples(tokenizer, [Example("good", None, 1), Example("the movie was really good", None, 0)])
    batch = data.batch([1, 0])
    assert batch["input_ids"].shape == (2, 7) and batch["attention_mask"].sum().item() == 7 + 3
    assert batch["labels"].tolist() == [0, 1] and batch["index"].tolist() == [1, 0]
    assert batch["input_ids"][1, 3:].tolist() == [data.pad_id] * 4
    scores = encode_examples(tokenizer, [Example("a", "b", 2.5)]).batch([0])
    assert scores["labels"].dtype == torch.float32 and "token_type_ids" in scores


def test_epoch_order_is_fixed_by_seed_and_epoch():
    a = epoch_batches(10, 3, seed=1, epoch=0)
    assert a == epoch_batches(10, 3, seed=1, epoch=0) and a != epoch_batches(10, 3, seed=1, epoch=1)
    assert sorted(i for b in a for i in b) == list(range(10)) and [len(b) for b in a] == [3, 3, 3, 1]
    items = list(range(100))
    kept = subsample(items, 10, seed=0)
    assert len(kept) == 10 and kept == sorted(kept) and kept == subsample(items, 10, seed=0)

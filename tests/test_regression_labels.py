"""Gold labels of a regression model are scores: explain, compare and the CLI carry them, never raise after the maps."""

from __future__ import annotations

import pytest

import attribkit as ak


def test_explain_and_compare_take_scores_as_gold_labels_of_a_regression_model(tiny):
    clf = tiny("bert", 1)
    texts = ["good film", "bad film"]
    for targets in ("pred", "gold"):
        records = ak.explain(clf, texts, method="gradient_x_input", labels=[3.5, 1], targets=targets)
        assert [r.gold for r in records] == ["3.5", "1"] and records[0].views == ("output",)
    plain = ak.explain(clf, texts, method="gradient_x_input")
    for got, want in zip(records, plain):  # the label changes what is recorded, not the map
        assert (got.scores == want.scores).all()
    comparisons = ak.compare(clf, clf, texts, labels=["4.25", 0.5], method="gradient_x_input")
    assert [c.teacher.gold for c in comparisons] == ["4.25", "0.5"]


@pytest.mark.parametrize("label", ["positive", None, float("nan"), True])
def test_a_regression_label_that_is_not_a_number_is_refused_before_any_work(tiny, label):
    clf = tiny("bert", 1)
    with pytest.raises(ak.TargetError, match="a regression model's gold labels are numbers"):
        ak.explain(clf, ["good film"], method="gradient_x_input", labels=[label])


def test_batch_explain_carries_scores_of_a_regression_model(checkpoint_dir, tmp_path):
    from typer.testing import CliRunner

    from attribkit.cli import app

    (tmp_path / "in.tsv").write_text("sentence\tlabel\ngood film\t3.5\nbad film\t0.25\n")
    out = tmp_path / "o.jsonl"
    args = ["explain", "--model", str(checkpoint_dir("bert", 1)), "--input", str(tmp_path / "in.tsv")]
    result = CliRunner().invoke(app, [*args, "--out", str(out), "--method", "gradient_x_input", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert [r.gold for r in ak.load(out)] == ["3.5", "0.25"]

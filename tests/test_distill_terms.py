"""Objective terms by name: parsing, the old spellings, a new term as one registered function, the paper run."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest
from torch import nn

import attribkit as ak
from attribkit_distill.command_setup import build_objective
from attribkit_distill.objective import describe
from attribkit_distill.presets import DISTILL_PRESETS
from attribkit_distill.terms import TERMS, parse_objective, register_term


@pytest.mark.parametrize(
    ("text", "terms"),
    [
        ("kd", ("kd",)),
        ("adkd", ("kd", "adkd")),
        ("kd+adkd", ("kd", "adkd")),
        ("iit", ("kd", "iit")),
        ("adkd+iit", ("kd", "adkd", "iit")),
        ("kd+adkd+iit", ("kd", "adkd", "iit")),
        ("iit+adkd", ("kd", "iit", "adkd")),
    ],
)
def test_objectives_parse_into_registered_terms_with_kd_always_in(text, terms):
    assert parse_objective(text) == terms


@pytest.mark.parametrize(("text", "message"), [("kd+kd", "names a term twice"), ("kd++iit", "an empty term")])
def test_bad_objectives_are_one_clear_error(text, message):
    with pytest.raises(ak.OptionError, match=message):
        parse_objective(text)


def test_old_and_new_spellings_build_the_same_objective():
    preset = DISTILL_PRESETS["sst2"]
    for old, new in (("adkd", "kd+adkd"), ("adkd+iit", "kd+adkd+iit"), ("iit", "kd+iit")):
        a, _ = build_objective(old, preset, hidden=384, cross_tokenizer=False, epochs=3)
        b, _ = build_objective(new, preset, hidden=384, cross_tokenizer=False, epochs=3)
        assert describe(a) == describe(b) and list(a.extra) == list(b.extra)


def test_a_new_term_is_one_registered_function(monkeypatch):
    monkeypatch.setattr("attribkit_distill.terms.TERMS", dict(TERMS))

    class Zero(nn.Module):
        def forward(self, student, teacher, batch):
            return next(student.parameters()).sum() * 0

    @register_term("zero_term", summary="adds nothing")
    def zero_term(settings):
        return 0.5, Zero()

    objective, _ = build_objective("kd+zero_term", DISTILL_PRESETS["sst2"], hidden=384, cross_tokenizer=False, epochs=3)
    assert objective.extra_weights == {"zero_term": 0.5} and isinstance(objective.extra["zero_term"], Zero)
    with pytest.raises(ak.DuplicateNameError):
        register_term("zero_term", summary="again")(zero_term)


@pytest.fixture()
def paper_run():
    path = Path(__file__).resolve().parents[1] / "bench" / "paper_run.py"
    spec = importlib.util.spec_from_file_location("paper_run_under_test", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def test_the_paper_run_keeps_the_papers_batch_over_processes_and_selects_mnli_on_both_dev_sets(paper_run):
    assert paper_run.per_device_batch(32, 1) == 32 and paper_run.per_device_batch(32, 4) == 8
    with pytest.raises(SystemExit, match="does not split over 3 processes"):
        paper_run.per_device_batch(32, 3)

    class Evaluated:
        def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):
            return {"eval_dev_matched_score": 80.0, "eval_dev_mismatched_score": 83.0, "eval_loss": 0.5}

    trainer = type("T", (paper_run.MeanOfDevSets, Evaluated), {})()
    assert trainer.evaluate()["eval_score"] == 81.5  # the CLI loop's choice: the mean of the dev sets


def test_the_paper_run_builds_its_objectives_through_the_same_code(paper_run):
    module = paper_run
    preset = DISTILL_PRESETS["mrpc"]
    for row, objective in (("kd", "kd"), ("adkd", "kd+adkd"), ("kd_iit", "kd+iit"), ("adkd_iit", "kd+adkd+iit")):
        cli, _ = build_objective(objective, preset, hidden=768, cross_tokenizer=False, epochs=math.ceil(preset.epochs))
        paper = module.objective_for(row, preset, 768)
        assert describe(paper) == describe(cli), row

"""Modules that moved keep their old paths: same objects, one DeprecationWarning naming the new home."""

from __future__ import annotations

import importlib

import pytest

MOVED = {
    "attribkit.types": ("attribkit.record", "Attribution"),
    "attribkit.batch": ("attribkit.record_writer", "RecordWriter"),
    "attribkit.erasure": ("attribkit.evaluation.erasure", "faithfulness"),
    "attribkit.soft_erasure": ("attribkit.evaluation.soft_erasure", "soft_faithfulness"),
    "attribkit.rationales": ("attribkit.evaluation.rationales", "plausibility"),
    "attribkit.sanity": ("attribkit.evaluation.sanity", "randomization_check"),
    "attribkit_distill.train": ("attribkit_distill.training_loop", "train"),
    "attribkit_distill.trainer": ("attribkit_distill.hf_trainer", "AttributionDistillationTrainer"),
}


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_old_module_path_serves_the_same_object_with_a_deprecation_warning(old):
    new, name = MOVED[old]
    shim = importlib.import_module(old)
    with pytest.warns(DeprecationWarning, match=f"^{old} moved to {new}: import {name} from {new}"):
        value = getattr(shim, name)
    assert value is getattr(importlib.import_module(new), name)
    with pytest.raises(AttributeError, match=f"module '{old}' has no attribute 'no_such_name'"):
        shim.no_such_name  # noqa: B018


def test_from_import_of_an_old_path_works():
    with pytest.warns(DeprecationWarning):
        from attribkit.types import Attribution
    from attribkit import Attribution as public

    assert Attribution is public


def test_the_public_metrics_module_is_the_evaluation_one_whichever_path_came_first(monkeypatch):
    import sys

    import attribkit as ak
    from attribkit.evaluation import metrics

    monkeypatch.delitem(sys.modules, "attribkit.metrics", raising=False)
    if "metrics" in vars(ak):
        monkeypatch.delattr(ak, "metrics")
    with pytest.warns(DeprecationWarning, match="^attribkit.metrics moved to attribkit.evaluation.metrics"):
        old = importlib.import_module("attribkit.metrics")
    assert old is metrics
    assert ak.metrics is metrics

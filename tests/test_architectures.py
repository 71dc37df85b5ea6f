"""One table of architecture facts: the built-in entries, docs/architecture.md's example, and the fallbacks."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from torch import nn

import attribkit as ak
from attribkit.architectures import _ARCHITECTURES, first_block

DOC = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"


def test_the_docs_example_registers_a_family_whose_blocks_are_then_found():
    [code] = [
        b for b in re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S) if "register_architecture" in b
    ]
    try:
        exec(compile(code, str(DOC), "exec"), {"__name__": "architecture_example"})
        config = SimpleNamespace(model_type="my-encoder", num_layers=2)
        spec = ak.architecture_of(config)
        assert spec is not None and spec.layers == ("encoder", "blocks") and not spec.attnlrp
        base = nn.Module()
        base.encoder = nn.Module()
        base.encoder.blocks = nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 2)])
        owner, name, field = ak.find_layer_list(base, config)
        assert owner is base.encoder and name == "blocks" and field == "num_layers"
        assert first_block(base) is base.encoder.blocks[0]
        with pytest.raises(ak.DuplicateNameError, match="'my-encoder' is registered already"):
            ak.register_architecture(spec)
    finally:
        _ARCHITECTURES.pop("my-encoder", None)


def test_the_built_in_table_holds_the_facts_that_were_spread_over_six_modules(tiny):
    assert ak.architectures_supporting("attnlrp") == [
        "bert", "camembert", "deberta-v2", "distilbert", "electra", "roberta", "xlm-roberta"
    ]  # fmt: skip
    assert ak.architectures_supporting("narrowable") == [
        "bert", "camembert", "distilbert", "electra", "roberta", "xlm-roberta"
    ]  # fmt: skip
    roberta = tiny("roberta", 2)  # positions start after the padding id: 66 positions, pad 0 -> 64 tokens
    assert roberta.model.config.max_position_embeddings == 66 and roberta.max_length == 64
    distilbert = tiny("distilbert", 2)
    owner, name, field = ak.find_layer_list(distilbert.model.base_model, distilbert.model.config)
    assert (name, field) == ("layer", "n_layers") and owner is distilbert.model.base_model.transformer


def test_an_unregistered_family_with_a_known_layout_still_works(tiny):
    clf = tiny("bert", 2)
    renamed = SimpleNamespace(model_type="bert-like-but-unregistered")
    owner, name, field = ak.find_layer_list(clf.model.base_model, renamed)  # found by the registered paths
    assert owner is clf.model.base_model.encoder and (name, field) == ("layer", "num_hidden_layers")
    assert ak.find_layer_list(nn.Module(), renamed) is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"model_types": (), "layers": ("h",)}, "at least one model_type"),
        ({"model_types": ("x",), "layers": ()}, "attribute path"),
        ({"model_types": ("x",), "layers": ("h",), "width_fields": ("a", "b", "c")}, "needs head_outputs"),
    ],
)
def test_a_malformed_spec_is_refused_in_one_line(fields, message):
    with pytest.raises(ak.OptionError, match=message):
        ak.ArchitectureSpec(**fields)


def test_attnlrp_names_the_families_it_supports_for_any_other(tiny, monkeypatch):
    clf = tiny("bert", 2)
    monkeypatch.setattr(clf.model.config, "model_type", "gpt2")
    with pytest.raises(ak.OptionError, match=r"attnlrp supports bert, camembert, .* for now; gpt2"):
        ak.explain(clf, "good", method="attnlrp")

"""The method registry: explicit registration, no silent overwrite, entry-point plugins."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

import attribkit as ak
from attribkit.methods.base import METHODS, MethodResult
from attribkit.registry import Registry


def test_duplicate_names_raise_and_unknown_names_list_choices():
    registry: Registry[object] = Registry("widget")
    registry.register("first")(object)
    with pytest.raises(ak.DuplicateNameError, match="already registered"):
        registry.register("first")(int)
    with pytest.raises(ak.UnknownNameError, match="choose one of: first"):
        registry.get("second")
    with pytest.raises(ak.DuplicateNameError, match="snake_case"):
        registry.register("Not Snake")


def test_builtin_names():
    assert set(ak.list_methods()) >= {"integrated_gradients", "fast_ig", "occlusion", "gradient_x_input"}
    with pytest.raises(ak.DuplicateNameError):
        ak.register_method("fast_ig")(type("Other", (), {}))


def test_entry_point_plugin_is_found(monkeypatch, tiny):
    class Constant(ak.AttributionMethod):
        name = "constant_plugin"
        granularity = "tokens"

        def _scores(self, batch, targets, *, create_graph, return_delta):
            mask = batch["attention_mask"].double()
            return MethodResult(mask[:, None, :].expand(-1, targets.shape[1], -1).clone())

    fake = SimpleNamespace(name="constant_plugin", load=lambda: Constant)
    monkeypatch.setattr("attribkit.registry.entry_points", lambda group: [fake] if group == "attribkit.methods" else [])
    monkeypatch.setattr(METHODS, "_plugins_loaded", False)
    monkeypatch.setattr(METHODS, "_entries", dict(METHODS._entries))
    assert "constant_plugin" in ak.list_methods()
    record = ak.explain(tiny("bert", 2), ["good film"], method="constant_plugin")[0]
    assert record.scores.tolist() == [[1.0, 1.0, 1.0, 1.0]]

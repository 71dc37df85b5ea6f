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
    for bad in ("Not Snake", "", "9lives", "has-dash", None):
        with pytest.raises(ak.OptionError, match="must be a snake_case identifier"):
            registry.register(bad)  # type: ignore[arg-type]


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


def test_the_decorator_names_the_method_once(monkeypatch, tiny):
    monkeypatch.setattr(METHODS, "_entries", dict(METHODS._entries))

    @ak.register_method("nameless_method")
    class Nameless(ak.AttributionMethod):
        granularity = "tokens"

        def _scores(self, batch, targets, *, create_graph, return_delta):
            raise NotImplementedError

    assert Nameless.name == "nameless_method"
    with pytest.raises(ak.OptionError, match="method 'nameless_method' is not differentiable"):
        ak.attribute(tiny("bert", 2), tiny("bert", 2).encode(["good"]), method="nameless_method", create_graph=True)
    assert all(ak.get_method(name).name == name for name in ak.list_methods())


def test_a_plugin_that_fails_to_load_is_skipped_with_a_warning_and_the_others_load(monkeypatch, tiny):
    class Constant(ak.AttributionMethod):
        granularity = "tokens"

        def _scores(self, batch, targets, *, create_graph, return_delta):
            mask = batch["attention_mask"].double()
            return MethodResult(mask[:, None, :].expand(-1, targets.shape[1], -1).clone())

    def broken():
        raise ImportError("No module named 'missing_dependency'")

    plugins = [
        SimpleNamespace(name="broken_plugin", value="broken_pkg.methods:Broken", load=broken),
        SimpleNamespace(name="working_plugin", value="good_pkg.methods:Constant", load=lambda: Constant),
    ]
    monkeypatch.setattr(
        "attribkit.registry.entry_points", lambda group: plugins if group == "attribkit.methods" else []
    )
    monkeypatch.setattr(METHODS, "_plugins_loaded", False)
    monkeypatch.setattr(METHODS, "_entries", dict(METHODS._entries))
    with pytest.warns(UserWarning) as caught:
        names = ak.list_methods()
    assert "working_plugin" in names and "broken_plugin" not in names and "fast_ig" in names
    assert [str(w.message) for w in caught] == [
        "method plugin 'broken_plugin' (broken_pkg.methods:Broken) could not be loaded and is skipped: "
        "No module named 'missing_dependency'"
    ]
    assert Constant.name == "working_plugin"  # named by its entry point

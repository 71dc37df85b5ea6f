"""The model-parameter randomisation check (Adebayo et al., 2018)."""

from __future__ import annotations

import pytest
import torch

import attribkit as ak
from attribkit.evaluation.sanity import randomization_blocks, randomization_check
from attribkit.methods import METHODS, AttributionMethod, MethodResult

TEXTS = ["the movie was really good", "a cat sat on the mat", "i like it very much and so do you"]


@pytest.mark.parametrize("arch", ["bert", "roberta", "distilbert", "electra", "deberta-v2"])
def test_blocks_cover_every_weight_from_the_head_down(tiny, arch):
    model = tiny(arch, 2).model
    blocks = randomization_blocks(model)
    labels = [label for label, _ in blocks]
    assert labels[0] == "head" and labels[-1] == "embeddings"
    assert labels[1:-1] == [f"layer {i}" for i in reversed(range(len(labels) - 2))] and len(labels) == 4
    prefixes = [p for _, block in blocks for p in block]
    for name, _ in model.named_parameters():
        owners = [p for p in prefixes if name.startswith(p + ".")]
        assert len(owners) == 1, (name, owners)


def test_a_method_that_ignores_the_model_is_caught(tiny, monkeypatch):
    monkeypatch.setattr(METHODS, "_entries", dict(METHODS._entries))

    @ak.register_method("token_position")
    class TokenPosition(AttributionMethod):  # scores that depend on the input only
        granularity = "tokens"

        def _scores(self, batch, targets, *, create_graph, return_delta):
            positions = torch.arange(batch["input_ids"].shape[1], dtype=torch.float64).expand_as(batch["input_ids"])
            scores = (positions * batch["attention_mask"])[:, None, :].expand(-1, targets.shape[1], -1)
            return MethodResult(scores.clone())

    clf = tiny("bert", 2)
    check = randomization_check(clf, TEXTS, method="token_position", cascade=True)
    assert check.steps == ("head", "layer 1", "layer 0", "embeddings")
    assert all(v == pytest.approx(1.0) for row in check.correlations for v in row)


def test_gradient_maps_change_with_the_weights_and_the_model_is_left_alone(tiny):
    clf = tiny("bert", 2)
    before = {n: p.clone() for n, p in clf.model.named_parameters()}
    check = randomization_check(clf, TEXTS, method="gradient_x_input", seed=1)
    again = randomization_check(clf, TEXTS, method="gradient_x_input", seed=1)
    assert check == again and check.steps == ("all",)
    assert check.median[0] < 0.9  # a fresh random model's maps are not the trained model's
    for name, p in clf.model.named_parameters():
        assert torch.equal(p, before[name]), name
    data = check.to_dict()
    assert data["method"] == "gradient_x_input" and len(data["correlations"][0]) == 3

"""AttnLRP with create_graph=True: the rules' relevance, and a loss on it differentiates truly.

The rules replace the backward of products, non-linearities and normalisations; a second-order pass
through that graph would differentiate the replaced backward. The finite differences below are of the
rules' own (non-differentiable) relevance, so they check the true gradient of the map.
"""

from __future__ import annotations

import pytest
import torch

import attribkit as ak
from attribkit.methods.attnlrp_graph import DualRules

TEXTS = ["the movie was really good", "an awful plot"]
TARGETS = torch.tensor([[1], [0]])


def relevance(clf: ak.Classifier, batch, *, create_graph: bool, target_fn: str = "logit", layer: str = "embeddings"):
    return ak.attribute(
        clf, batch, targets=TARGETS, method="attnlrp", layer=layer, target_fn=target_fn, create_graph=create_graph
    )


@pytest.mark.parametrize("arch", ["bert", "roberta", "electra", "distilbert", "deberta-v2"])
@pytest.mark.parametrize("target_fn", ["logit", "log_prob"])
def test_the_differentiable_relevance_equals_the_rules(tiny, arch, target_fn):
    clf = tiny(arch, 2)
    batch = clf.encode(TEXTS)
    plain = relevance(clf, batch, create_graph=False, target_fn=target_fn)
    graph = relevance(clf, batch, create_graph=True, target_fn=target_fn)
    assert graph.requires_grad and not plain.requires_grad
    assert plain.abs().max() > 1e-3  # not a vanishing map
    torch.testing.assert_close(graph.detach(), plain, rtol=1e-9, atol=1e-12)


def loss(clf: ak.Classifier, batch, *, create_graph: bool, layer: str) -> torch.Tensor:
    scores = relevance(clf, batch, create_graph=create_graph, target_fn="log_prob", layer=layer).sum(-1)
    weights = torch.linspace(-1, 1, scores.shape[-1], dtype=scores.dtype)
    return (scores**2 * weights).sum()


@pytest.mark.parametrize("layer", ["embeddings", "word_embeddings"])
def test_gradients_of_a_loss_on_the_relevance_match_finite_differences(tiny, layer):
    clf = tiny("bert", 2)
    batch = clf.encode(TEXTS)
    params = dict(clf.model.named_parameters())
    probes = [
        ("classifier.weight", (1, 3)),
        ("bert.encoder.layer.0.attention.self.query.weight", (2, 5)),  # through the uniform rule on Q K^T
        ("bert.encoder.layer.0.attention.self.value.weight", (3, 1)),  # through the attention-weighted values
        ("bert.encoder.layer.1.intermediate.dense.weight", (4, 1)),  # through the identity rule on GELU
        ("bert.encoder.layer.1.output.LayerNorm.weight", (6,)),  # through the held standard deviation
        ("bert.embeddings.word_embeddings.weight", (int(batch["input_ids"][0, 2]), 0)),
    ]
    clf.model.zero_grad()
    loss(clf, batch, create_graph=True, layer=layer).backward()
    eps = 1e-6
    for name, index in probes:
        p = params[name]
        analytic = p.grad[index].item()
        with torch.no_grad():
            original = p[index].item()
            p[index] = original + eps
            up = loss(clf, batch, create_graph=False, layer=layer).item()
            p[index] = original - eps
            down = loss(clf, batch, create_graph=False, layer=layer).item()
            p[index] = original
        numeric = (up - down) / (2 * eps)
        assert abs(numeric) > 1e-8, name  # the probe moves the loss: the comparison is not vacuous
        assert analytic == pytest.approx(numeric, rel=1e-5, abs=1e-9), name


def test_differentiating_through_the_rules_backward_would_be_wrong(tiny):
    # why the twin graph exists: create_graph through the rules' replaced backward gives another gradient
    from attribkit.methods.attnlrp import attnlrp_rules

    clf = tiny("bert", 2)
    batch = clf.encode(TEXTS)
    param = dict(clf.model.named_parameters())["bert.encoder.layer.0.attention.self.query.weight"]
    clf.model.zero_grad()
    loss(clf, batch, create_graph=True, layer="embeddings").backward()
    true = param.grad.clone()
    x = clf.layer_output(batch, "embeddings")
    with attnlrp_rules(clf.model):
        param.requires_grad_(True)
        path = x.detach().requires_grad_(True)
        logits = clf.forward_with_layer(batch, "embeddings", lambda _out: path)
    (grad,) = torch.autograd.grad(torch.log_softmax(logits, -1).gather(1, TARGETS).sum(), path, create_graph=True)
    scores = (path * grad).sum(-1)
    weights = torch.linspace(-1, 1, scores.shape[-1], dtype=scores.dtype)
    (naive,) = torch.autograd.grad((scores**2 * weights).sum(), param)
    assert (naive - true).abs().max() > 1e-2 * true.abs().max()


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (torch.exp, "exp"),
        (lambda x: torch.max(x, dim=0), "max"),  # values and indices: the values need a rule too
        (lambda x: x.__setitem__(0, x[1]), "writing into an activation"),
    ],
)
def test_an_operation_without_a_rule_is_refused_in_one_line(call, name):
    # a silent constant would be a wrong gradient: every call on activations has a rule or is refused
    x = torch.randn(3, dtype=torch.float64, requires_grad=True)
    with pytest.raises(ak.OptionError, match=f"no rule for .*{name}"), DualRules(x, torch.zeros_like(x)):
        call(x.clone())


def test_dropout_uses_one_mask_for_the_forward_and_its_twin():
    torch.manual_seed(0)
    x = torch.randn(200, dtype=torch.float64, requires_grad=True)
    x_rule = torch.zeros_like(x, requires_grad=True)
    with DualRules(x, x_rule) as rules:
        out = torch.nn.functional.dropout(x, p=0.5, training=True)
        twin = rules.twin(out)
    (grad,) = torch.autograd.grad(twin.sum(), x_rule)
    kept = out.detach() != 0
    assert 50 < int(kept.sum()) < 150
    torch.testing.assert_close(grad, kept.to(x.dtype) * 2, rtol=0, atol=0)

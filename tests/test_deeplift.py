"""DeepLIFT through Captum: plain gradient x (input - baseline) where no nonlinearity module is hooked, and
the Rescale rule at BERT's pooler tanh, both against hand computations with autograd."""

from __future__ import annotations

import pytest
import torch

import attribkit as ak

TEXTS = ["the movie was good", "an awful plot and boring actors", "fun"]


def _by_hand(clf, batch, targets, layer, baseline_z, rescale_pooler):
    """(x - x') * the DeepLIFT multiplier, computed with autograd: the gradient at x, except through BERT's
    pooler tanh, whose derivative is replaced by the secant slope between input and baseline."""
    x = clf.layer_output(batch, layer).detach()
    captured = {}

    def keep(_m, _i, out):
        captured["p"] = out

    handle = clf.model.bert.pooler.dense.register_forward_hook(keep) if rescale_pooler else None
    try:
        if rescale_pooler:
            with torch.no_grad():
                clf.forward_with_layer(batch, layer, lambda _o: baseline_z)
                p_base = captured["p"].detach()
        z = x.clone().requires_grad_(True)
        logits = clf.forward_with_layer(batch, layer, lambda _o: z)
    finally:
        if handle is not None:
            handle.remove()
    out = []
    for i in range(x.shape[0]):
        t = int(targets[i, 0])
        if rescale_pooler:
            p = captured["p"]
            slope = (torch.tanh(p[i]) - torch.tanh(p_base[i])) / (p[i] - p_base[i])
            weight = clf.model.classifier.weight[t]
            f = (weight * slope.detach() * p[i]).sum()  # linear in p with the Rescale multiplier
        else:
            f = logits[i, t]
        (grad,) = torch.autograd.grad(f, z, retain_graph=True)
        out.append(((x - baseline_z) * grad)[i])
    return torch.stack(out)[:, None] * batch["attention_mask"][:, None, :, None]


@pytest.mark.parametrize("arch", ["roberta", "distilbert", "electra"])
@pytest.mark.parametrize("layer", ["embeddings", "word_embeddings"])
def test_without_hooked_nonlinearities_deeplift_is_gradient_times_difference(tiny, arch, layer):
    clf = tiny(arch, 2)
    batch = clf.encode(TEXTS)
    targets = torch.tensor([[0], [1], [1]])
    got = ak.attribute(clf, batch, targets=targets, method="deeplift", layer=layer)
    from attribkit.methods.baselines import baseline_output

    with torch.no_grad():
        x = clf.layer_output(batch, layer)
        base = baseline_output(clf, batch, layer, "pad" if layer == "word_embeddings" else "zero", x)
    want = _by_hand(clf, batch, targets, layer, base, rescale_pooler=False)
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)
    if layer == "embeddings":  # zero baseline: exactly gradient x input
        gxi = ak.attribute(clf, batch, targets=targets, method="gradient_x_input", layer=layer)
        torch.testing.assert_close(got, gxi, rtol=1e-9, atol=1e-12)


def test_rescale_rule_at_berts_pooler_tanh(tiny):
    clf = tiny("bert", 2)
    batch = clf.encode(TEXTS)
    targets = torch.tensor([[1], [0], [1]])
    got = ak.attribute(clf, batch, targets=targets, method="deeplift", layer="embeddings", baseline="zero")
    x = clf.layer_output(batch, "embeddings").detach()
    want = _by_hand(clf, batch, targets, "embeddings", torch.zeros_like(x), rescale_pooler=True)
    torch.testing.assert_close(got, want, rtol=1e-8, atol=1e-12)
    plain = ak.attribute(clf, batch, targets=targets, method="gradient_x_input", layer="embeddings")
    assert (got - plain).abs().max() > 1e-3  # the Rescale rule changed the map (not vacuous)

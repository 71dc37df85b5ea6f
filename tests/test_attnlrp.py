"""AttnLRP: conservation with the bias terms accounted for, and each rule against its closed form.

The comparison with lxt, the reference implementation, is tests/test_attnlrp_reference.py (a committed fixture).
"""

from __future__ import annotations

import pytest
import torch

import attribkit as ak
from attribkit.methods.attnlrp import AttnLRPMode, BiasTracker, attnlrp_rules, eager_attention

TEXT = "the movie was really good"


def relevance_and_biases(clf, layer, rules=True):
    """Input relevance (x * grad under the rules) and the relevance the bias terms absorbed, for logit 1."""
    batch = clf.encode([TEXT])
    x = clf.layer_output(batch, layer).detach().requires_grad_(True)
    tracker = BiasTracker()
    if rules:
        with attnlrp_rules(clf.model, tracker):
            logits = clf.forward_with_layer(batch, layer, lambda _out: x)
    else:
        clf.model.requires_grad_(False)
        with eager_attention(clf.model), _BiasesOnly(tracker):
            logits = clf.forward_with_layer(batch, layer, lambda _out: x)
    logits[0, 1].backward()
    return float((x * x.grad).sum().detach()), float(tracker.total()), float(logits[0, 1].detach())


class _BiasesOnly(AttnLRPMode):
    """Tracks the biases but applies no rule: plain gradient x input."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.nn.functional.linear or func is torch.nn.functional.embedding:
            return super().__torch_function__(func, types, args, kwargs)
        if func is torch.nn.functional.layer_norm:
            out = func(*args, **kwargs)
            bias = args[3] if len(args) > 3 else kwargs.get("bias")
            if bias is not None:
                self.tracker.record(out, bias.expand_as(out))
            return out
        return func(*args, **kwargs)


@pytest.mark.parametrize("arch", ["bert", "roberta", "electra", "distilbert", "deberta-v2"])
@pytest.mark.parametrize("layer", ["embeddings", "word_embeddings"])
def test_relevance_is_conserved_up_to_the_bias_terms(tiny, arch, layer):
    # the paper: relevance is conserved layer by layer except for what the bias terms absorb
    clf = tiny(arch, 2)
    inputs, biases, logit = relevance_and_biases(clf, layer)
    assert inputs + biases == pytest.approx(logit, rel=1e-9, abs=1e-12)
    assert abs(biases) > 1e-3 * abs(logit)  # the biases do absorb a share: the check is not vacuous


def test_without_the_rules_gradient_x_input_is_not_conserved(tiny):
    clf = tiny("bert", 2)
    inputs, biases, logit = relevance_and_biases(clf, "embeddings", rules=False)
    assert abs(inputs + biases - logit) > 1e-3 * abs(logit)


def test_explain_gives_the_rules_relevance(tiny):
    clf = tiny("bert", 2)
    record = ak.explain(clf, [TEXT], method="attnlrp", targets=[1])[0]
    inputs, _, _ = relevance_and_biases(clf, "word_embeddings")
    assert float(record.scores.sum()) == pytest.approx(inputs, rel=1e-6)
    assert record.options["layer"] == "word_embeddings" and record.options["target_fn"] == "logit"
    # the model's attention implementation is restored afterwards
    assert clf.model.config._attn_implementation == "sdpa"


def test_a_product_of_two_activations_gives_each_operand_half_of_its_relevance():
    # AttnLRP's uniform rule; giving all of it to one operand would conserve relevance too, and fail here
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(3, 4, generator=generator, dtype=torch.float64).requires_grad_(True)
    b = torch.randn(3, 4, generator=generator, dtype=torch.float64).requires_grad_(True)
    with AttnLRPMode(BiasTracker()):
        out = a * b
    out.sum().backward()
    half = (a * b).detach() / 2
    torch.testing.assert_close(a * a.grad, half, rtol=1e-12, atol=0)
    torch.testing.assert_close(b * b.grad, half, rtol=1e-12, atol=0)


def test_softmax_passes_relevance_to_the_attention_scores_unlike_cp_lrp():
    # out = softmax(x) @ v, explained by sum(out): AttnLRP's softmax rule (the gradient, x * grad in this form)
    # with the uniform rule on the product gives x_i * s_i * (c_i - sum_k s_k c_k) / 2, c_i = sum_j v_ij;
    # CP-LRP holds the softmax constant, so the scores would get none (and the values all of it)
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(5, generator=generator, dtype=torch.float64).requires_grad_(True)
    v = torch.randn(5, 3, generator=generator, dtype=torch.float64).requires_grad_(True)
    with AttnLRPMode(BiasTracker()):
        out = torch.softmax(x, dim=-1) @ v
    out.sum().backward()
    s, c = torch.softmax(x, dim=-1).detach(), v.sum(dim=1).detach()
    expected = x.detach() * s * (c - (s * c).sum()) / 2
    assert expected.abs().max() > 1e-2  # not a case where the closed form vanishes
    torch.testing.assert_close(x * x.grad, expected, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(v * v.grad, (s[:, None] * v / 2).detach(), rtol=1e-12, atol=0)

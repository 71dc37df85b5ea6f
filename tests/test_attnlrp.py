"""AttnLRP: conservation with the bias terms accounted for, the rules' effect, and lxt where it runs."""

from __future__ import annotations

import numpy as np
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


LXT_SCRIPT = """
import json, sys
import torch
import transformers.models.bert.modeling_bert as modeling_bert
from lxt.efficient import monkey_patch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
folder, text = sys.argv[1:3]
monkey_patch(modeling_bert)  # patches transformers in this process only
model = AutoModelForSequenceClassification.from_pretrained(folder, attn_implementation="eager").double().eval()
batch = AutoTokenizer.from_pretrained(folder)([text], return_tensors="pt")
embeds = model.get_input_embeddings()(batch["input_ids"]).detach().requires_grad_(True)
model(inputs_embeds=embeds, attention_mask=batch["attention_mask"]).logits[0, 1].backward()
print(json.dumps((embeds * embeds.grad).sum(-1)[0].detach().tolist()))
"""


def test_equals_lxt_where_lxt_supports_the_installed_transformers(checkpoint_dir):
    """lxt (the AttnLRP reference) in its own process: its monkey patch must not reach the other tests."""
    import json
    import subprocess
    import sys

    lxt = pytest.importorskip("lxt", reason="lxt (the AttnLRP reference) is not installed")
    folder = checkpoint_dir("bert", 2)
    proc = subprocess.run(
        [sys.executable, "-c", LXT_SCRIPT, str(folder), TEXT], capture_output=True, text=True, timeout=300
    )
    if proc.returncode != 0:  # lxt's patched model files target specific transformers versions
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        pytest.skip(f"lxt {getattr(lxt, '__version__', '?')} cannot patch BERT on this transformers: {last}")
    reference = np.array(json.loads(proc.stdout))
    clf = ak.load_classifier(folder, device="cpu")
    clf.model.double()
    ours = ak.explain(clf, [TEXT], method="attnlrp", targets=[1])[0].scores[0]
    # records hold float32: 1e-5 relative is above that storage error (up to ~4e-6 seen), far below any rule change
    np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-8)

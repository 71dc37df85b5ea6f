"""``integrated_gradients`` feeds Captum length-grouped, unpadded chunks: same results as one padded call."""

from __future__ import annotations

import pytest
import torch
from captum.attr import IntegratedGradients, LayerIntegratedGradients

import attribkit as ak
from attribkit.methods.baselines import baseline_ids
from attribkit.methods.chunking import rows_for_budget

# lengths 4 .. 12 tokens, two texts of equal length (so groups of several texts occur too)
TEXTS = [
    "good",
    "the movie was really good and fun",
    "an awful boring plot",
    "a bad film",
    "the plot was so boring",
    ("a cat sat", "on the mat"),
    "i love it",
    "i hate it",
]


def padded_captum(
    clf: ak.Classifier, batch, targets, *, steps: int, rule: str = "gausslegendre"
) -> tuple[torch.Tensor, torch.Tensor]:
    """The old call pattern: one Captum LIG call per view on the whole padded batch."""
    model = clf.model

    def forward(ids, mask, types):
        return model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits

    lig = LayerIntegratedGradients(forward, clf.layer_module("word_embeddings"))
    views, deltas = [], []
    for v in range(targets.shape[1]):
        attr, delta = lig.attribute(
            batch["input_ids"],
            baselines=baseline_ids(clf, batch, "pad"),
            target=targets[:, v].tolist(),
            additional_forward_args=(batch["attention_mask"], batch["token_type_ids"]),
            n_steps=steps,
            method=rule,
            return_convergence_delta=True,
        )
        views.append(attr)
        deltas.append(delta)
    return torch.stack(views, 1) * batch["attention_mask"][:, None, :, None], torch.stack(deltas, 1)


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("chunking", [{}, {"memory_mb": 0.05}, {"internal_batch_size": 3}, {"internal_batch_size": 1}])
def test_chunked_captum_equals_one_padded_call(tiny, chunking):
    clf = tiny("bert", 3)
    batch = clf.encode(TEXTS)
    targets = torch.tensor([[0, 1, 2]] * len(TEXTS))
    reference, reference_delta = padded_captum(clf, batch, targets, steps=10)
    ours, delta = ak.attribute(
        clf, batch, targets=targets, method="integrated_gradients", steps=10, return_delta=True, **chunking
    )
    assert relative_error(ours, reference) <= 1e-10
    torch.testing.assert_close(delta, reference_delta.to(delta.dtype), rtol=1e-8, atol=1e-10)
    assert float(ours.transpose(1, 2)[batch["attention_mask"] == 0].abs().max()) == 0.0  # padding stays exactly zero


def test_small_budget_really_splits_the_work(tiny):
    """The budget in MiB turns into rows per pass (hand count for the tiny BERT: 2 layers, hidden 16, 2 heads, float64)."""
    clf = tiny("bert", 2)
    per_row = 2 * 12 * (16 * 16 + 3 * 2 * 12) * 8  # bytes kept per row of 12 tokens
    assert rows_for_budget(clf, 12, 1) == 2**20 // per_row == 16
    assert rows_for_budget(clf, 12, 1, create_graph=True) == 8
    assert rows_for_budget(clf, 12, 0.05) == 1  # never zero: one row per pass at least


def test_zero_baseline_chunked_equals_captum_on_the_padded_layer_output(tiny):
    clf = tiny("bert", 2)
    batch = clf.encode(TEXTS)
    targets = torch.tensor([[i % 2] for i in range(len(TEXTS))])
    keys = ("attention_mask", "token_type_ids")

    def on_layer(z, ids, mask, types):
        sub = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        return clf.forward_with_layer(sub, "embeddings", lambda _out: z)

    with torch.no_grad():
        x = clf.layer_output(batch, "embeddings")
    reference = IntegratedGradients(on_layer).attribute(
        x,
        baselines=torch.zeros_like(x),
        target=targets[:, 0].tolist(),
        additional_forward_args=(batch["input_ids"], *(batch[k] for k in keys)),
        n_steps=8,
        method="riemann_middle",
    )
    reference = reference * batch["attention_mask"][..., None]
    ours = ak.attribute(
        clf,
        batch,
        targets=targets,
        method="integrated_gradients",
        steps=8,
        rule="riemann_middle",
        layer="embeddings",
        baseline="zero",
        internal_batch_size=4,
    )
    assert relative_error(ours[:, 0], reference) <= 1e-10


def test_options_record_the_chunking(tiny):
    clf = tiny("bert", 2)
    default = ak.explain(clf, "the movie was good", steps=4)[0].options
    assert default["memory_mb"] == 2048 and "internal_batch_size" not in default
    rows = ak.explain(clf, "the movie was good", steps=4, internal_batch_size=8)[0].options
    assert rows["internal_batch_size"] == 8 and "memory_mb" not in rows


def test_minilm_default_explain_equals_one_padded_captum_call(minilm_path):
    """The default method on the real model, float32: the chunked path agrees with the old one to 1e-6."""
    torch.manual_seed(0)
    clf = ak.load_classifier(minilm_path, num_labels=2, device="cpu")
    texts = [
        "a gripping , beautifully acted film .",
        "dull and far too long .",
        "it is not bad at all",
        "the plot makes no sense and the acting is worse",
        "fine",
    ]
    batch = clf.encode(texts)
    with torch.no_grad():
        targets = clf.logits(batch).argmax(-1, keepdim=True)
    reference, _ = padded_captum(clf, batch, targets, steps=50)
    ours = ak.attribute(clf, batch, targets=targets, method="integrated_gradients", steps=50)
    assert relative_error(ours, reference) <= 1e-6

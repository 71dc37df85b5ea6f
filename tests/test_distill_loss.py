"""AttributionLoss against a hand-written reference of the AD-KD formulas (docs/design.md, AD-KD)."""

from __future__ import annotations

import math

import pytest
import torch

import attribkit as ak
from attribkit_distill import AttributionLoss, forward_with_maps

TEXTS = ["the movie was really good", "an awful plot , sadly", "good"]


def encode(checkpoint_dir, num_labels: int) -> dict[str, torch.Tensor]:
    clf = ak.load_classifier(checkpoint_dir("bert", num_labels), device="cpu")
    return clf.encode(TEXTS)


def reference_maps(model, batch, views: list[int], *, top_k: int | None, steps: int) -> torch.Tensor:
    """Hand-written: IG through attribkit.attribute (checked against Captum elsewhere), then plain loops."""
    regression = model.config.num_labels == 1
    n, seq = batch["input_ids"].shape
    targets = torch.tensor([views] * n)
    attributions = ak.attribute(
        model,
        batch,
        targets=targets,
        method="fast_ig",
        steps=steps,
        rule="riemann_right",
        layer="embeddings",
        target_fn="logit" if regression else "log_prob",
    ).detach()
    maps = torch.zeros(n, len(views), seq, dtype=torch.float64)
    for b in range(n):
        length = int(batch["attention_mask"][b].sum())
        for v in range(len(views)):
            scores = []
            for t in range(length):
                values = sorted((abs(a) for a in attributions[b, v, t].tolist()), reverse=True)
                kept = values[:top_k] if top_k is not None else values
                scores.append(math.sqrt(sum(a * a for a in kept)))
            norm = math.sqrt(sum(s * s for s in scores))
            for t in range(length):
                maps[b, v, t] = scores[t] / norm if norm > 0 else 0.0
    return maps


def reference_loss(student_maps: torch.Tensor, teacher_maps: torch.Tensor, batch) -> float:
    tokens = int(batch["attention_mask"].sum())
    total = 0.0
    n, views, _ = student_maps.shape
    for v in range(views):
        per_view = 0.0
        for b in range(n):
            for t in range(int(batch["attention_mask"][b].sum())):
                per_view += (float(student_maps[b, v, t]) - float(teacher_maps[b, v, t])) ** 2
        total += per_view / tokens
    return total


@pytest.mark.parametrize(
    ("num_labels", "views", "steps", "top_k"),
    [(2, [0], 1, 10), (3, [0, 1, 2], 1, 10), (1, [0], 1, 10), (2, [0, 1], 3, None), (3, [0, 1, 2], 2, 5)],
    ids=["binary", "3-class", "regression", "binary-m3-allK", "3-class-m2-K5"],
)
def test_loss_matches_the_hand_written_reference(student_teacher, checkpoint_dir, num_labels, views, steps, top_k):
    student, teacher = student_teacher(num_labels)
    batch = encode(checkpoint_dir, num_labels)
    loss_fn = AttributionLoss(top_k=top_k, steps=steps)
    out = loss_fn(student, teacher, batch, return_maps=True)
    want_teacher = reference_maps(teacher, batch, views, top_k=top_k, steps=steps)
    want_student = reference_maps(student, batch, views, top_k=None, steps=steps)
    torch.testing.assert_close(out.teacher_maps, want_teacher, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(out.student_maps.detach(), want_student, rtol=1e-9, atol=1e-12)
    assert out.loss.item() == pytest.approx(reference_loss(want_student, want_teacher, batch), rel=1e-9)
    assert out.loss.item() > 1e-4  # different models: the maps really differ
    # the logits come from the same forward and are the model's ordinary logits
    torch.testing.assert_close(out.student_logits, student(**batch_inputs(batch)).logits, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out.teacher_logits, teacher(**batch_inputs(batch)).logits, rtol=1e-12, atol=1e-12)


def batch_inputs(batch):
    return {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in batch}


@pytest.mark.parametrize(
    ("target_fn", "steps", "normalize", "coincide"),
    [
        ("log_prob", 4, "l2", False),
        ("logit", 1, "l2", False),
        ("prob", 4, "l2", True),
        ("log_prob", 1, None, False),  # the factor p1/p0 is cancelled only by a normalisation
        ("prob", 4, None, True),  # |dp0| = |dp1|: no factor to cancel
    ],
)
def test_binary_views_are_merged_only_where_both_classes_give_the_same_map(
    student_teacher, checkpoint_dir, target_fn, steps, normalize, coincide
):
    """log_prob at m = 4: d log p0 = -(p1/p0) d log p1 with p changing along the path, so the maps differ."""
    student, teacher = student_teacher(2)
    batch = encode(checkpoint_dir, 2)
    options = {"steps": steps, "target_fn": target_fn, "normalize": normalize}
    both = AttributionLoss(**options, views="all")(student, teacher, batch, return_maps=True)
    auto = AttributionLoss(**options)(student, teacher, batch, return_maps=True)
    gap = (both.teacher_maps[:, 0] - both.teacher_maps[:, 1]).abs().max().item()
    if coincide:  # dp0 = -dp1 at every point: the sums are opposite for any m
        assert gap < 1e-12 and auto.teacher_maps.shape[1] == 1
        torch.testing.assert_close(auto.teacher_maps[:, 0], both.teacher_maps[:, 0], rtol=1e-9, atol=1e-12)
    else:
        assert gap > 1e-3 and auto.teacher_maps.shape[1] == 2
        torch.testing.assert_close(auto.teacher_maps, both.teacher_maps, rtol=0, atol=0)


def test_binary_single_view_equals_each_class_view(student_teacher, checkpoint_dir):
    student, teacher = student_teacher(2)
    batch = encode(checkpoint_dir, 2)
    one = AttributionLoss(top_k=10)(student, teacher, batch, return_maps=True)
    both = AttributionLoss(top_k=10, views="all")(student, teacher, batch, return_maps=True)
    torch.testing.assert_close(both.student_maps[:, 0], both.student_maps[:, 1], rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(both.teacher_maps[:, 1], one.teacher_maps[:, 0], rtol=1e-9, atol=1e-12)
    assert both.loss.item() == pytest.approx(2 * one.loss.item(), rel=1e-9)


def test_precomputed_teacher_maps_give_the_same_loss(student_teacher, checkpoint_dir):
    student, teacher = student_teacher(3)
    batch = encode(checkpoint_dir, 3)
    loss_fn = AttributionLoss(top_k=12)
    maps, _ = loss_fn.teacher_maps(teacher, batch)
    assert loss_fn(student, maps, batch).item() == pytest.approx(loss_fn(student, teacher, batch).item(), rel=1e-12)


def test_gradients_reach_the_student_and_never_the_teacher(student_teacher, checkpoint_dir):
    student, teacher = student_teacher(2)
    for p in teacher.parameters():
        p.requires_grad_(True)  # even a teacher left trainable gets no gradient
    batch = encode(checkpoint_dir, 2)
    AttributionLoss(top_k=10)(student, teacher, batch).backward()
    assert all(p.grad is None for p in teacher.parameters())
    grads = {n: p.grad for n, p in student.named_parameters()}
    # the classifier head only influences the loss through second-order terms (grad of the map)
    assert grads["classifier.weight"] is not None and grads["classifier.weight"].abs().sum() > 0
    assert grads["bert.encoder.layer.0.attention.self.query.weight"].abs().sum() > 0


def test_second_order_gradients_match_finite_differences(student_teacher, checkpoint_dir):
    student, teacher = student_teacher(3)
    batch = encode(checkpoint_dir, 3)
    loss_fn = AttributionLoss(top_k=10)
    params = dict(student.named_parameters())
    student.zero_grad()
    loss_fn(student, teacher, batch).backward()
    eps = 1e-6
    for name, index in [
        ("classifier.weight", (2, 3)),
        ("bert.encoder.layer.0.output.dense.weight", (4, 1)),
        ("bert.embeddings.LayerNorm.weight", (7,)),
    ]:
        p = params[name]
        analytic = p.grad[index].item()
        with torch.no_grad():
            p[index] += eps
            up = loss_fn(student, teacher, batch).item()
            p[index] -= 2 * eps
            down = loss_fn(student, teacher, batch).item()
            p[index] += eps
        assert analytic == pytest.approx((up - down) / (2 * eps), rel=1e-5, abs=1e-9), name


def test_all_zero_maps_give_a_finite_loss_and_gradients(student_teacher, checkpoint_dir):
    student, teacher = student_teacher(2)
    with torch.no_grad():
        student.classifier.weight.zero_()  # the student's output no longer depends on its input
    batch = encode(checkpoint_dir, 2)
    zeros = torch.zeros(3, 1, batch["input_ids"].shape[1], dtype=torch.float64)
    out = AttributionLoss()(student, zeros, batch, return_maps=True)
    assert out.loss.item() == 0.0 and torch.count_nonzero(out.student_maps) == 0
    out.loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in student.parameters() if p.grad is not None)
    # teacher maps of unit norm against a zero student map: loss = views * examples / tokens
    loss = AttributionLoss()(student, teacher, batch)
    assert loss.item() == pytest.approx(3 / int(batch["attention_mask"].sum()), rel=1e-12)


def _assert_fused_forward_is_attribkits(clf, batch, targets, target_fn, label):
    """Two-step zero-baseline IG from the training forward == attribkit.attribute's fast_ig, at both layers."""
    for layer in ("embeddings", "word_embeddings"):
        got = forward_with_maps(clf.model, batch, targets, steps=2, layer=layer, target_fn=target_fn).attributions
        want = ak.attribute(
            clf, batch, targets=targets, method="fast_ig", steps=2, rule="riemann_right", layer=layer,
            target_fn=target_fn, baseline="zero",
        )  # fmt: skip
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12, msg=f"{label} {layer}")


def test_fused_forward_matches_attribkit_attribute_for_every_architecture(checkpoint_dir):
    for arch in ("bert", "roberta", "distilbert", "electra"):
        clf = ak.load_classifier(checkpoint_dir(arch, 3), device="cpu")
        clf.model.double()
        _assert_fused_forward_is_attribkits(clf, clf.encode(TEXTS), torch.tensor([[0, 2]] * 3), "prob", arch)


@pytest.mark.parametrize("arch", ["gpt2", "llama", "qwen2"])
def test_fused_forward_matches_attribkit_attribute_on_decoders(arch):
    """Decoders' ``embeddings`` is the first block's *input*: the training maps read it there too."""
    from test_decoders import decoder

    clf = decoder(arch)
    batch = clf.encode(["the movie was really good", "bad", "a cat sat on the mat"])
    targets = torch.tensor([[0, 1]] * 3)
    _assert_fused_forward_is_attribkits(clf, batch, targets, "log_prob", arch)
    # GPT-2's block input is token + position embeddings: not the token embeddings alone
    if arch == "gpt2":
        words = forward_with_maps(clf.model, batch, targets, layer="word_embeddings").attributions
        block = forward_with_maps(clf.model, batch, targets, layer="embeddings").attributions
        assert (words - block).abs().max() > 1e-6


def test_pad_baseline_goes_through_attribkit(student_teacher, checkpoint_dir):
    student, teacher = student_teacher(2)
    batch = encode(checkpoint_dir, 2)
    loss_fn = AttributionLoss(layer="word_embeddings", baseline="pad")
    out = loss_fn(student, teacher, batch, return_maps=True)
    want = reference_maps_pad(teacher, batch)
    torch.testing.assert_close(out.teacher_maps, want, rtol=1e-9, atol=1e-12)
    out.loss.backward()
    assert student.classifier.weight.grad.abs().sum() > 0


def reference_maps_pad(model, batch):
    a = ak.attribute(
        model,
        batch,
        targets=torch.zeros(3, 1, dtype=torch.long),
        method="fast_ig",
        steps=1,
        layer="word_embeddings",
        target_fn="log_prob",
        baseline="pad",
    )
    scores = a.abs().pow(2).sum(-1).sqrt()
    return scores / scores.pow(2).sum(-1, keepdim=True).sqrt()


def test_models_without_a_shared_vocabulary_are_refused(checkpoint_dir, student_teacher):
    from transformers import BertConfig, BertForSequenceClassification

    student, _ = student_teacher(2)
    other = (
        BertForSequenceClassification(
            BertConfig(vocab_size=99, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
        )
        .double()
        .eval()
    )
    batch = encode(checkpoint_dir, 2)
    with pytest.raises(ak.InvalidInputError, match="do not share a vocabulary"):
        AttributionLoss()(student, other, batch)


@pytest.mark.parametrize(
    "options",
    [{"top_k": 0}, {"steps": 0}, {"views": "some"}, {"distance": "kl"}, {"normalize": "softmax"}, {"baseline": "pad"}],
)
def test_bad_options_are_refused(options):
    with pytest.raises(ak.OptionError):
        AttributionLoss(**options)


def test_student_double_backward_on_minilm_in_train_mode(minilm_path):
    """The packaged MiniLM picks SDPA; the loss must still back-propagate second order."""
    clf = ak.load_classifier(minilm_path, device="cpu", num_labels=2)
    student = clf.model.train()
    batch = clf.encode(["a gripping , funny film", "dull"])
    maps = torch.rand(2, 1, batch["input_ids"].shape[1])
    loss = AttributionLoss()(student, maps, batch)
    loss.backward()
    grad = student.bert.encoder.layer[0].attention.self.query.weight.grad
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_attribution_gap_is_the_mean_per_example_loss(student_teacher, checkpoint_dir):
    from attribkit_distill.data import encode_examples
    from attribkit_distill.evaluation import attribution_gap
    from attribkit_distill.tasks import Example

    student, teacher = student_teacher(2)
    clf = ak.load_classifier(checkpoint_dir("bert", 2), device="cpu")
    data = encode_examples(clf.tokenizer, [Example(t, None, i % 2) for i, t in enumerate(TEXTS)])
    by_hand = [
        float(AttributionLoss()(student, teacher, data.batch([i])).detach()) for i in range(len(TEXTS))
    ]  # one example at a time
    assert attribution_gap(student, teacher, data, batch_size=1) == pytest.approx(sum(by_hand) / len(TEXTS), rel=1e-12)
    assert attribution_gap(teacher, teacher, data) == 0.0

"""The pluggable explanation signal of AttributionLoss: other map methods, cosine distance, the shuffled control."""

from __future__ import annotations

import pytest
import torch

import attribkit as ak
from attribkit_distill import AttributionLoss

TEXTS = ["the movie was really good", "an awful plot , sadly", "good"]


def encode(checkpoint_dir, num_labels: int = 2) -> dict[str, torch.Tensor]:
    return ak.load_classifier(checkpoint_dir("bert", num_labels), device="cpu").encode(TEXTS)


def normalized(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    scores = scores * mask[:, None, :]
    return scores / scores.norm(dim=-1, keepdim=True).clamp_min(1e-30)


def test_teacher_and_student_maps_from_other_methods_equal_attribkits_own(student_teacher, checkpoint_dir):
    student, teacher = student_teacher(3)
    batch = encode(checkpoint_dir, 3)
    loss_fn = AttributionLoss(
        method="gradient_x_input", teacher_method="fast_ig", teacher_options={"steps": 8, "rule": "gausslegendre"}
    )
    out = loss_fn(student, teacher, batch, return_maps=True)
    views = torch.arange(3).expand(3, 3)
    common = {"layer": "embeddings", "target_fn": "log_prob"}
    teacher_dims = ak.attribute(
        teacher, batch, targets=views, method="fast_ig", steps=8, rule="gausslegendre", baseline="zero", **common
    )
    student_dims = ak.attribute(student, batch, targets=views, method="gradient_x_input", **common)
    mask = batch["attention_mask"].double()
    torch.testing.assert_close(out.teacher_maps, normalized(teacher_dims.abs().pow(2).sum(-1).sqrt(), mask))
    torch.testing.assert_close(out.student_maps.detach(), normalized(student_dims.abs().pow(2).sum(-1).sqrt(), mask))
    want = ((out.student_maps.detach() - out.teacher_maps) ** 2 * mask[:, None, :]).sum() / mask.sum()
    assert out.loss.item() == pytest.approx(want.item(), rel=1e-9) and out.loss.item() > 1e-4
    out.loss.backward()  # second order through the student's own map
    assert student.bert.embeddings.word_embeddings.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in teacher.parameters())


def test_a_saliency_student_map_is_the_l2_norm_of_its_gradient_and_trains_the_student(student_teacher, checkpoint_dir):
    student, teacher = student_teacher(2)
    batch = encode(checkpoint_dir)
    out = AttributionLoss(method="saliency")(student, teacher, batch, return_maps=True)
    # saliency is not of the IG family the one-view shortcut is proven for: both class views are kept
    student.eval()
    x = student.bert.embeddings(input_ids=batch["input_ids"], token_type_ids=batch["token_type_ids"]).detach()
    x.requires_grad_(True)
    mask = batch["attention_mask"].double()
    # the embeddings' output replaced by the leaf x with a plain forward hook, then autograd by hand
    handle = student.bert.embeddings.register_forward_hook(lambda _module, _args, _out: x)
    try:
        log_probs = student(**batch).logits.log_softmax(-1)
    finally:
        handle.remove()
    by_hand = torch.stack(
        [torch.autograd.grad(log_probs[:, c].sum(), x, retain_graph=True)[0].norm(dim=-1) for c in (0, 1)], 1
    )
    assert out.student_maps.shape == (3, 2, batch["input_ids"].shape[1])
    torch.testing.assert_close(out.student_maps.detach(), normalized(by_hand, mask))
    out.loss.backward()  # second order through the student's own saliency map
    assert student.bert.encoder.layer[0].attention.self.query.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in teacher.parameters())


def test_a_token_level_teacher_method_gives_absolute_token_maps(student_teacher, checkpoint_dir):
    student, teacher = student_teacher(2)
    batch = encode(checkpoint_dir)
    out = AttributionLoss(teacher_method="occlusion")(student, teacher, batch, return_maps=True)
    views = torch.tensor([[0, 1]] * 3)  # occlusion maps of the two classes differ: both views
    occlusion = ak.attribute(teacher, batch, targets=views, method="occlusion", target_fn="log_prob")
    torch.testing.assert_close(out.teacher_maps, normalized(occlusion.abs(), batch["attention_mask"].double()))
    assert out.student_maps.shape == (3, 2, batch["input_ids"].shape[1])


def test_cosine_distance_is_one_minus_cosine_per_example_and_view(student_teacher, checkpoint_dir):
    student, teacher = student_teacher(3)
    batch = encode(checkpoint_dir, 3)
    out = AttributionLoss(distance="cosine")(student, teacher, batch, return_maps=True)
    total = 0.0
    for v in range(3):
        per_view = []
        for b in range(3):
            n = int(batch["attention_mask"][b].sum())
            s, t = out.student_maps[b, v, :n].detach(), out.teacher_maps[b, v, :n]
            per_view.append(1 - float(s @ t) / float(s.norm() * t.norm()))
        total += sum(per_view) / 3
    assert out.loss.item() == pytest.approx(total, rel=1e-9) and out.loss.item() > 1e-4
    # with L2-normalised maps, 1 - cos = ||s - t||^2 / 2 per example
    half = sum(
        float(((out.student_maps[b, v] - out.teacher_maps[b, v]) ** 2).sum()) / 2 for b in range(3) for v in range(3)
    )
    assert out.loss.item() == pytest.approx(half / 3, rel=1e-9)


def test_the_shuffled_control_permutes_each_teacher_map_over_its_real_tokens(student_teacher, checkpoint_dir):
    student, teacher = student_teacher(3)
    batch = encode(checkpoint_dir, 3)
    plain = AttributionLoss()(student, teacher, batch, return_maps=True).teacher_maps
    shuffled = AttributionLoss(teacher_shuffle=7)(student, teacher, batch, return_maps=True).teacher_maps
    again = AttributionLoss(teacher_shuffle=7).teacher_maps(teacher, batch)[0]
    other = AttributionLoss(teacher_shuffle=8).teacher_maps(teacher, batch)[0]
    torch.testing.assert_close(shuffled, again, rtol=0, atol=0)  # fixed by the seed and the tokens
    assert not torch.equal(shuffled, other)
    moved = 0
    for b in range(3):
        n = int(batch["attention_mask"][b].sum())
        assert (shuffled[b, :, n:] == 0).all()  # padding stays zero
        # one permutation per example, the same for every view: the same multiset, the same norm
        order = [int((plain[b, 0, :n] - value).abs().argmin()) for value in shuffled[b, 0, :n]]
        assert sorted(order) == list(range(n))
        for v in range(3):
            torch.testing.assert_close(shuffled[b, v, :n], plain[b, v, :n][order], rtol=0, atol=1e-12)
        moved += order != list(range(n))
    assert moved >= 2  # the maps were really moved


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"method": "occlusion"}, "the student's map method 'occlusion' is not differentiable"),
        ({"method": "gradcam"}, "unknown method 'gradcam'; choose one of: "),
        ({"teacher_method": "gradcam"}, "unknown teacher_method 'gradcam'"),
        ({"distance": "kl"}, "unknown distance 'kl'; choose one of: mse, l1, cosine"),
        ({"teacher_shuffle": 1.5}, "teacher_shuffle is a seed"),
    ],
)
def test_bad_signal_options_are_one_clear_error(options, message):
    with pytest.raises(ak.OptionError) as raised:
        AttributionLoss(**options)
    assert str(raised.value).startswith(message)


def test_options_record_the_signal_only_where_it_differs_from_the_paper():
    paper = AttributionLoss(top_k=10).options()
    assert set(paper) == {"top_k", "steps", "layer", "views", "target_fn", "normalize", "baseline"}
    other = AttributionLoss(top_k=10, teacher_method="occlusion", teacher_shuffle=3, distance="cosine").options()
    assert other == {**paper, "teacher_method": "occlusion", "teacher_shuffle": 3, "distance": "cosine"}
    cache_options = AttributionLoss(top_k=10, teacher_shuffle=3, distance="cosine").map_options()
    assert cache_options == {**paper, "teacher_shuffle": 3}  # the distance compares maps, it does not make them


def test_attnlrp_maps_on_both_sides_equal_attribkits_own_and_train_the_student(student_teacher, checkpoint_dir):
    student, teacher = student_teacher(2)
    batch = encode(checkpoint_dir)
    out = AttributionLoss(method="attnlrp", teacher_method="attnlrp")(student, teacher, batch, return_maps=True)
    views = torch.arange(2).expand(3, 2)  # AttnLRP's two class maps differ: both views are kept
    common = {"layer": "embeddings", "target_fn": "log_prob"}
    teacher_dims = ak.attribute(teacher, batch, targets=views, method="attnlrp", **common)
    student_dims = ak.attribute(student, batch, targets=views, method="attnlrp", **common)
    mask = batch["attention_mask"].double()
    torch.testing.assert_close(out.teacher_maps, normalized(teacher_dims.norm(dim=-1), mask))
    torch.testing.assert_close(out.student_maps.detach(), normalized(student_dims.norm(dim=-1), mask))
    want = ((out.student_maps.detach() - out.teacher_maps) ** 2 * mask[:, None, :]).sum() / mask.sum()
    assert out.loss.item() == pytest.approx(want.item(), rel=1e-9) and out.loss.item() > 1e-4
    out.loss.backward()  # second order through the twin graph of the student's AttnLRP map
    assert student.bert.encoder.layer[0].attention.self.query.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in teacher.parameters())


def test_on_l2_normalised_maps_cosine_is_the_mse_loss_rescaled_per_batch_gradients_included(
    student_teacher, checkpoint_dir
):
    """||s - t||^2 = 2 (1 - cos) for unit maps, and both distances weight examples equally, so the cosine loss
    times 2 B / (non-pad tokens of the batch) is the MSE loss, and so are its gradients: the two objectives differ
    by one positive factor per batch (what study v3's cosine row therefore tests; docs/results.md)."""
    student, teacher = student_teacher(3)
    batch = encode(checkpoint_dir, 3)
    losses, grads = {}, {}
    for distance in ("mse", "cosine"):
        student.zero_grad()
        losses[distance] = AttributionLoss(distance=distance)(student, teacher, batch)
        losses[distance].backward()
        grads[distance] = torch.cat([p.grad.flatten() for p in student.parameters() if p.grad is not None])
    factor = 2 * 3 / float(batch["attention_mask"].sum())
    assert losses["mse"].item() == pytest.approx(losses["cosine"].item() * factor, rel=1e-6)
    assert losses["mse"].item() > 1e-4
    assert torch.allclose(grads["mse"], grads["cosine"] * factor, rtol=1e-4, atol=1e-9)
    assert grads["mse"].abs().max() > 1e-6  # the check compares gradients that exist

"""KDLoss and DistillationObjective against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

import attribkit as ak
from attribkit_distill import AttributionLoss, DistillationObjective, KDLoss, TeacherOutputs


def soft_ce(student: list[float], teacher: list[float], t: float) -> float:
    zt = [math.exp(v / t) for v in teacher]
    p = [v / sum(zt) for v in zt]
    lse = math.log(sum(math.exp(v / t) for v in student))
    return -sum(pi * (s / t - lse) for pi, s in zip(p, student))


def test_kd_loss_is_the_soft_cross_entropy():
    s = torch.tensor([[1.0, -2.0, 0.5], [0.0, 0.3, 3.0]], dtype=torch.float64)
    t = torch.tensor([[2.0, 0.0, -1.0], [1.0, 1.0, 1.0]], dtype=torch.float64)
    want = (soft_ce([1.0, -2.0, 0.5], [2.0, 0.0, -1.0], 2.0) + soft_ce([0.0, 0.3, 3.0], [1.0, 1.0, 1.0], 2.0)) / 2
    assert KDLoss(2.0)(s, t).item() == pytest.approx(want, rel=1e-12)
    assert KDLoss(2.0, t_squared=True)(s, t).item() == pytest.approx(4 * want, rel=1e-12)


def test_annealing_goes_linearly_from_t_to_one():
    kd = KDLoss(4.0, anneal=True)
    assert [kd.temperature_at(p) for p in (0.0, 0.5, 1.0, 2.0)] == [4.0, 2.5, 1.0, 1.0]
    s = torch.tensor([[1.0, -1.0]], dtype=torch.float64)
    t = torch.tensor([[0.0, 2.0]], dtype=torch.float64)
    assert kd(s, t, progress=0.5).item() == pytest.approx(soft_ce([1.0, -1.0], [0.0, 2.0], 2.5), rel=1e-12)
    assert KDLoss(4.0).temperature_at(0.7) == 4.0


def test_regression_kd_is_the_reference_codes_scaled_mse_and_gradients_skip_the_teacher():
    s = torch.tensor([[1.0], [2.0]], requires_grad=True)
    t = torch.tensor([[0.0], [4.0]], requires_grad=True)
    loss = KDLoss(3.0)(s, t)  # MSE(s/T, t/T) = ((1/3)^2 + (2/3)^2) / 2 = 5/18
    assert loss.item() == pytest.approx(5 / 18, rel=1e-6)
    loss.backward()
    assert t.grad is None and s.grad is not None
    assert KDLoss(3.0, regression="plain")(s, t).item() == pytest.approx((1 + 4) / 2)  # the earlier form, ignoring T
    annealed = KDLoss(3.0, anneal=True)  # T follows the schedule for regression too
    assert annealed(s, t, progress=1.0).item() == pytest.approx(5 / 2)
    with pytest.raises(ak.OptionError, match="regression KD form"):
        KDLoss(3.0, regression="huber")


def test_annealing_per_epoch_steps_down_and_reaches_one_in_the_last_epoch():
    kd = KDLoss(4.0, anneal=True, anneal_every="epoch", epochs=3)
    # epochs 0, 1, 2 of 3: T = 4, 2.5, 1; constant within an epoch
    assert [kd.temperature_at(p) for p in (0.0, 0.2, 0.34, 0.6, 0.67, 0.99, 1.0)] == [4.0, 4.0, 2.5, 2.5, 1.0, 1.0, 1.0]
    assert KDLoss(4.0, anneal=True, anneal_every="epoch", epochs=1).temperature_at(0.0) == 1.0
    assert KDLoss(4.0, anneal=False, anneal_every="epoch", epochs=3).temperature_at(0.9) == 4.0
    with pytest.raises(ak.OptionError, match="needs the number of epochs"):
        KDLoss(4.0, anneal=True, anneal_every="epoch")
    with pytest.raises(ak.OptionError, match="unknown anneal_every"):
        KDLoss(4.0, anneal_every="batch")


def test_objective_weights_and_terms(student_teacher, checkpoint_dir):
    student, teacher = student_teacher(3)
    batch = ak.load_classifier(checkpoint_dir("bert", 3), device="cpu").encode(["a good film", "bad"])
    batch["labels"] = torch.tensor([0, 2])
    objective = DistillationObjective(alpha=0.7, beta=5.0, kd=KDLoss(2.0), attribution=AttributionLoss(top_k=8))
    out = objective(student, teacher, batch)
    s_logits = student(**{k: v for k, v in batch.items() if k != "labels"}).logits
    t_logits = teacher(**{k: v for k, v in batch.items() if k != "labels"}).logits
    kd = KDLoss(2.0)(s_logits, t_logits).item()
    ce = torch.nn.functional.cross_entropy(s_logits, batch["labels"]).item()
    attr = AttributionLoss(top_k=8)(student, teacher, batch).item()
    assert out.terms["kd"].item() == pytest.approx(kd, rel=1e-10)
    assert out.terms["ce"].item() == pytest.approx(ce, rel=1e-10)
    assert out.terms["attr"].item() == pytest.approx(attr, rel=1e-10)
    assert out.total.item() == pytest.approx(0.7 * kd + 0.3 * ce + 5.0 * attr, rel=1e-10)
    # from cached teacher outputs: same loss, no teacher
    maps, _ = objective.attribution.teacher_maps(teacher, batch)
    cached = objective(student, None, batch, teacher_outputs=TeacherOutputs(t_logits.detach(), maps))
    assert cached.total.item() == pytest.approx(out.total.item(), rel=1e-10)


def test_vanilla_kd_objective_and_regression_ce(student_teacher, checkpoint_dir):
    student, teacher = student_teacher(1)
    batch = ak.load_classifier(checkpoint_dir("bert", 1), device="cpu").encode(
        [("a man", "a person"), ("dogs", "cats")]
    )
    batch["labels"] = torch.tensor([4.5, 1.0])
    out = DistillationObjective(alpha=0.5)(student, teacher, batch)
    s = student(**{k: v for k, v in batch.items() if k != "labels"}).logits.view(-1)
    t = teacher(**{k: v for k, v in batch.items() if k != "labels"}).logits.view(-1)
    assert set(out.terms) == {"kd", "ce"}
    assert out.terms["ce"].item() == pytest.approx(((s - batch["labels"]) ** 2).mean().item(), rel=1e-10)
    assert out.terms["kd"].item() == pytest.approx(((s - t) ** 2).mean().item(), rel=1e-10)


def test_objective_needs_a_teacher_or_its_outputs(student_teacher):
    student, _ = student_teacher(2)
    with pytest.raises(ak.InvalidInputError, match="teacher"):
        DistillationObjective()(student, None, {"input_ids": torch.ones(1, 2, dtype=torch.long)})
    with pytest.raises(ak.OptionError):
        DistillationObjective(alpha=1.5)
    with pytest.raises(ak.OptionError):
        KDLoss(0.0)

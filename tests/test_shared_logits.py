"""A method that differentiates the forward on the input returns its logits with their graph, so a
training loop's KD and CE terms use that forward instead of running the student again."""

from __future__ import annotations

import pytest
import torch

import attribkit as ak
import attribkit_distill.loss as distill_loss
from attribkit_distill import AttributionLoss, DistillationObjective, KDLoss

TEXTS = ["the movie was really good", "an awful plot", "fine"]
SINGLE_PASS = {"fast_ig": {"steps": 1}, "gradient_x_input": {}, "attnlrp": {}}


def _plain_logits(clf: ak.Classifier, batch) -> torch.Tensor:
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in batch}
    return clf.model(**inputs).logits


@pytest.mark.parametrize("method", sorted(SINGLE_PASS))
def test_the_logits_of_the_differentiated_pass_are_the_models_with_their_graph(tiny, method):
    clf = tiny("bert", 2)
    batch = clf.encode(TEXTS)
    targets = torch.tensor([[1], [0], [1]])
    options = {"targets": targets, "method": method, **SINGLE_PASS[method]}
    _, logits = ak.attribute(clf, batch, create_graph=True, return_logits=True, **options)
    plain = _plain_logits(clf, batch)
    assert logits.requires_grad
    torch.testing.assert_close(logits, plain, rtol=1e-10, atol=1e-12)
    # their gradient reaches the parameters as a plain forward's does
    weight = clf.model.classifier.weight
    (shared,) = torch.autograd.grad((logits * torch.tensor([1.0, -2.0], dtype=logits.dtype)).sum(), weight)
    (direct,) = torch.autograd.grad((plain * torch.tensor([1.0, -2.0], dtype=plain.dtype)).sum(), weight)
    torch.testing.assert_close(shared, direct, rtol=1e-10, atol=1e-12)
    _, detached = ak.attribute(clf, batch, return_logits=True, **options)
    assert not detached.requires_grad
    torch.testing.assert_close(detached, plain.detach(), rtol=1e-10, atol=1e-12)


def test_logits_are_none_where_no_pass_runs_on_the_input_and_come_last(tiny):
    clf = tiny("bert", 2)
    batch = clf.encode(TEXTS)
    targets = torch.tensor([[1], [0], [1]])
    _, logits = ak.attribute(clf, batch, targets=targets, steps=4, create_graph=True, return_logits=True)
    assert logits is None  # four points short of the input: no forward on the input itself
    attributions, delta, logits = ak.attribute(
        clf, batch, targets=targets, steps=4, return_delta=True, return_logits=True
    )
    assert attributions.dim() == 4 and delta.shape == (3, 1)
    torch.testing.assert_close(
        logits, _plain_logits(clf, batch).detach(), rtol=1e-10, atol=1e-12
    )  # the no-grad forward


@pytest.mark.parametrize("method", ["gradient_x_input", "attnlrp"])
def test_a_distillation_step_runs_the_student_once_and_gives_the_same_gradients(
    student_teacher, checkpoint_dir, monkeypatch, method
):
    student, teacher = student_teacher(2)
    clf = ak.load_classifier(checkpoint_dir("bert", 2), device="cpu")
    batch = dict(clf.encode(TEXTS))
    batch["labels"] = torch.tensor([1, 0, 1])
    objective = DistillationObjective(alpha=0.6, beta=2.0, kd=KDLoss(2.0), attribution=AttributionLoss(method=method))
    forwards = []
    student.register_forward_hook(lambda *args: forwards.append(1))

    def step():
        student.zero_grad()
        forwards.clear()
        out = objective(student, teacher, batch)
        out.total.backward()
        return out, len(forwards), {name: p.grad.clone() for name, p in student.named_parameters()}

    shared, shared_forwards, shared_grads = step()
    original = distill_loss.registered_scores
    monkeypatch.setattr(distill_loss, "registered_scores", lambda *a, **k: (original(*a, **k)[0], None))
    separate, separate_forwards, separate_grads = step()
    assert (shared_forwards, separate_forwards) == (1, 2)  # the map's forward serves KD and CE
    for name in ("kd", "ce", "attr"):
        assert shared.terms[name].item() == pytest.approx(separate.terms[name].item(), rel=1e-10), name
    for name in shared_grads:
        torch.testing.assert_close(shared_grads[name], separate_grads[name], rtol=1e-8, atol=1e-11, msg=name)

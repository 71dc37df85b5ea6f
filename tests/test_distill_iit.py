"""The interchange intervention objective: exactness, locality, gradients, hooks, determinism."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import attribkit as ak
from attribkit_distill import DistillationObjective, InterchangeInterventionLoss, KDLoss, interchange, uniform_layer_map
from attribkit_distill.iit import derangement, span_mask
from attribkit_distill.students import layer_list

TEXTS = ["the movie was very good", "awful plot and bad acting", "i love this film", "boring"]


def batch_of(clf, texts=TEXTS):
    batch = clf.encode(texts)
    batch["labels"] = torch.tensor([1, 0, 1, 0][: len(texts)])
    return batch


@pytest.fixture()
def deep_pair(checkpoint_dir):
    """Factory: (student with 2 layers, teacher with 4, tokenizer), float64; uniform pairs {0: 1, 1: 3}, drawn: {0: 1}."""

    def make(num_labels: int = 2):
        teacher = ak.load_classifier(checkpoint_dir("bert", num_labels, layers=4), device="cpu")
        student = ak.load_classifier(checkpoint_dir("bert", num_labels, seed=1, layers=2), device="cpu").model.double()
        return student, teacher.model.double().eval(), teacher.tokenizer

    return make


def hooks_left(model) -> int:
    return sum(len(m._forward_hooks) for m in model.modules())


@pytest.mark.parametrize("arch", ["bert", "roberta", "distilbert", "electra"])
def test_source_equal_to_base_changes_nothing(tiny, arch):
    clf = tiny(arch, 2)
    batch = batch_of(clf)
    plain = clf.model(**clf.model_inputs(batch)).logits
    identity = torch.arange(4)
    everywhere = batch["attention_mask"].bool()
    for layer in range(2):
        out = InterchangeInterventionLoss.counterfactual(clf.model, batch, layer, identity, everywhere)
        torch.testing.assert_close(out, plain, rtol=0, atol=0)
    assert hooks_left(clf.model) == 0


def _run_recording(model, inputs):
    """Logits and what each layer really passes on (hooks added last see the final outputs)."""
    seen = []
    layers, _ = layer_list(model)
    handles = [model.base_model.embeddings.register_forward_hook(lambda m, i, o: seen.append(o))]
    handles += [
        layer.register_forward_hook(lambda m, i, o: seen.append(o[0] if isinstance(o, tuple) else o))
        for layer in layers
    ]
    try:
        return model(**inputs).logits, seen
    finally:
        for h in handles:
            h.remove()


@pytest.mark.parametrize("layer", [0, 1])
def test_intervention_changes_outputs_only_from_its_layer_on(tiny, layer):
    clf = tiny("bert", 2)
    model = clf.model
    batch = batch_of(clf)
    inputs = clf.model_inputs(batch)
    source = torch.tensor([1, 2, 3, 0])
    mask = torch.zeros_like(batch["attention_mask"], dtype=torch.bool)
    mask[:, 1:3] = True
    plain_logits, plain = _run_recording(model, inputs)
    with interchange(model, layer, source, mask):
        logits, swapped = _run_recording(model, inputs)
    # seen[0] = embeddings, seen[k] = output of layer k-1: everything below the intervened layer is untouched
    for k in range(layer + 1):
        torch.testing.assert_close(swapped[k], plain[k], rtol=0, atol=0)
    # the intervened layer's output: the source rows' activations at the span, the base's own elsewhere
    mine = plain[layer + 1]
    torch.testing.assert_close(swapped[layer + 1], torch.where(mask.unsqueeze(-1), mine[source], mine), rtol=0, atol=0)
    if layer == 0:  # above it, everything moves (the last layer's span does not reach the [CLS] pooler)
        assert not torch.allclose(swapped[2][:, 0], plain[2][:, 0])
        assert not torch.allclose(logits, plain_logits)
    assert hooks_left(model) == 0


def test_loss_matches_a_hand_built_reference(deep_pair):
    student, teacher, tok = deep_pair(2)
    assert uniform_layer_map(2, 4) == {0: 1, 1: 3} and uniform_layer_map(3, 6) == {0: 1, 1: 3, 2: 5}
    batch = dict(tok(TEXTS, padding=True, return_tensors="pt"))
    loss_fn = InterchangeInterventionLoss(span_fraction=0.5, temperature=3.0)
    torch.manual_seed(5)
    loss = loss_fn(student, teacher, batch)
    torch.manual_seed(5)  # replay the same draws by hand
    source = derangement(4)
    layer = [0][int(torch.randint(0, 1, (1,)))]
    real = batch["attention_mask"].bool().clone()
    lengths = real.sum(1)
    real[:, 0] = False
    real[torch.arange(4), lengths - 1] = False
    mask = span_mask(real, source, 0.5)
    assert (source != torch.arange(4)).all() and layer == 0
    assert mask.sum(1).tolist() == [max(1, round(0.5 * int((real & real[source])[i].sum()))) for i in range(4)]
    with torch.no_grad(), interchange(teacher, 1, source, mask):  # uniform: student 0 <-> teacher 1
        t = teacher(**batch).logits
    with interchange(student, 0, source, mask):
        s = student(**batch).logits
    reference = 9.0 * F.kl_div(F.log_softmax(s / 3, -1), F.softmax(t / 3, -1), reduction="batchmean")
    torch.testing.assert_close(loss, reference, rtol=1e-12, atol=1e-12)


def test_gradients_reach_the_student_only_and_hooks_are_removed(deep_pair):
    student, teacher, tok = deep_pair(2)
    student.train()
    batch = dict(tok(TEXTS, padding=True, return_tensors="pt"))
    torch.manual_seed(0)
    loss = InterchangeInterventionLoss()(student, teacher, batch)
    loss.backward()
    assert loss.item() > 0
    assert all(p.grad is None for p in teacher.parameters())
    grads = [p.grad for p in student.parameters() if p.requires_grad]
    assert sum(g is not None and g.abs().sum() > 0 for g in grads) > len(grads) // 2
    assert hooks_left(student) == hooks_left(teacher) == 0
    bad = dict(batch, input_ids=batch["input_ids"] + 10_000)  # out of the vocabulary: the forward raises
    with pytest.raises(IndexError):
        InterchangeInterventionLoss()(student, teacher, bad)
    assert hooks_left(student) == hooks_left(teacher) == 0


def test_deterministic_under_a_seed_and_one_example_batches(deep_pair):
    student, teacher, tok = deep_pair(3)
    student.eval()
    batch = dict(tok(TEXTS, padding=True, return_tensors="pt"))
    loss_fn = InterchangeInterventionLoss()
    values = []
    for _ in range(2):
        torch.manual_seed(11)
        values.append([loss_fn(student, teacher, batch).item() for _ in range(3)])
    assert values[0] == values[1] and len(set(values[0])) > 1
    one = dict(tok(TEXTS[:1], return_tensors="pt"))
    ordinary = 4 * F.kl_div(
        F.log_softmax(student(**one).logits / 2, -1), F.softmax(teacher(**one).logits / 2, -1), reduction="batchmean"
    )
    assert loss_fn(student, teacher, one).item() == pytest.approx(ordinary.item(), abs=1e-12)  # source = base


def test_options_and_combination_with_adkd(deep_pair, student_teacher):
    from attribkit_distill import AttributionLoss

    with pytest.raises(ak.OptionError):
        InterchangeInterventionLoss(span_fraction=0)
    with pytest.raises(ak.OptionError):
        InterchangeInterventionLoss(layer_map="middle")
    one_layer, two = student_teacher(2)
    with pytest.raises(ak.OptionError, match="1-layer student"):
        InterchangeInterventionLoss().pairs(one_layer, two)
    assert InterchangeInterventionLoss(layer_map={0: 0}).pairs(one_layer, two) == {0: 0}
    student, teacher, tok = deep_pair(2)
    assert InterchangeInterventionLoss().pairs(student, teacher) == {0: 1}  # the last student layer is left out
    with pytest.raises(ak.OptionError, match="out of range"):
        InterchangeInterventionLoss(layer_map={0: 5}).pairs(student, teacher)
    batch = dict(tok(TEXTS, padding=True, return_tensors="pt"), labels=torch.tensor([1, 0, 1, 0]))
    objective = DistillationObjective(
        alpha=0.5,
        beta=2.0,
        kd=KDLoss(2.0),
        attribution=AttributionLoss(),
        extra={"iit": (0.7, InterchangeInterventionLoss())},
    )
    torch.manual_seed(3)
    out = objective(student.train(), teacher, batch)
    assert set(out.terms) == {"kd", "ce", "attr", "iit"}
    expected = 0.5 * out.terms["kd"] + 0.5 * out.terms["ce"] + 2.0 * out.terms["attr"] + 0.7 * out.terms["iit"]
    torch.testing.assert_close(out.total.detach(), expected)


def test_interchange_intervention_across_architectures_with_one_tokenizer():
    """A GPT-2 teacher and a Llama student that share a tokenizer: layers are aligned by index, as for encoders."""
    from test_decoders import decoder

    from attribkit_distill import InterchangeInterventionLoss

    teacher, student = decoder("gpt2"), decoder("llama")
    batch = teacher.encode(["the movie was really good", "an awful plot and boring actors", "bad", "i like it"])
    batch["labels"] = torch.tensor([1, 0, 0, 1])
    loss = InterchangeInterventionLoss()(student.model, teacher.model, batch)
    loss.backward()
    assert torch.isfinite(loss) and float(loss) > 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in student.model.parameters())
    assert all(p.grad is None for p in teacher.model.parameters())

"""AD-KD across tokenizers: unit pooling and the loss against a hand-written loop."""

from __future__ import annotations

import math

import pytest
import torch
from test_decoders import decoder

from attribkit_distill import AttributionLoss
from attribkit_distill.cross_tokenizer import CrossTokenizerAttributionLoss, cross_tokenizer_batch

TEXTS = ["the movie was good", "an awful plot"]


@pytest.fixture()
def pair(tiny):
    teacher = tiny("bert", 2)  # WordPiece over the shared test vocabulary
    student = decoder("gpt2")  # byte-level BPE, no padding token: a different tokenizer
    return teacher, student


def test_units_are_the_words_both_tokenizations_agree_on(pair):
    teacher, student = pair
    batch = cross_tokenizer_batch(TEXTS, student.tokenizer, teacher.tokenizer)
    assert batch["unit_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]
    # every real teacher token lies in one unit, specials and padding in none
    teacher_units = batch["teacher_units"][0].tolist()
    assert teacher_units[0] == -1 and teacher_units[-1] == -1 and sorted(set(teacher_units[1:-1])) == [0, 1, 2, 3]
    student_units = batch["student_units"][0][batch["attention_mask"][0].bool()].tolist()
    # byte-level BPE: no special tokens; a token of whitespace only ("Ġ") belongs to no unit
    assert sorted(set(student_units) - {-1}) == [0, 1, 2, 3]


def _hand_loss(loss_fn, student, teacher, texts):
    """The cross-tokenizer loss by loops: each model's token scores summed into hand-listed word units."""
    words = [text.split() for text in texts]
    total, count = 0.0, 0
    for text, text_words in zip(texts, words):
        per_model = []
        for clf, top_k in ((teacher, loss_fn.top_k), (student, None)):
            enc = clf.tokenizer(text, return_offsets_mapping=True)
            batch = {
                "input_ids": torch.tensor([enc["input_ids"]]),
                "attention_mask": torch.ones(1, len(enc["input_ids"]), dtype=torch.long),
            }
            scores, _ = loss_fn.token_scores(clf.model, batch, top_k=top_k, create_graph=False)
            scores = scores[0, 0].tolist()
            starts = [text.index(w, sum(len(x) + 1 for x in text_words[:i])) for i, w in enumerate(text_words)]
            unit_scores = [0.0] * len(text_words)
            for score, (a, b), seq in zip(scores, enc["offset_mapping"], enc.sequence_ids()):
                if seq is None or b <= a:
                    continue
                for u, start in enumerate(starts):  # the word the token's characters belong to (BPE: leading space)
                    end = start + len(text_words[u])
                    if a < end and b > start:
                        unit_scores[u] += score
                        break
            norm = math.sqrt(sum(v * v for v in unit_scores))
            per_model.append([v / norm for v in unit_scores])
        total += sum((s - t) ** 2 for s, t in zip(per_model[1], per_model[0]))
        count += len(text_words)
    return total / count


def test_loss_equals_a_hand_written_loop_and_reaches_only_the_student(pair):
    teacher, student = pair
    loss_fn = CrossTokenizerAttributionLoss(layer="word_embeddings", top_k=4)
    batch = cross_tokenizer_batch(TEXTS, student.tokenizer, teacher.tokenizer)
    student.model.zero_grad()
    loss = loss_fn(student.model, teacher.model, batch)
    assert float(loss) == pytest.approx(_hand_loss(loss_fn, student, teacher, TEXTS), rel=1e-9)
    loss.backward()
    grads = [p.grad for p in student.model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads) and any(g.abs().sum() > 0 for g in grads)
    assert all(p.grad is None for p in teacher.model.parameters())


def test_same_tokenizer_is_exactly_the_plain_loss(tiny):
    teacher, student = tiny("bert", 2), tiny("bert", 2)
    torch.manual_seed(1)
    for p in student.model.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    batch = cross_tokenizer_batch(TEXTS, student.tokenizer, teacher.tokenizer)
    plain = {k: v for k, v in batch.items() if not k.startswith("teacher_") and "unit" not in k}
    ours = CrossTokenizerAttributionLoss()(student.model, teacher.model, batch)
    reference = AttributionLoss()(student.model, teacher.model, plain)
    assert float(ours) == pytest.approx(float(reference), rel=1e-12, abs=0)

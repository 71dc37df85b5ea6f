"""What top-K does to a real teacher map: how far it moves the normalized map, under l2 and sum aggregation.

The teacher is the packaged MiniLM (a real pretrained encoder, seeded 2-class head); the yardstick is the
distance between that teacher's map and a student's (its layers 0, 2, 4) on the same sentences.
Measured here: K = 48 / 96 / 192 of 384 dims move the l2 map by 5.7 / 2.4 / 0.35 % of that distance; the sum
aggregation moves more (8.5 / 5.3 / 1.6 %). docs/distillation.md states these numbers.
"""

from __future__ import annotations

import pytest
import torch

import attribkit as ak

SENTENCES = [
    "a gripping , beautifully acted film .",
    "dull and far too long .",
    "it is not bad at all , really",
    "the plot makes no sense and the acting is worse",
    "a charming , funny and moving story about a family",
    "i wanted to like it , but i could not",
    "one of the best films of the year",
    "a mess from start to finish",
]


def token_maps(attributions: torch.Tensor, mask: torch.Tensor, *, top_k: int | None, aggregate: str) -> torch.Tensor:
    scores = ak.reduce_dims(attributions, sign="absolute", top_k=top_k, aggregate=aggregate)
    return ak.normalize_scores(scores, mask[:, None, :], method="l2")


def test_top_k_moves_the_normalized_teacher_map_little_under_l2(minilm_path):
    from attribkit_distill import student_from_layers

    torch.manual_seed(0)
    teacher = ak.load_classifier(minilm_path, num_labels=2, device="cpu")
    student = student_from_layers(teacher.model, [0, 2, 4]).eval()
    batch = teacher.encode(SENTENCES)
    targets = torch.zeros(len(SENTENCES), 1, dtype=torch.long)
    options = {"targets": targets, "method": "fast_ig", "steps": 1, "layer": "embeddings", "target_fn": "log_prob"}
    a_teacher = ak.attribute(teacher.model, batch, **options).detach()
    a_student = ak.attribute(student, batch, **options).detach()
    mask = batch["attention_mask"]
    moved: dict[tuple[str, int], float] = {}
    for aggregate in ("l2", "sum"):
        full = token_maps(a_teacher, mask, top_k=None, aggregate=aggregate)
        yardstick = (full - token_maps(a_student, mask, top_k=None, aggregate=aggregate)).norm(dim=-1).mean()
        for k in (48, 96, 192, 384):
            shift = (token_maps(a_teacher, mask, top_k=k, aggregate=aggregate) - full).norm(dim=-1).mean()
            moved[(aggregate, k)] = float(shift / yardstick)
    assert moved[("l2", 384)] == moved[("sum", 384)] == 0.0  # K = all dims is the plain map
    for aggregate in ("l2", "sum"):
        shifts = [moved[(aggregate, k)] for k in (48, 96, 192, 384)]
        assert shifts == sorted(shifts, reverse=True)  # the more dims kept, the less the map moves
    for k in (48, 96, 192):
        assert moved[("l2", k)] < moved[("sum", k)]  # the L2 over dims is dominated by the largest dims anyway
    assert moved[("l2", 48)] == pytest.approx(0.057, abs=0.01)  # a few % of a teacher-student distance
    assert moved[("sum", 48)] == pytest.approx(0.085, abs=0.01)
    assert moved[("l2", 192)] < 0.01

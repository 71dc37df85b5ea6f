"""AD-KD between models that do not share a tokenizer: attribution maps compared on shared text units.

Both models' token scores are pooled (summed) onto the units their tokenizations agree on
(:mod:`attribkit.units`: merged character spans, in practice words), normalised over each example's
units per view, and compared there. Pooling is a matrix product, so the student's graph is kept. A
batch for this loss carries the student's inputs, the teacher's (``teacher_input_ids``,
``teacher_attention_mask``, ``teacher_token_type_ids``) and each token's unit (``student_units``,
``teacher_units``: unit index or -1) with ``unit_mask``: :func:`cross_tokenizer_batch` builds one from
texts, :class:`~attribkit_distill.cross_data.CrossEncodedData` from a training set. When the teacher's
input ids are the student's, the loss is exactly :class:`AttributionLoss`. Token spans are trimmed of
whitespace first; a token of whitespace only belongs to no unit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from attribkit import InvalidInputError, normalize_scores
from attribkit_distill.cross_data import encode_cross_examples, is_cross, student_side, teacher_side
from attribkit_distill.loss import AttributionLoss, AttributionLossOutput
from attribkit_distill.tasks import Example


def cross_tokenizer_batch(
    texts: Sequence[str | tuple[str, str]],
    student_tokenizer: Any,
    teacher_tokenizer: Any,
    *,
    labels: Sequence[int | float] | None = None,
    max_length: int = 128,
) -> dict[str, Tensor]:
    """Tokenize ``texts`` for both models and record each token's shared unit (right padding).

    Returns:
        ``input_ids``, ``attention_mask`` (``token_type_ids`` when the tokenizer gives them) ``[batch, S]``;
        the same prefixed ``teacher_`` ``[batch, T]``; ``student_units`` ``[batch, S]``, ``teacher_units``
        ``[batch, T]`` (unit index, -1 for special tokens, padding and text only one side kept);
        ``unit_mask`` ``[batch, U]``; ``labels`` ``[batch]`` when given.
    """
    examples = [Example(t, None, 0) if isinstance(t, str) else Example(t[0], t[1], 0) for t in texts]
    if labels is not None:
        examples = [Example(e.text, e.pair, label) for e, label in zip(examples, labels, strict=True)]
    data = encode_cross_examples(student_tokenizer, teacher_tokenizer, examples, max_length=max_length)
    batch = data.batch(range(len(examples)))
    batch.pop("index")
    if labels is None:
        batch.pop("labels")
    return batch


@dataclass(frozen=True)
class CrossTokenizerCollator:
    """A data collator (``transformers.Trainer``, ``DataLoader``) that builds :func:`cross_tokenizer_batch` batches.

    Each feature is a dict with ``text`` (and ``pair`` for sentence pairs) and ``labels``. With the
    Trainer, pass ``remove_unused_columns=False`` in its arguments so the texts reach the collator.
    """

    student_tokenizer: Any
    teacher_tokenizer: Any
    max_length: int = 128

    def __call__(self, features: Sequence[dict[str, Any]]) -> dict[str, Tensor]:
        texts = [f["text"] if f.get("pair") is None else (f["text"], f["pair"]) for f in features]
        labels = [f["labels"] for f in features] if all("labels" in f for f in features) else None
        return cross_tokenizer_batch(
            texts, self.student_tokenizer, self.teacher_tokenizer, labels=labels, max_length=self.max_length
        )


def pool_onto_units(scores: Tensor, members: Tensor, units: int) -> Tensor:
    """Sum token scores into units: ``[batch, views, seq]`` x unit index ``[batch, seq]`` -> ``[batch, views, units]``."""
    one_hot = F.one_hot((members + 1).clamp_min(0), units + 1)[..., 1:].to(scores.dtype)  # -1 -> no unit
    return torch.einsum("bvs,bsu->bvu", scores, one_hot)


class CrossTokenizerAttributionLoss(AttributionLoss):
    """:class:`AttributionLoss` for a teacher and student with different tokenizers (see the module docstring).

    Same options as :class:`AttributionLoss`. ``loss_fn(student, teacher, batch)`` takes a batch from
    :func:`cross_tokenizer_batch` (or :meth:`CrossEncodedData.batch`); ``teacher`` is the teacher model
    or its cached *unit* maps ``[batch, views, units]`` (:meth:`teacher_maps` of a cross batch, as
    :class:`~attribkit_distill.cache.TeacherCache` stores them). Without ``teacher_input_ids``, or with
    the student's own ids there, it is :class:`AttributionLoss` itself. The distance is the per-view sum
    over units divided by the number of units in the batch.
    """

    def teacher_maps(self, teacher: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor | None]:
        """Teacher maps (top-K, detached) and logits; on a cross batch the maps are unit maps ``[batch, views, units]``."""
        if not is_cross(batch):
            return super().teacher_maps(teacher, student_side(batch))
        with torch.no_grad():
            scores, logits = self.token_scores(
                teacher, teacher_side(batch), top_k=self.top_k, create_graph=False, side="teacher"
            )
        units = int(batch["unit_mask"].shape[1])
        maps = normalize_scores(
            pool_onto_units(scores.detach(), batch["teacher_units"], units),
            batch["unit_mask"][:, None, :],
            method=self.normalize,
        )
        return maps, None if logits is None else logits.detach()

    def compute(
        self, student: nn.Module, teacher: nn.Module | Tensor, batch: dict[str, Tensor]
    ) -> AttributionLossOutput:
        if not is_cross(batch):
            return super().compute(student, teacher, student_side(batch))
        teacher_logits = None
        if isinstance(teacher, Tensor):
            teacher_maps = teacher.to(batch["unit_mask"].device)
        elif isinstance(teacher, nn.Module):
            teacher_maps, teacher_logits = self.teacher_maps(teacher, batch)
        else:
            raise InvalidInputError(
                f"teacher must be a model or a tensor of teacher unit maps; got {type(teacher).__name__}"
            )
        units = int(batch["unit_mask"].shape[1])
        s_scores, s_logits = self.token_scores(student, student_side(batch), top_k=None, create_graph=True)
        student_maps = normalize_scores(
            pool_onto_units(s_scores, batch["student_units"], units),
            batch["unit_mask"][:, None, :],
            method=self.normalize,
        )
        if teacher_maps.shape != student_maps.shape:
            raise InvalidInputError(
                f"teacher unit maps have shape {tuple(teacher_maps.shape)} but the student's are "
                f"{tuple(student_maps.shape)} [batch, views, units]: different views (labels) or units?"
            )
        loss = self.distance_between(student_maps, teacher_maps.to(student_maps.dtype), batch["unit_mask"])
        return AttributionLossOutput(loss, student_maps, teacher_maps, s_logits, teacher_logits)

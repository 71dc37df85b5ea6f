"""AD-KD between models that do not share a tokenizer: attribution maps compared on shared text units.

Both models' token scores are pooled (summed) onto the units their tokenizations agree on
(:mod:`attribkit.units`: merged character spans, in practice words), normalised over each example's
units per view, and compared there. Pooling is a matrix product, so the student's graph is kept. A
batch for this loss carries the student's inputs, the teacher's (``teacher_input_ids``,
``teacher_attention_mask``, ``teacher_token_type_ids``) and each token's unit (``student_units``,
``teacher_units``: unit index or -1) with ``unit_mask``; :func:`cross_tokenizer_batch` builds one.
When the teacher's input ids are the student's, the loss is exactly :class:`AttributionLoss`. Token spans
are trimmed of whitespace first; a token of whitespace only belongs to no unit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from attribkit import InvalidInputError, normalize_scores
from attribkit.units import shared_units, unit_members
from attribkit_distill.loss import AttributionLoss, AttributionLossOutput

TEACHER_PREFIX = "teacher_"


def _encode(tokenizer: Any, text: str | tuple[str, str], max_length: int) -> dict[str, Any]:
    first, second = (text, None) if isinstance(text, str) else text
    enc = tokenizer(first, second, truncation=True, max_length=max_length, return_offsets_mapping=True)
    segments = [-1 if s is None else int(s) for s in enc.sequence_ids()]
    texts = (first, second or "")
    offsets = [_trim(texts[max(seg, 0)], int(a), int(b)) for (a, b), seg in zip(enc["offset_mapping"], segments)]
    return {"enc": enc, "offsets": offsets, "segments": segments}


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    """A token's span without surrounding whitespace (byte-level BPE puts the space before a word into its
    token, or makes it a token of its own: then the span is empty and the token belongs to no unit)."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


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
        ``[batch, T]`` (unit index, -1 for special tokens and padding); ``unit_mask`` ``[batch, U]``;
        ``labels`` ``[batch]`` when given.
    """
    rows: list[Any] = []  # (student encoding, teacher encoding, units) per text
    for text in texts:
        s, t = _encode(student_tokenizer, text, max_length), _encode(teacher_tokenizer, text, max_length)
        units = shared_units(s["offsets"], s["segments"], t["offsets"], t["segments"])
        if not units:
            raise InvalidInputError(f"no text to align between the two tokenizations of {str(text)[:40]!r}")
        rows.append((s, t, units))
    batch: dict[str, Tensor] = {}
    for prefix, index, tokenizer in (("", 0, student_tokenizer), (TEACHER_PREFIX, 1, teacher_tokenizer)):
        width = max(len(row[index]["enc"]["input_ids"]) for row in rows)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id or 0
        ids = torch.full((len(rows), width), int(pad), dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        members = torch.full((len(rows), width), -1, dtype=torch.long)
        types = torch.zeros((len(rows), width), dtype=torch.long)
        has_types = all("token_type_ids" in row[index]["enc"] for row in rows)
        for i, row in enumerate(rows):
            part = row[index]
            n = len(part["enc"]["input_ids"])
            ids[i, :n] = torch.tensor(part["enc"]["input_ids"])
            mask[i, :n] = 1
            members[i, :n] = torch.tensor(unit_members(part["offsets"], part["segments"], row[2]))
            if has_types:
                types[i, :n] = torch.tensor(part["enc"]["token_type_ids"])
        batch[prefix + "input_ids"], batch[prefix + "attention_mask"] = ids, mask
        batch["student_units" if index == 0 else "teacher_units"] = members
        if has_types:
            batch[prefix + "token_type_ids"] = types
    most = max(len(row[2]) for row in rows)
    batch["unit_mask"] = torch.tensor([[1] * len(row[2]) + [0] * (most - len(row[2])) for row in rows])
    if labels is not None:
        batch["labels"] = torch.tensor(list(labels))
    return batch


def teacher_inputs(batch: dict[str, Tensor]) -> dict[str, Tensor]:
    """The teacher's side of a cross-tokenizer batch, under the usual key names (labels kept)."""
    out = {k[len(TEACHER_PREFIX) :]: v for k, v in batch.items() if k.startswith(TEACHER_PREFIX)}
    if "labels" in batch:
        out["labels"] = batch["labels"]
    return out


def pool_onto_units(scores: Tensor, members: Tensor, units: int) -> Tensor:
    """Sum token scores into units: ``[batch, views, seq]`` x unit index ``[batch, seq]`` -> ``[batch, views, units]``."""
    one_hot = F.one_hot((members + 1).clamp_min(0), units + 1)[..., 1:].to(scores.dtype)  # -1 -> no unit
    return torch.einsum("bvs,bsu->bvu", scores, one_hot)


class CrossTokenizerAttributionLoss(AttributionLoss):
    """:class:`AttributionLoss` for a teacher and student with different tokenizers (see the module docstring).

    Same options as :class:`AttributionLoss`. ``loss_fn(student, teacher, batch)`` takes a batch from
    :func:`cross_tokenizer_batch`; without ``teacher_input_ids``, or with the student's own ids there,
    it is :class:`AttributionLoss` itself. The distance is the per-view sum over units divided by the
    number of units in the batch.
    """

    def compute(
        self, student: nn.Module, teacher: nn.Module | Tensor, batch: dict[str, Tensor]
    ) -> AttributionLossOutput:
        same = "teacher_input_ids" not in batch or (
            batch["teacher_input_ids"].shape == batch["input_ids"].shape
            and bool(torch.equal(batch["teacher_input_ids"], batch["input_ids"]))
        )
        if same:
            plain = {k: v for k, v in batch.items() if not k.startswith(TEACHER_PREFIX) and "units" not in k}
            return super().compute(student, teacher, plain)
        if not isinstance(teacher, nn.Module):
            raise InvalidInputError(
                "a cross-tokenizer batch needs the teacher model (cached unit maps are not supported yet)"
            )
        units = int(batch["unit_mask"].shape[1])
        mask = batch["unit_mask"][:, None, :]
        student_side = {k: v for k, v in batch.items() if not k.startswith(TEACHER_PREFIX) and "unit" not in k}
        with torch.no_grad():
            t_scores, t_logits = self.token_scores(teacher, teacher_inputs(batch), top_k=self.top_k, create_graph=False)
        s_scores, s_logits = self.token_scores(student, student_side, top_k=None, create_graph=True)
        teacher_maps = normalize_scores(
            pool_onto_units(t_scores.detach(), batch["teacher_units"], units), mask, method=self.normalize
        )
        student_maps = normalize_scores(
            pool_onto_units(s_scores, batch["student_units"], units), mask, method=self.normalize
        )
        if teacher_maps.shape[1] != student_maps.shape[1]:
            raise InvalidInputError("teacher and student explain different views: do they have the same labels?")
        loss = self.distance_between(student_maps, teacher_maps.to(student_maps.dtype), batch["unit_mask"])
        return AttributionLossOutput(
            loss, student_maps, teacher_maps, s_logits, None if t_logits is None else t_logits.detach()
        )

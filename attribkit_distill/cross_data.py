"""Training data for a teacher and a student with different tokenizers: both tokenizations and their units.

Each example is tokenized by both models (with character offsets); its *units* are the merged
character spans both tokenizations agree on (:mod:`attribkit.units`), limited to the text both kept
after truncation. A batch carries the student's inputs under the usual names, the teacher's under
``teacher_`` names, and each token's unit (``student_units``, ``teacher_units``: index or -1) with
``unit_mask``. Nothing is re-tokenised inside the loss.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from attribkit import InvalidInputError, OptionError, Unit, shared_units, unit_members
from attribkit_distill.data import EncodedData
from attribkit_distill.tasks import Example

TEACHER_PREFIX = "teacher_"


@dataclass(frozen=True)
class CrossEncodedData:
    """The same examples encoded for the student and for the teacher, with their shared units.

    Attributes:
        student: The student's encoding (labels, padding id).
        teacher: The teacher's encoding of the same examples.
        student_units: Per example, each student token's unit index (-1: special token, padding, cut text).
        teacher_units: The same for the teacher's tokens.
        units: Per example, the units as ``(segment, start, end)`` character spans.
    """

    student: EncodedData
    teacher: EncodedData
    student_units: tuple[tuple[int, ...], ...]
    teacher_units: tuple[tuple[int, ...], ...]
    units: tuple[tuple[Unit, ...], ...]

    def __len__(self) -> int:
        return len(self.student)

    @property
    def labels(self) -> tuple[int | float, ...]:
        return self.student.labels

    def map_lengths(self) -> list[int]:
        """Length of each example's map: its number of units."""
        return [len(u) for u in self.units]

    def fingerprint(self) -> str:
        """sha256 of both encodings and the units."""
        h = hashlib.sha256()
        h.update(
            json.dumps([self.student.fingerprint(), self.teacher.fingerprint(), self.units_fingerprint()]).encode()
        )
        return h.hexdigest()

    def units_fingerprint(self) -> str:
        """sha256 of the unit boundaries and of which teacher tokens fall in each (what teacher unit maps depend on)."""
        return hashlib.sha256(json.dumps([self.units, self.teacher_units]).encode()).hexdigest()

    def cache_fields(self) -> dict[str, str]:
        """What a teacher cache of unit maps depends on: the teacher's encoding and the units."""
        return {"data": self.teacher.fingerprint(), "units": self.units_fingerprint()}

    def batch(self, indices: Sequence[int], device: torch.device | str = "cpu") -> dict[str, Tensor]:
        """Padded batch (right padding on both sides).

        Returns:
            The student's ``input_ids``, ``attention_mask`` (``token_type_ids``) ``[batch, S]``,
            ``labels`` and ``index`` ``[batch]``; the teacher's ``teacher_input_ids``,
            ``teacher_attention_mask`` (``teacher_token_type_ids``) ``[batch, T]``; ``student_units``
            ``[batch, S]``, ``teacher_units`` ``[batch, T]`` and ``unit_mask`` ``[batch, U]``.
        """
        out = self.student.batch(indices)
        teacher = self.teacher.batch(indices)
        out.update({TEACHER_PREFIX + k: v for k, v in teacher.items() if k not in ("labels", "index")})
        out["student_units"] = _pad([self.student_units[i] for i in indices], out["input_ids"].shape[1])
        out["teacher_units"] = _pad([self.teacher_units[i] for i in indices], teacher["input_ids"].shape[1])
        counts = [len(self.units[i]) for i in indices]
        out["unit_mask"] = torch.tensor([[1] * c + [0] * (max(counts) - c) for c in counts], dtype=torch.long)
        return {k: v.to(device) for k, v in out.items()}


def _pad(rows: Sequence[Sequence[int]], width: int) -> Tensor:
    return torch.tensor([list(r) + [-1] * (width - len(r)) for r in rows], dtype=torch.long)


def encode_cross_examples(
    student_tokenizer: Any, teacher_tokenizer: Any, examples: Sequence[Example], *, max_length: int = 128
) -> CrossEncodedData:
    """Tokenize ``examples`` for both models and find each example's shared units.

    Raises:
        InvalidInputError: no examples, or an example with no text both tokenizations cover.
    """
    from attribkit_distill.data import encode_examples

    student = encode_examples(student_tokenizer, examples, max_length=max_length)
    teacher = encode_examples(teacher_tokenizer, examples, max_length=max_length)
    texts = [e.text for e in examples]
    pairs = [e.pair or "" for e in examples] if examples[0].pair is not None else None
    student_spans = _spans(student_tokenizer, texts, pairs, max_length)
    teacher_spans = _spans(teacher_tokenizer, texts, pairs, max_length)
    student_units, teacher_units, all_units = [], [], []
    for example, s, t in zip(examples, student_spans, teacher_spans):
        units = covered_units(s, t)
        if not units:
            raise InvalidInputError(f"no text to align between the two tokenizations of {example.text[:40]!r}")
        student_units.append(tuple(unit_members(s[0], s[1], units)))
        teacher_units.append(tuple(unit_members(t[0], t[1], units)))
        all_units.append(tuple(units))
    return CrossEncodedData(student, teacher, tuple(student_units), tuple(teacher_units), tuple(all_units))


Spans = tuple[list[tuple[int, int]], list[int]]


def token_spans(tokenizer: Any, text: str | tuple[str, str], max_length: int) -> Spans:
    """Each token's character span (whitespace trimmed) and segment (-1: special token), as the model sees it."""
    first, second = (text, None) if isinstance(text, str) else text
    return _spans(tokenizer, [first], None if second is None else [second], max_length)[0]


def _spans(tokenizer: Any, texts: list[str], pairs: list[str] | None, max_length: int) -> list[Spans]:
    """:func:`token_spans` of many texts from one batched tokenizer call."""
    try:
        enc = tokenizer(texts, pairs, truncation=True, max_length=max_length, return_offsets_mapping=True)
    except NotImplementedError:
        raise OptionError(
            f"{type(tokenizer).__name__} gives no character offsets; distilling across tokenizers needs fast "
            "(Rust) tokenizers for both models"
        ) from None
    out = []
    for i, text in enumerate(texts):
        segments = [-1 if s is None else int(s) for s in enc.sequence_ids(i)]
        sources = (text, pairs[i] if pairs is not None else "")
        offsets = [_trim(sources[max(g, 0)], int(a), int(b)) for (a, b), g in zip(enc["offset_mapping"][i], segments)]
        out.append((offsets, segments))
    return out


def covered_units(
    first: tuple[Sequence[tuple[int, int]], Sequence[int]], second: tuple[Sequence[tuple[int, int]], Sequence[int]]
) -> list[Unit]:
    """The shared units that lie within the text *both* tokenizations kept (truncation cuts them differently)."""
    units = shared_units(first[0], first[1], second[0], second[1])
    ends = []
    for offsets, segments in (first, second):
        reach: dict[int, int] = {}
        for (start, end), segment in zip(offsets, segments):
            if segment >= 0 and end > start:
                reach[segment] = max(reach.get(segment, 0), end)
        ends.append(reach)
    return [u for u in units if u[2] <= min(ends[0].get(u[0], 0), ends[1].get(u[0], 0))]


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    """A token's span without surrounding whitespace (byte-level BPE puts the space before a word into its
    token, or makes it a token of its own: then the span is empty and the token belongs to no unit)."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def teacher_side(batch: dict[str, Tensor]) -> dict[str, Tensor]:
    """The teacher's inputs under the usual names (labels kept); a plain batch as it is."""
    if TEACHER_PREFIX + "input_ids" not in batch:
        return batch
    out = {k[len(TEACHER_PREFIX) :]: v for k, v in batch.items() if k.startswith(TEACHER_PREFIX)}
    if "labels" in batch:
        out["labels"] = batch["labels"]
    return out


def student_side(batch: dict[str, Tensor]) -> dict[str, Tensor]:
    """The student's inputs (and labels, index) of a cross-tokenizer batch, without the teacher's or the units."""
    return {k: v for k, v in batch.items() if not k.startswith(TEACHER_PREFIX) and "unit" not in k}


def is_cross(batch: dict[str, Tensor]) -> bool:
    """True for a batch whose teacher inputs differ from the student's (different tokenizers)."""
    ids = batch.get(TEACHER_PREFIX + "input_ids")
    return ids is not None and not (
        ids.shape == batch["input_ids"].shape and bool(torch.equal(ids, batch["input_ids"]))
    )

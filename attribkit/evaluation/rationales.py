"""Plausibility: how well an explanation agrees with a human rationale (ERASER, DeYoung et al., ACL 2020;
ferret, Attanasio et al., EACL 2023).

A rationale is the set of a text's units (the record's tokens, or words for word-level records)
a human marked as the reason for the label. It comes as character spans of the text (and of the
pair) or as a 0/1 mask over the text's whitespace-separated words (ERASER's token masks); either
is aligned to the record's units by character offsets, so a word marked by a human covers every
sub-word of it. Special tokens never count. As ferret does by default, the explanation's *hard*
rationale is its top ``k`` units among those with a positive score (``only_positive``).

- token F1: the F1 of the hard rationale against the human one, per example (macro average).
- IOU F1: ERASER's span match with one predicted and one human rationale per example: a match when
  their intersection over union is at least 0.5; precision over examples with a prediction, recall
  over examples with a human rationale.
- AUPRC: area under the precision-recall curve of the scores against the human mask (negative scores
  count as 0 with ``only_positive``), trapezoids between the curve's points as ``sklearn.metrics.auc``
  over ``precision_recall_curve`` (ferret's soft plausibility).
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from attribkit.errors import InvalidInputError, OptionError
from attribkit.record import Attribution

IOU_THRESHOLD = 0.5


def rationale_from_spans(
    record: Attribution, spans: Sequence[tuple[int, int]], pair_spans: Sequence[tuple[int, int]] = ()
) -> list[bool]:
    """The units of ``record`` that overlap a character span of its text (or of its pair).

    Args:
        spans: ``(start, end)`` character offsets in ``record.text``, end exclusive.
        pair_spans: The same in ``record.pair``.

    Returns:
        One flag per unit of the record; special tokens are never in the rationale.
    """
    by_segment = {0: [tuple(s) for s in spans], 1: [tuple(s) for s in pair_spans]}
    for segment, text in ((0, record.text), (1, record.pair or "")):
        for start, end in by_segment[segment]:
            if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text)):
                raise InvalidInputError(
                    f"rationale span {(start, end)} is not inside the {'pair' if segment else 'text'} "
                    f"({len(text)} characters): {text[:40]!r}"
                )
    return [
        segment >= 0 and any(max(a, s) < min(b, e) for s, e in by_segment.get(segment, []))
        for (a, b), segment in zip(record.offsets, record.segments)
    ]


def rationale_from_word_mask(
    record: Attribution, mask: Sequence[int | bool], pair_mask: Sequence[int | bool] = ()
) -> list[bool]:
    """The units of ``record`` inside the whitespace-separated words marked 1 in ``mask`` (ERASER token masks).

    Raises:
        InvalidInputError: A mask whose length is not the number of words of its text.
    """
    spans: dict[int, list[tuple[int, int]]] = {0: [], 1: []}
    for segment, text, flags in ((0, record.text, mask), (1, record.pair or "", pair_mask)):
        words = [m.span() for m in re.finditer(r"\S+", text)]
        if segment == 1 and not flags:
            continue
        if len(flags) != len(words):
            raise InvalidInputError(
                f"a rationale mask has {len(flags)} entries but the {'pair' if segment else 'text'} has "
                f"{len(words)} whitespace-separated words: {text[:40]!r}"
            )
        spans[segment] = [span for span, flag in zip(words, flags) if flag]
    return rationale_from_spans(record, spans[0], spans[1])


def hard_rationale(scores: Sequence[float], real: Sequence[bool], k: int, *, only_positive: bool = True) -> list[bool]:
    """The top ``k`` real units by score (ties: the earlier unit first), positive scores only by default."""
    candidates = [i for i, r in enumerate(real) if r and (not only_positive or scores[i] > 0)]
    top = set(sorted(candidates, key=lambda i: (-float(scores[i]), i))[:k])
    return [i in top for i in range(len(real))]


def f1(predicted: Sequence[bool], gold: Sequence[bool]) -> float:
    """Token F1 of two masks (0 when either is empty or they share nothing)."""
    tp = sum(p and g for p, g in zip(predicted, gold))
    if tp == 0:
        return 0.0
    precision, recall = tp / sum(predicted), tp / sum(gold)
    return 2 * precision * recall / (precision + recall)


def iou(predicted: Sequence[bool], gold: Sequence[bool]) -> float:
    """Intersection over union of two masks (0 when both are empty)."""
    union = sum(p or g for p, g in zip(predicted, gold))
    return 0.0 if union == 0 else sum(p and g for p, g in zip(predicted, gold)) / union


def auprc(scores: Sequence[float], gold: Sequence[bool]) -> float:
    """Area under the precision-recall curve of ``scores`` ranking the ``gold`` units.

    One curve point per distinct score threshold (every unit scoring at least the threshold is
    predicted), plus the point (recall 0, precision 1); the area is the sum of trapezoids between
    consecutive points, as ``sklearn.metrics.auc(recall, precision)`` on
    ``precision_recall_curve``. Undefined (nan) without a gold unit.
    """
    y = np.asarray(gold, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    positives = int(y.sum())
    if positives == 0:
        return float("nan")
    precision, recall = [1.0], [0.0]
    for threshold in np.unique(s)[::-1]:
        predicted = s >= threshold
        tp = int((predicted & y).sum())
        precision.append(tp / int(predicted.sum()))
        recall.append(tp / positives)
    return float(sum((r1 - r0) * (p0 + p1) / 2 for r0, r1, p0, p1 in zip(recall, recall[1:], precision, precision[1:])))


@dataclass(frozen=True)
class PlausibilityScores:
    """Plausibility of a set of records against their human rationales.

    Attributes:
        token_f1: Per example.
        iou: Per example (intersection over union of the hard and the human rationale).
        auprc: Per example (nan for an example without a human rationale).
        k: Size of the hard rationale.
    """

    token_f1: tuple[float, ...]
    iou: tuple[float, ...]
    auprc: tuple[float, ...]
    k: int
    predicted: tuple[bool, ...]  # per example: the hard rationale is not empty
    annotated: tuple[bool, ...]  # per example: the human rationale is not empty

    @property
    def mean_token_f1(self) -> float:
        """Macro-averaged token F1."""
        return statistics.fmean(self.token_f1)

    @property
    def iou_f1(self) -> float:
        """ERASER's IOU F1: examples whose rationales overlap with IOU >= 0.5 count as matches."""
        matches = sum(v >= IOU_THRESHOLD for v in self.iou)
        if matches == 0:
            return 0.0
        precision, recall = matches / sum(self.predicted), matches / sum(self.annotated)
        return 2 * precision * recall / (precision + recall)

    @property
    def mean_auprc(self) -> float:
        """Mean AUPRC over the examples with a human rationale."""
        values = [v for v in self.auprc if not np.isnan(v)]
        return statistics.fmean(values) if values else float("nan")

    def to_dict(self) -> dict:
        """JSON-ready dict: the summary and the per-example values."""
        return {
            "k": self.k,
            "token_f1": self.mean_token_f1,
            "iou_f1": self.iou_f1,
            "auprc": self.mean_auprc,
            "examples": [
                {"token_f1": f, "iou": i, "auprc": None if np.isnan(a) else a}
                for f, i, a in zip(self.token_f1, self.iou, self.auprc)
            ],
        }


def plausibility(
    records: Sequence[Attribution], rationales: Sequence[Sequence[bool]], *, k: int = 5, only_positive: bool = True
) -> PlausibilityScores:
    """Token F1, IOU F1 and AUPRC of ``records`` against human ``rationales``.

    Args:
        records: From :func:`attribkit.explain`; the first view is scored.
        rationales: One mask per record over its units (:func:`rationale_from_spans`,
            :func:`rationale_from_word_mask`).
        k: Units in the hard rationale (ferret's default 5).
        only_positive: Only positively scored units can be in the hard rationale, and negative
            scores count as 0 for AUPRC (ferret's default).

    Raises:
        InvalidInputError: A mask of the wrong length, or as many masks as records missing.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise OptionError(f"k must be a positive integer; got {k!r}")
    if len(rationales) != len(records):
        raise InvalidInputError(f"{len(records)} records but {len(rationales)} rationales")
    token_f1s, ious, areas, predicted, annotated = [], [], [], [], []
    for number, (record, gold) in enumerate(zip(records, rationales), start=1):
        if len(gold) != len(record.tokens):
            raise InvalidInputError(f"rationale {number} has {len(gold)} flags for {len(record.tokens)} units")
        real = [s >= 0 for s in record.segments]
        gold = [bool(g) and r for g, r in zip(gold, real)]
        scores = [float(v) for v in record.scores[0]]
        hard = hard_rationale(scores, real, k, only_positive=only_positive)
        token_f1s.append(f1(hard, gold))
        ious.append(iou(hard, gold))
        soft = [max(v, 0.0) if only_positive else v for v, r in zip(scores, real) if r]
        areas.append(auprc(soft, [g for g, r in zip(gold, real) if r]))
        predicted.append(any(hard))
        annotated.append(any(gold))
    return PlausibilityScores(tuple(token_f1s), tuple(ious), tuple(areas), k, tuple(predicted), tuple(annotated))

"""Faithfulness of attribution records: delete the top tokens and watch the prediction.

For each record and deletion fraction ``f``, the ``ceil(f * n)`` highest-scoring units (tokens,
or words for word-level records; special tokens never count and are never removed) are removed
from the input ids, and the model is run again (ERASER, DeYoung et al., ACL 2020; ferret,
Attanasio et al., EACL 2023):

- comprehensiveness(f) = p(x) - p(x without the top units)   (higher = more faithful)
- sufficiency(f)       = p(x) - p(only the top units)        (lower = more faithful)
- AOPC = the mean of each over the fractions.

``p`` is the probability of the class the record explains (its first view); for a regression
head it is the raw output. Units are ranked by signed score (most supporting first).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from attribkit.errors import InvalidInputError
from attribkit.evaluation.metrics import ERASER_FRACTIONS, aopc, comprehensiveness, deletion_count, sufficiency
from attribkit.model import Classifier, TokenizedText
from attribkit.record import Attribution


@dataclass(frozen=True)
class FaithfulnessScores:
    """Faithfulness of one record.

    Attributes:
        view: The class whose probability is tracked.
        probability: p(view | full input).
        fractions: The deletion fractions, in order.
        comprehensiveness: One value per fraction.
        sufficiency: One value per fraction.
    """

    view: str
    probability: float
    fractions: tuple[float, ...]
    comprehensiveness: tuple[float, ...]
    sufficiency: tuple[float, ...]

    @property
    def aopc_comprehensiveness(self) -> float:
        """Mean comprehensiveness over the fractions."""
        return aopc(self.comprehensiveness)

    @property
    def aopc_sufficiency(self) -> float:
        """Mean sufficiency over the fractions."""
        return aopc(self.sufficiency)

    def to_dict(self) -> dict:
        """JSON-ready dict, AOPC values included."""
        return {
            **dataclasses.asdict(self),
            "aopc_comprehensiveness": self.aopc_comprehensiveness,
            "aopc_sufficiency": self.aopc_sufficiency,
        }


def unit_positions(record: Attribution, item: TokenizedText) -> list[list[int]]:
    """For each unit (token or word) of ``record``, the positions of ``item`` it covers.

    Positions are matched by segment and overlapping character offsets, so a word-level record,
    or one tokenized by another tokenizer, still maps onto this model's tokens. Special tokens
    map to nothing.
    """
    units: list[list[int]] = [[] for _ in record.tokens]
    for position, ((start, end), segment) in enumerate(zip(item.offsets, item.segments)):
        if segment < 0:
            continue
        for unit, ((a, b), s) in enumerate(zip(record.offsets, record.segments)):
            if s == segment and max(a, start) < min(b, end):
                units[unit].append(position)
                break
    return units


def _subset(item: TokenizedText, keep: Sequence[int]) -> TokenizedText:
    pick = lambda values: tuple(values[p] for p in keep)  # noqa: E731
    return dataclasses.replace(
        item,
        input_ids=pick(item.input_ids),
        tokens=pick(item.tokens),
        offsets=pick(item.offsets),
        segments=pick(item.segments),
        word_ids=pick(item.word_ids),
        token_type_ids=None if item.token_type_ids is None else pick(item.token_type_ids),
    )


def _probabilities(
    clf: Classifier, items: Sequence[TokenizedText], targets: Sequence[int], batch_size: int
) -> list[float]:
    """p(target | item) for each item (the raw output for regression), in batches of similar length."""
    values = [0.0] * len(items)
    order = sorted(range(len(items)), key=lambda i: len(items[i].input_ids))
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        with torch.no_grad():
            logits = clf.logits(clf.collate([items[i] for i in chunk])).to(torch.float64)
        scores = logits if clf.is_regression else torch.softmax(logits, dim=-1)
        for row, i in enumerate(chunk):
            values[i] = float(scores[row, targets[i]])
    return values


def check_same_length(record: Attribution, item: TokenizedText, units: list[list[int]], number: int) -> None:
    """Refuse a record explained on a differently truncated input than the one about to be perturbed.

    Only checked when either side was truncated: then tokens the record never scored would stay in every
    variant (or scored units would have nothing to delete), a silently wrong score.
    """
    if not (record.truncated or item.truncated):
        return
    covered = {p for positions in units for p in positions}
    unscored = [p for p, s in enumerate(item.segments) if s >= 0 and p not in covered]
    missing = [u for u, positions in enumerate(units) if record.segments[u] >= 0 and not positions]
    if unscored or missing:
        raise InvalidInputError(
            f"record {number} was explained on an input truncated differently ({len(record.tokens)} units) from the "
            f"{len(item.input_ids)} tokens faithfulness would perturb; pass the max_length it was explained with"
        )


def _variants(
    classifier: Classifier,
    record: Attribution,
    fractions: tuple[float, ...],
    number: int,
    max_length: int | None = None,
) -> list[TokenizedText]:
    """The full input, then per fraction: without the top units, and with only them (specials kept)."""
    item = classifier.tokenize(
        record.text if record.pair is None else (record.text, record.pair), max_length=max_length
    )
    units = unit_positions(record, item)
    check_same_length(record, item, units, number)
    scores = record.scores[0]
    real = [i for i, positions in enumerate(units) if positions]
    if not real:
        raise InvalidInputError(f"record {number} has no scored tokens to delete: {record.text[:40]!r}")
    ranked = sorted(real, key=lambda i: (-float(scores[i]), i))
    specials = [p for p, s in enumerate(item.segments) if s < 0]
    variants = [item]
    for f in fractions:
        top = {p for unit in ranked[: deletion_count(len(real), f)] for p in units[unit]}
        variants.append(_subset(item, [p for p in range(len(item.input_ids)) if p not in top]))
        variants.append(_subset(item, sorted(set(specials) | top)))
    return variants


def faithfulness(
    classifier: Classifier,
    records: Sequence[Attribution],
    *,
    fractions: Sequence[float] = ERASER_FRACTIONS,
    batch_size: int = 32,
    max_length: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[FaithfulnessScores]:
    """Comprehensiveness, sufficiency and AOPC of each record under ``classifier``.

    Args:
        classifier: The model the records explain.
        records: From :func:`attribkit.explain` (any method; word-level records work too).
        fractions: Deletion fractions in (0, 1]; ERASER's 1, 5, 10, 20 and 50 % by default.
        batch_size: Perturbed inputs per forward pass.
        max_length: Truncate the inputs to this many tokens, as they were when explained (default: the model's
            limit). A record explained on a differently truncated input is refused (InvalidInputError).
        progress: Called with the number of records finished.

    Returns:
        One :class:`FaithfulnessScores` per record, in order.
    """
    fractions = tuple(float(f) for f in fractions)
    if not fractions:
        raise InvalidInputError("give at least one deletion fraction")
    for f in fractions:
        deletion_count(1, f)  # validates the range
    results: list[FaithfulnessScores] = []
    per_record = 1 + 2 * len(fractions)
    group = max(1, batch_size // per_record)  # records whose variants share forward passes
    for first in range(0, len(records), group):
        chunk = records[first : first + group]
        variants, targets = [], []
        for number, record in enumerate(chunk, start=first + 1):
            variants += _variants(classifier, record, fractions, number, max_length)
            targets += [0 if classifier.is_regression else classifier.label_index(record.views[0])] * per_record
        probs = _probabilities(classifier, variants, targets, batch_size)
        for k, record in enumerate(chunk):
            mine = probs[k * per_record : (k + 1) * per_record]
            full = mine[0]
            results.append(
                FaithfulnessScores(
                    view=record.views[0],
                    probability=full,
                    fractions=fractions,
                    comprehensiveness=tuple(comprehensiveness(full, p) for p in mine[1::2]),
                    sufficiency=tuple(sufficiency(full, p) for p in mine[2::2]),
                )
            )
        if progress is not None:
            progress(len(results))
    return results

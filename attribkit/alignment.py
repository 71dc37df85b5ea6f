"""Align two records of the same text token by token, or by character offsets when tokenizers differ.

Records from models with the same tokenizer have identical tokens and are aligned one to one
(special tokens included). Otherwise every token is placed on its character span; spans that
overlap (across both records) are merged into one unit — in practice a word — and each
record's scores are summed over the tokens inside each unit. Special tokens are dropped then,
since they have no text to align on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attribkit.errors import InvalidInputError
from attribkit.record import Attribution
from attribkit.render.html import token_labels
from attribkit.units import Unit, shared_units, unit_members


@dataclass(frozen=True)
class Alignment:
    """Two maps over shared units.

    Attributes:
        units: Text of each unit.
        first: ``[n_units]`` scores of the first record (view 0).
        second: ``[n_units]`` scores of the second record (view 0).
        by: ``"tokens"`` (identical tokenization) or ``"offsets"`` (merged character spans).
    """

    units: tuple[str, ...]
    first: np.ndarray
    second: np.ndarray
    by: str


def align(first: Attribution, second: Attribution) -> Alignment:
    """Put the first view of two records of the same input on common units.

    Raises:
        InvalidInputError: the records are of different texts.
    """
    if first.text != second.text or first.pair != second.pair:
        raise InvalidInputError("the two records explain different texts; align records of the same input")
    a, b = np.asarray(first.scores[0], dtype=np.float64), np.asarray(second.scores[0], dtype=np.float64)
    if first.tokens == second.tokens and first.offsets == second.offsets and first.segments == second.segments:
        return Alignment(tuple(token_labels(first)), a, b, "tokens")
    units = shared_units(first.offsets, first.segments, second.offsets, second.segments)
    return Alignment(
        tuple((first.text if s == 0 else first.pair or "")[start:end] for s, start, end in units),
        _pool(first, a, units),
        _pool(second, b, units),
        "offsets",
    )


def _pool(record: Attribution, scores: np.ndarray, units: list[Unit]) -> np.ndarray:
    """Sum a record's token scores into the units that contain each token."""
    pooled = np.zeros(len(units), dtype=np.float64)
    for score, unit in zip(scores, unit_members(record.offsets, record.segments, units)):
        if unit >= 0:
            pooled[unit] += score
    return pooled

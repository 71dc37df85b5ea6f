"""Cut stacked rows (example x step, or example x occluded token) into padding-free chunks."""

from __future__ import annotations

from typing import Callable, Iterator

import torch
from torch import Tensor


def equal_length_chunks(lengths: Tensor, rows_for_width: Callable[[int], int]) -> Iterator[tuple[Tensor, int]]:
    """Group rows of equal real length into chunks, so no chunk carries padding.

    Args:
        lengths: ``[rows]`` real (non-pad) length of each row.
        rows_for_width: Largest number of rows one forward pass may take at a given width.

    Yields:
        ``(row_indices, width)`` pairs; every row of a chunk has exactly ``width`` real tokens.
    """
    order = torch.argsort(lengths, descending=True, stable=True)
    sorted_lengths = lengths[order]
    widths, counts = torch.unique_consecutive(sorted_lengths, return_counts=True)
    start = 0
    for width, count in zip(widths.tolist(), counts.tolist()):
        group = order[start : start + count]
        step = max(1, rows_for_width(int(width)))
        for offset in range(0, count, step):
            yield group[offset : offset + step], int(width)
        start += count


def trim_rows(batch: dict[str, Tensor], rows: Tensor, width: int) -> dict[str, Tensor]:
    """Rows ``rows`` of ``batch`` cut to ``width`` columns, with no attention mask.

    Every selected row has exactly ``width`` real tokens, so the mask would be all ones; leaving
    it out lets the attention kernels skip masking.
    """
    return {k: v[rows, :width] for k, v in batch.items() if k != "attention_mask"}

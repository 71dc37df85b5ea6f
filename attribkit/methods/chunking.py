"""Cut stacked rows (example x step, or example x occluded token) into length-sorted chunks that fit a pass."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from attribkit.errors import OptionError

if TYPE_CHECKING:
    from attribkit.model import Classifier

DEFAULT_MEMORY_MB = 2048  # activation-memory budget of one forward + backward pass, MiB
#: On a CPU, passes above this size ran slower, not faster (activations fall out of cache): measured
#: on MiniLM, 50-step IG over 32 SST-2 sentences took 10.2-10.4 s at 128-512 MiB and 16.2 s at 2048.
CPU_PASS_MB = 512


def check_chunking(internal_batch_size: int | None, memory_mb: float) -> None:
    """Validate the two ways of sizing a pass: a row count, or a memory budget in MiB.

    Raises:
        OptionError: ``internal_batch_size`` not a positive integer, or ``memory_mb`` not positive.
    """
    if internal_batch_size is not None and (
        isinstance(internal_batch_size, bool) or not isinstance(internal_batch_size, int) or internal_batch_size < 1
    ):
        raise OptionError(f"internal_batch_size must be a positive integer; got {internal_batch_size!r}")
    if isinstance(memory_mb, bool) or not isinstance(memory_mb, (int, float)) or memory_mb <= 0:
        raise OptionError(f"memory_mb must be positive; got {memory_mb!r}")


def chunking_options(internal_batch_size: int | None, memory_mb: float) -> dict[str, float]:
    """How passes were sized, for a record's options: the row count when given, else the budget."""
    return {"internal_batch_size": internal_batch_size} if internal_batch_size is not None else {"memory_mb": memory_mb}


def length_sorted_chunks(lengths: Tensor, rows_for_width: Callable[[int], int]) -> Iterator[tuple[Tensor, int]]:
    """Cut rows, longest first, into chunks that fit a pass; each chunk is as wide as its longest row.

    Rows of one exact length form their own chunks (no padding at all) when there are enough of
    them to fill at least a quarter of a pass, as the (example x step) rows of many-step IG do;
    rarer lengths are pooled with their neighbours into one padded pass, so a length-bucketed
    batch of single-step rows runs as one pass instead of many tiny ones (on a CPU the per-pass
    overhead of tiny passes cost more than the padding they avoid).

    Args:
        lengths: ``[rows]`` real (non-pad) length of each row.
        rows_for_width: Largest number of rows one forward pass may take at a given width.

    Yields:
        ``(row_indices, width)`` pairs; no row of a chunk is longer than ``width``.
    """
    order = torch.argsort(lengths, descending=True, stable=True)
    widths, counts = torch.unique_consecutive(lengths[order], return_counts=True)
    pooled: list[Tensor] = []
    pooled_rows, pooled_width = 0, 0
    start = 0
    for width, count in zip(widths.tolist(), counts.tolist()):
        group, start = order[start : start + count], start + count
        cap = max(1, rows_for_width(int(width)))
        if 4 * count >= cap:
            for offset in range(0, count, cap):
                yield group[offset : offset + cap], int(width)
            continue
        if pooled and pooled_rows + count > max(1, rows_for_width(pooled_width)):
            yield torch.cat(pooled), pooled_width
            pooled, pooled_rows = [], 0
        if not pooled:
            pooled_width = int(width)
        pooled.append(group)
        pooled_rows += count
    if pooled:
        yield torch.cat(pooled), pooled_width


def select_rows(batch: dict[str, Tensor], rows: Tensor) -> dict[str, Tensor]:
    """Rows ``rows`` of every ``[batch, ...]`` tensor of ``batch`` (other entries as they are)."""
    n = batch["input_ids"].shape[0]
    return {k: v[rows] if isinstance(v, Tensor) and v.shape[:1] == (n,) else v for k, v in batch.items()}


def trim_rows(batch: dict[str, Tensor], rows: Tensor, width: int) -> dict[str, Tensor]:
    """Rows ``rows`` of ``batch`` cut to ``width`` columns.

    The attention mask is kept only where some row is shorter than ``width``; without it (every
    row exactly ``width`` real tokens) the attention kernels skip masking.
    """
    sub = {k: v[rows, :width] for k, v in batch.items()}
    if bool(sub["attention_mask"].all()):
        del sub["attention_mask"]
    return sub


def rows_for_budget(classifier: Classifier, seq_len: int, memory_mb: float, *, create_graph: bool = False) -> int:
    """How many rows of ``seq_len`` tokens one forward + backward pass may take within ``memory_mb``.

    An estimate of the activations autograd keeps per row: about 16 hidden-sized tensors and 3
    attention maps per layer (twice that when the graph is kept for a second-order backward).
    ``memory_mb`` is an upper bound: on a CPU a pass is also kept within :data:`CPU_PASS_MB`,
    where larger passes were measured to be slower.

    Args:
        classifier: The model (its config gives hidden size, layers and heads; its dtype the bytes).
        seq_len: Tokens per row.
        memory_mb: Activation-memory budget of one pass, in MiB.
        create_graph: The pass keeps its graph (``create_graph=True``).

    Returns:
        At least 1.
    """
    config = classifier.model.config
    hidden = int(getattr(config, "hidden_size", 768))
    layers = int(getattr(config, "num_hidden_layers", 12))
    heads = int(getattr(config, "num_attention_heads", 12))
    itemsize = torch.finfo(classifier.dtype).bits // 8
    per_row = layers * seq_len * (16 * hidden + 3 * heads * seq_len) * itemsize
    per_row *= 2 if create_graph else 1
    if classifier.device.type == "cpu":
        memory_mb = min(memory_mb, CPU_PASS_MB)
    return max(1, int(memory_mb * 2**20 // per_row))

"""Pure functions from dimension-level attributions to token scores.

None of them mutates its input; all are defined (and finite) on all-zero maps, and all are
differentiable, so AD-KD losses use them too.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from attribkit.errors import OptionError

SIGNS = ("signed", "absolute")
AGGREGATES = ("sum", "l2")
NORMALIZATIONS = ("l2", "l1", "max")


def check_reduction(
    *, sign: str, aggregate: str, top_k: int | None, normalize: str | None, hidden: int | None = None
) -> None:
    """Validate reduction options before any work is done.

    Raises:
        OptionError: unknown value, ``top_k`` not in ``1..hidden``, or ``sign='signed'`` with
            ``aggregate='l2'`` (an L2 norm has no sign).
    """
    if sign not in SIGNS:
        raise OptionError(f"unknown sign {sign!r}; choose one of: {', '.join(SIGNS)}")
    if aggregate not in AGGREGATES:
        raise OptionError(f"unknown aggregate {aggregate!r}; choose one of: {', '.join(AGGREGATES)}")
    if aggregate == "l2" and sign == "signed":
        raise OptionError("aggregate='l2' gives unsigned scores; pass sign='absolute' with it")
    if normalize is not None and normalize not in NORMALIZATIONS:
        raise OptionError(f"unknown normalize {normalize!r}; choose one of: {', '.join(NORMALIZATIONS)} or None")
    if top_k is not None:
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise OptionError(f"top_k must be a positive integer; got {top_k!r}")
        if hidden is not None and top_k > hidden:
            raise OptionError(f"top_k={top_k} is larger than the layer's hidden size {hidden}; use at most {hidden}")


def reduce_dims(
    attributions: Tensor, *, sign: str = "signed", top_k: int | None = None, aggregate: str = "sum"
) -> Tensor:
    """Token scores from dimension-level attributions.

    ``top_k`` keeps, per token, the K dimensions of largest ``|A|`` (the teacher side of AD-KD);
    ``aggregate`` then sums (signed values, or ``|A|`` when ``sign='absolute'``) or takes the L2
    norm over the kept dimensions.

    Shapes:
        ``[..., seq, dims]`` -> ``[..., seq]``.
    """
    check_reduction(sign=sign, aggregate=aggregate, top_k=top_k, normalize=None, hidden=attributions.shape[-1])
    values = attributions.abs() if sign == "absolute" else attributions
    if top_k is not None and top_k < attributions.shape[-1]:
        index = attributions.abs().topk(top_k, dim=-1).indices
        values = values.gather(-1, index)
    if aggregate == "l2":
        # sqrt of a sum of squares, with a zero-safe gradient at all-zero tokens
        squares = values.pow(2).sum(dim=-1)
        safe = torch.where(squares > 0, squares, torch.ones_like(squares))
        return torch.where(squares > 0, safe.sqrt(), torch.zeros_like(squares))
    return values.sum(dim=-1)


def normalize_scores(scores: Tensor, mask: Tensor | None = None, *, method: str | None = "l2") -> Tensor:
    """Normalize token scores over the real tokens of each map.

    Args:
        scores: ``[..., seq]`` token scores.
        mask: ``[..., seq]`` (broadcastable), nonzero at real tokens; None = all real.
        method: ``l2`` (unit L2 norm), ``l1`` (unit sum of |s|), ``max`` (max |s| = 1), or None.

    Returns:
        A new tensor of the same shape; masked-out positions are exactly 0 and an all-zero map
        stays all-zero (never NaN).
    """
    if method is None:
        return scores if mask is None else scores * mask.to(scores.dtype)
    if method not in NORMALIZATIONS:
        raise OptionError(f"unknown normalize {method!r}; choose one of: {', '.join(NORMALIZATIONS)} or None")
    masked = scores if mask is None else scores * mask.to(scores.dtype)
    if method == "l2":
        norm = masked.pow(2).sum(dim=-1, keepdim=True)
        safe = torch.where(norm > 0, norm, torch.ones_like(norm)).sqrt()
    elif method == "l1":
        norm = masked.abs().sum(dim=-1, keepdim=True)
        safe = torch.where(norm > 0, norm, torch.ones_like(norm))
    else:
        norm = masked.abs().amax(dim=-1, keepdim=True)
        safe = torch.where(norm > 0, norm, torch.ones_like(norm))
    return masked / safe


def merge_words(scores: Tensor, groups: Sequence[int], *, aggregate: str = "sum") -> Tensor:
    """Merge sub-word scores into word scores.

    Args:
        scores: ``[views, tokens]``.
        groups: For each token, the index of the word it belongs to (``0..n_words-1``).
        aggregate: ``sum`` adds scores (keeps IG completeness); ``l2`` takes the root of the sum
            of squares (for L2-aggregated, unsigned maps).

    Shapes:
        ``[views, tokens]`` -> ``[views, n_words]``.
    """
    index = torch.as_tensor(list(groups), dtype=torch.long, device=scores.device)
    n_words = int(index.max()) + 1 if index.numel() else 0
    out = scores.new_zeros((scores.shape[0], n_words))
    if aggregate == "l2":
        return out.index_add(1, index, scores.pow(2)).sqrt()
    return out.index_add(1, index, scores)


def top_tokens(
    scores: Sequence[float] | np.ndarray,
    tokens: Sequence[str],
    k: int = 5,
    *,
    by: str = "abs",
    skip: Sequence[bool] | None = None,
) -> list[tuple[int, str, float]]:
    """The ``k`` highest-scoring tokens as ``(position, token, score)``, best first.

    Args:
        by: ``abs`` ranks by |score|, ``pos`` by score, ``neg`` by -score.
        skip: True for positions to leave out (e.g. special tokens: ``[s < 0 for s in record.segments]``).
    """
    if by not in ("abs", "pos", "neg"):
        raise OptionError(f"unknown ranking {by!r}; choose one of: abs, pos, neg")
    key = {"abs": lambda s: abs(s), "pos": lambda s: s, "neg": lambda s: -s}[by]
    candidates = [i for i in range(len(tokens)) if skip is None or not skip[i]]
    order = sorted(candidates, key=lambda i: key(float(scores[i])), reverse=True)
    return [(i, tokens[i], float(scores[i])) for i in order[: max(k, 0)]]


def scaled_to_max(values: np.ndarray) -> np.ndarray:
    """A map divided by its largest |score| (unchanged when all zero). Shapes: ``[n]`` -> ``[n]``."""
    scale = float(np.abs(values).max()) if values.size else 0.0
    return values / scale if scale > 0 else values

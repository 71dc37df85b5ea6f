"""Pure metrics on token maps: agreement between two maps, and the faithfulness arithmetic.

Agreement (two maps over the same tokens): Spearman's rho, Kendall's tau-b, top-k overlap and
cosine similarity. Faithfulness after ERASER (DeYoung et al., ACL 2020) and ferret (Attanasio
et al., EACL 2023): *comprehensiveness* ``p(x) - p(x without the top tokens)``, *sufficiency*
``p(x) - p(only the top tokens)``, and AOPC, their mean over the deletion fractions. The model
calls live in :mod:`attribkit.evaluation.erasure` (``attribkit.faithfulness``); everything here works on plain numbers.

Undefined values (a constant map has no rank correlation, a zero map no direction) are
``nan``, never a made-up number; summaries skip them and say how many were left out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from attribkit.errors import InvalidInputError, OptionError

#: ERASER's deletion fractions for AOPC (1%, 5%, 10%, 20%, 50% of the tokens).
ERASER_FRACTIONS = (0.01, 0.05, 0.1, 0.2, 0.5)


def _pair(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise InvalidInputError(f"the two maps must have the same number of tokens; got {x.size} and {y.size}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise InvalidInputError("maps must be finite (no NaN or infinity)")
    return x, y


def rank(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing the mean of their ranks. Shapes: ``[n]`` -> ``[n]``."""
    x = np.asarray(values, dtype=np.float64).ravel()
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(x.size, dtype=np.float64)
    sorted_x = x[order]
    start = 0
    while start < x.size:
        end = start
        while end + 1 < x.size and sorted_x[end + 1] == sorted_x[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    dx, dy = x - x.mean(), y - y.mean()
    denominator = math.sqrt(float(dx @ dx) * float(dy @ dy))
    return float(dx @ dy) / denominator if denominator > 0 else math.nan


def pearson(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Pearson's correlation; nan if either sequence is constant (as ``scipy.stats.pearsonr``)."""
    x, y = _pair(a, b)
    return _pearson(x, y) if x.size > 1 else math.nan


def spearman(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Spearman's rank correlation (Pearson on tie-averaged ranks); nan if either map is constant."""
    x, y = _pair(a, b)
    return _pearson(rank(x), rank(y)) if x.size > 1 else math.nan


def kendall_tau(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Kendall's tau-b (ties corrected, as ``scipy.stats.kendalltau``); nan if either map is constant."""
    x, y = _pair(a, b)
    if x.size < 2:
        return math.nan
    i, j = np.triu_indices(x.size, k=1)
    sx, sy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
    concordant_minus_discordant = float((sx * sy).sum())
    untied_x, untied_y = float(np.count_nonzero(sx)), float(np.count_nonzero(sy))
    denominator = math.sqrt(untied_x * untied_y)
    return concordant_minus_discordant / denominator if denominator > 0 else math.nan


def top_k_indices(scores: Sequence[float] | np.ndarray, k: int, *, by: str = "abs") -> list[int]:
    """Positions of the ``k`` largest scores (``by='abs'``: largest |score|; ``'value'``: largest score).

    Ties go to the earlier position, so the result is deterministic.
    """
    x = np.asarray(scores, dtype=np.float64).ravel()
    if by not in ("abs", "value"):
        raise OptionError(f"unknown ranking {by!r}; choose abs or value")
    key = np.abs(x) if by == "abs" else x
    order = sorted(range(x.size), key=lambda p: (-key[p], p))
    return order[: max(0, min(k, x.size))]


def top_k_overlap(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, k: int, *, by: str = "abs"
) -> float:
    """Share of the ``k`` most important tokens of ``a`` that are also among those of ``b``.

    Importance is |score| by default (``by='value'`` ranks by signed score). ``k`` larger than
    the number of tokens is cut to it.
    """
    x, y = _pair(a, b)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise OptionError(f"k must be a positive integer; got {k!r}")
    k = min(k, x.size)
    if k == 0:
        return math.nan
    return len(set(top_k_indices(x, k, by=by)) & set(top_k_indices(y, k, by=by))) / k


def cosine(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Cosine similarity of the two maps; nan if either is all zero."""
    x, y = _pair(a, b)
    denominator = float(np.linalg.norm(x) * np.linalg.norm(y))
    return float(x @ y) / denominator if denominator > 0 else math.nan


def agreement(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, *, k: int = 5) -> dict[str, float]:
    """Every agreement score of two maps: ``spearman``, ``kendall``, ``top{k}_overlap``, ``cosine``."""
    return {
        "spearman": spearman(a, b),
        "kendall": kendall_tau(a, b),
        f"top{k}_overlap": top_k_overlap(a, b, k),
        "cosine": cosine(a, b),
    }


def deletion_count(n_tokens: int, fraction: float) -> int:
    """How many tokens a deletion ``fraction`` removes: ``ceil(fraction * n)``, at least 1, at most n."""
    if not 0 < fraction <= 1:
        raise OptionError(f"deletion fractions must be in (0, 1]; got {fraction!r}")
    return min(n_tokens, max(1, math.ceil(fraction * n_tokens - 1e-9)))


def comprehensiveness(p_full: float, p_without_top: float) -> float:
    """ERASER comprehensiveness: the drop in the explained class's probability when the top tokens are removed."""
    return float(p_full) - float(p_without_top)


def sufficiency(p_full: float, p_only_top: float) -> float:
    """ERASER sufficiency: the drop when *only* the top tokens are kept (lower is better)."""
    return float(p_full) - float(p_only_top)


def aopc(values: Sequence[float] | np.ndarray) -> float:
    """Area over the perturbation curve: the mean of a per-fraction score over the fractions."""
    array = np.asarray(values, dtype=np.float64)
    if array.size == 0:
        raise InvalidInputError("AOPC needs at least one deletion fraction")
    return float(array.mean())


def summarize(rows: Sequence[Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """Mean, standard deviation and count of every metric over rows, skipping nan.

    Returns:
        ``{metric: {"mean": ..., "std": ..., "n": ..., "undefined": ...}}`` (population std).
    """
    names: list[str] = []
    for row in rows:
        names.extend(name for name in row if name not in names)
    out: dict[str, dict[str, float]] = {}
    for name in names:
        values = np.array([row[name] for row in rows if name in row], dtype=np.float64)
        finite = values[np.isfinite(values)]
        out[name] = {
            "mean": float(finite.mean()) if finite.size else math.nan,
            "std": float(finite.std()) if finite.size else math.nan,
            "n": int(finite.size),
            "undefined": int(values.size - finite.size),
        }
    return out

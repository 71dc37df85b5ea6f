"""GLUE metrics in plain numpy: accuracy, F1, Matthews correlation, Pearson and Spearman."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from attribkit_distill.tasks import GlueTask


def accuracy(predictions: Sequence[int], labels: Sequence[int]) -> float:
    p, y = np.asarray(predictions), np.asarray(labels)
    return float((p == y).mean())


def f1(predictions: Sequence[int], labels: Sequence[int]) -> float:
    """F1 of the positive class (1); 0 when there are no true positives."""
    p, y = np.asarray(predictions), np.asarray(labels)
    tp = float(((p == 1) & (y == 1)).sum())
    fp = float(((p == 1) & (y != 1)).sum())
    fn = float(((p != 1) & (y == 1)).sum())
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


def matthews_corrcoef(predictions: Sequence[int], labels: Sequence[int]) -> float:
    """Binary MCC; 0 when a marginal is constant (as scikit-learn defines it)."""
    p, y = np.asarray(predictions) == 1, np.asarray(labels) == 1
    tp, tn = float((p & y).sum()), float((~p & ~y).sum())
    fp, fn = float((p & ~y).sum()), float((~p & y).sum())
    denominator = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return 0.0 if denominator == 0 else float((tp * tn - fp * fn) / denominator)


def pearson(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    a, b = a - a.mean(), b - b.mean()
    denominator = np.sqrt((a * a).sum() * (b * b).sum())
    return 0.0 if denominator == 0 else float((a * b).sum() / denominator)


def average_ranks(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties sharing the mean of their ranks."""
    v = np.asarray(values, dtype=np.float64)
    order = np.argsort(v, kind="stable")
    ranks = np.empty(len(v), dtype=np.float64)
    sorted_v = v[order]
    start = 0
    while start < len(v):
        end = start
        while end + 1 < len(v) and sorted_v[end + 1] == sorted_v[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def spearman(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    return pearson(average_ranks(x), average_ranks(y))


_METRICS: dict[str, Callable[[Any, Any], float]] = {
    "accuracy": accuracy,
    "f1": f1,
    "mcc": matthews_corrcoef,
    "pearson": pearson,
    "spearman": spearman,
}


def task_metrics(
    task: GlueTask, predictions: Sequence[float] | np.ndarray, labels: Sequence[float] | np.ndarray
) -> dict[str, float]:
    """Every metric of ``task`` (x100, as GLUE reports them) for class predictions or scores."""
    return {name: 100.0 * _METRICS[name](predictions, labels) for name in task.metrics}

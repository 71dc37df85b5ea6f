"""GLUE metrics in plain numpy: accuracy, F1, Matthews correlation, Pearson and Spearman."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from attribkit import metrics
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
    """:func:`attribkit.evaluation.metrics.pearson`, with constant predictions scored 0 instead of nan.

    A student that predicts one score for every pair has no correlation with the labels; 0 keeps
    "the best checkpoint on dev" well defined where nan would compare false with everything.
    """
    value = metrics.pearson(x, y)
    return 0.0 if math.isnan(value) else value


def spearman(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """:func:`attribkit.evaluation.metrics.spearman` (one rank implementation), constant predictions scored 0 as above."""
    value = metrics.spearman(x, y)
    return 0.0 if math.isnan(value) else value


#: Ranks 1..n, ties sharing the mean of their ranks (:func:`attribkit.evaluation.metrics.rank`).
average_ranks = metrics.rank


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

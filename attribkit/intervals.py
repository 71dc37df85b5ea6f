"""Bootstrap confidence intervals over sentences: a score's mean, and the paired difference of two scores.

A leaderboard ranks explainers by their mean score on a sample of sentences; another sample would
rank them differently. The percentile bootstrap (Efron & Tibshirani, 1993) resamples the sentences
with replacement and reads the interval off the resampled means. For two methods scored on the
same sentences, resampling the *per-sentence differences* gives the paired interval, which is
much narrower than two separate intervals when the methods' scores move together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from attribkit.errors import InvalidInputError

#: Resamples per interval: the percentile ends move by well under 1 % of the interval's width between seeds.
RESAMPLES = 10_000


@dataclass(frozen=True)
class Interval:
    """A mean and its percentile-bootstrap confidence interval.

    Attributes:
        mean: The sample mean.
        low: Lower end of the interval.
        high: Upper end.
        confidence: The interval's level (0.95 = 95 %).
        n: Sample size.
    """

    mean: float
    low: float
    high: float
    confidence: float
    n: int

    def excludes(self, value: float = 0.0) -> bool:
        """Whether ``value`` lies outside the interval (for a paired difference: a difference the data support)."""
        return value < self.low or value > self.high

    def __str__(self) -> str:
        return f"{self.mean:.3f} [{self.low:.3f}, {self.high:.3f}]"


def bootstrap_mean(
    values: Sequence[float] | np.ndarray, *, confidence: float = 0.95, resamples: int = RESAMPLES, seed: int = 0
) -> Interval:
    """Percentile-bootstrap interval of the mean of ``values``.

    Args:
        values: One value per sentence (at least 2, all finite).
        confidence: Level in (0, 1).
        resamples: Bootstrap resamples.
        seed: The resampling seed (the same seed resamples the same sentences for every call of the same size).

    Returns:
        The :class:`Interval`.
    """
    data = np.asarray(values, dtype=np.float64)
    if data.ndim != 1 or len(data) < 2:
        raise InvalidInputError(f"a bootstrap interval needs at least 2 values; got {data.size}")
    if not np.all(np.isfinite(data)):
        raise InvalidInputError("a bootstrap interval needs finite values (got NaN or infinity)")
    if not 0 < confidence < 1:
        raise InvalidInputError(f"confidence must be in (0, 1); got {confidence}")
    means = data[resample_indices(len(data), resamples, seed)].mean(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return Interval(float(data.mean()), float(low), float(high), confidence, len(data))


def paired_difference(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    *,
    confidence: float = 0.95,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> Interval:
    """Interval of ``mean(a - b)`` for two scores of the same sentences (resampling sentences, not scores).

    Shapes:
        a, b ``[n_sentences]``, in the same sentence order.
    """
    first, second = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if first.shape != second.shape:
        raise InvalidInputError(f"paired scores need the same sentences; got {first.size} and {second.size} values")
    return bootstrap_mean(first - second, confidence=confidence, resamples=resamples, seed=seed)


def resample_indices(n: int, resamples: int, seed: int) -> np.ndarray:
    """``[resamples, n]`` sentence indices drawn with replacement."""
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))

"""Teacher/student case studies: explain both models on the same inputs and compare the maps.

Both models explain the *same* class for each example (the gold label when given, else the
teacher's prediction), so the two maps answer the same question.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from attribkit.alignment import align
from attribkit.errors import InvalidInputError
from attribkit.evaluation.metrics import agreement
from attribkit.facade import explain
from attribkit.model import Classifier, Text
from attribkit.record import Attribution
from attribkit.reduce import scaled_to_max


@dataclass(frozen=True)
class Comparison:
    """One example explained by a teacher and a student.

    Attributes:
        teacher: The teacher's record.
        student: The student's record.
        units: Aligned units (tokens, or merged words when the tokenizers differ).
        teacher_scores: ``[n_units]`` teacher scores on the units.
        student_scores: ``[n_units]`` student scores on the units.
        aligned_by: ``"tokens"`` or ``"offsets"``.
        agreement: Spearman, Kendall, top-k overlap and cosine of the two maps.
    """

    teacher: Attribution
    student: Attribution
    units: tuple[str, ...]
    teacher_scores: np.ndarray
    student_scores: np.ndarray
    aligned_by: str
    agreement: dict[str, float] = field(default_factory=dict)

    @property
    def same_prediction(self) -> bool:
        """True when both models predict the same class."""
        return self.teacher.prediction == self.student.prediction

    def differences(self) -> np.ndarray:
        """``[n_units]`` teacher minus student, each map scaled to max |score| = 1 first."""
        return scaled_to_max(self.teacher_scores) - scaled_to_max(self.student_scores)

    def most_different(self, k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` units where the scaled maps differ most, as ``(unit, teacher - student)``."""
        diff = self.differences()
        order = sorted(range(len(diff)), key=lambda i: (-abs(diff[i]), i))[:k]
        return [(self.units[i], float(diff[i])) for i in order]

    def _repr_html_(self) -> str:
        from attribkit.render.comparison import render_comparison

        return render_comparison([self], full_page=False)


def compare_records(teacher: Attribution, student: Attribution, *, k: int = 5) -> Comparison:
    """Align two records of the same input and score their agreement (top-``k`` overlap)."""
    aligned = align(teacher, student)
    scores = agreement(aligned.first, aligned.second, k=k) if len(aligned.units) else {}
    return Comparison(teacher, student, aligned.units, aligned.first, aligned.second, aligned.by, scores)


def compare(
    teacher: Classifier,
    student: Classifier,
    texts: Sequence[Text],
    *,
    labels: Sequence[int | str] | None = None,
    method: str = "fast_ig",
    k: int = 5,
    progress: Callable[[int], None] | None = None,
    **options: Any,
) -> list[Comparison]:
    """Explain ``texts`` with both models and compare the maps.

    Args:
        teacher: The reference model.
        student: The model compared with it (any tokenizer; units are aligned by offsets if needed).
        texts: Strings or ``(text, pair)`` tuples.
        labels: Gold labels (class names or indices); explained when given.
        method: Attribution method for both models.
        k: Top-k for the overlap score.
        progress: Called with the number of texts finished (teacher and student both done).
        **options: Passed to :func:`attribkit.explain` for both models (``steps``, ``normalize`` ...).

    Returns:
        One :class:`Comparison` per text, in order.
    """
    if student.labels != teacher.labels:
        raise InvalidInputError(
            f"teacher and student have different classes ({', '.join(teacher.labels)} vs "
            f"{', '.join(student.labels)}); compare models of the same task"
        )
    step = (lambda n: progress(n // 2)) if progress is not None else None
    teacher_records = explain(
        teacher,
        texts,
        method=method,
        targets="gold" if labels is not None else "pred",
        labels=labels,
        progress=step,
        **options,
    )
    explained = [r.views[0] for r in teacher_records]
    offset = len(texts)
    student_step = (lambda n: progress((offset + n) // 2)) if progress is not None else None
    student_records = explain(
        student, texts, method=method, targets=explained, labels=labels, progress=student_step, **options
    )
    return [compare_records(t, s, k=k) for t, s in zip(teacher_records, student_records)]

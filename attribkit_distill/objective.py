"""Logit distillation and the combined AD-KD objective ``alpha*KD + (1-alpha)*CE + beta*L_attr``.

Hinton et al., "Distilling the Knowledge in a Neural Network", 2015; Wu et al., ACL 2023.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attribkit import InvalidInputError, OptionError
from attribkit_distill.cross_data import is_cross, student_side, teacher_side
from attribkit_distill.cross_tokenizer import CrossTokenizerAttributionLoss
from attribkit_distill.loss import AttributionLoss, check_shared_vocabulary
from attribkit_distill.maps import is_regression, model_inputs

ANNEAL_SCHEDULES = ("step", "epoch")
REGRESSION_FORMS = ("scaled", "plain")


class KDLoss(nn.Module):
    """Soft cross-entropy between ``softmax(t/T)`` and ``log_softmax(s/T)``; squared error for regression.

    Args:
        temperature: T >= 1 at the start of training.
        t_squared: Multiply by T^2 (Hinton et al.); the AD-KD reference code does not.
        anneal: Lower T to 1 over training.
        anneal_every: ``step``: linearly with every step (``progress`` 0 -> 1); ``epoch``: down once
            per epoch, reaching 1 in the last one, as the AD-KD reference code does (needs ``epochs``).
        epochs: Number of epochs of the run (for ``anneal_every="epoch"``).
        regression: ``scaled``: ``MSE(s/T, t/T)``, the reference code's regression KD (the squared
            error divided by T^2); ``plain``: ``MSE(s, t)``, ignoring T (this project's form before).
    """

    def __init__(
        self,
        temperature: float = 1.0,
        *,
        t_squared: bool = False,
        anneal: bool = False,
        anneal_every: str = "step",
        epochs: int | None = None,
        regression: str = "scaled",
    ) -> None:
        super().__init__()
        if not isinstance(temperature, (int, float)) or temperature <= 0:
            raise OptionError(f"temperature must be positive; got {temperature!r}")
        if anneal_every not in ANNEAL_SCHEDULES:
            raise OptionError(f"unknown anneal_every {anneal_every!r}; choose one of: {', '.join(ANNEAL_SCHEDULES)}")
        if anneal and anneal_every == "epoch" and (not isinstance(epochs, int) or epochs < 1):
            raise OptionError(f"anneal_every='epoch' needs the number of epochs (a positive integer); got {epochs!r}")
        if regression not in REGRESSION_FORMS:
            raise OptionError(
                f"unknown regression KD form {regression!r}; choose one of: {', '.join(REGRESSION_FORMS)}"
            )
        self.temperature, self.t_squared, self.anneal = float(temperature), t_squared, anneal
        self.anneal_every, self.epochs, self.regression = anneal_every, epochs, regression

    def temperature_at(self, progress: float, epoch: int | None = None) -> float:
        """T at a point of training (``progress`` in [0, 1]; ``epoch``: the 0-based epoch being trained).

        Constant without annealing; linear ``T -> 1`` with ``anneal_every="step"``; with
        ``"epoch"``, epoch ``e`` of ``E`` uses ``T + (1 - T) * e / (E - 1)`` (1 throughout for a
        single epoch). Give ``epoch`` from the training loop: the real epoch boundaries, also for a
        run cut by a step limit or a fractional epoch count. Without it, ``e = floor(progress * E)``.
        """
        if not self.anneal:
            return self.temperature
        progress = min(max(float(progress), 0.0), 1.0)
        if self.anneal_every == "epoch":
            epochs = int(self.epochs or 1)
            current = min(int(progress * epochs) if epoch is None else max(int(epoch), 0), epochs - 1)
            progress = 1.0 if epochs == 1 else current / (epochs - 1)
        return self.temperature + (1.0 - self.temperature) * progress

    def forward(
        self, student_logits: Tensor, teacher_logits: Tensor, *, progress: float = 0.0, epoch: int | None = None
    ) -> Tensor:
        """Mean over the batch (``progress``, ``epoch``: see :meth:`temperature_at`). Shapes: ``[batch, labels]`` twice -> scalar."""
        teacher_logits = teacher_logits.detach().to(student_logits.dtype)
        if student_logits.shape != teacher_logits.shape:
            raise InvalidInputError(
                f"student logits {tuple(student_logits.shape)} and teacher logits {tuple(teacher_logits.shape)} differ"
            )
        t = self.temperature_at(progress, epoch)
        if student_logits.shape[-1] == 1:
            if self.regression == "plain":
                return F.mse_loss(student_logits, teacher_logits)
            return F.mse_loss(student_logits / t, teacher_logits / t)
        soft = -(F.softmax(teacher_logits / t, dim=-1) * F.log_softmax(student_logits / t, dim=-1)).sum(dim=-1).mean()
        return soft * t * t if self.t_squared else soft

    def options(self) -> dict[str, Any]:
        """The settings, for run records."""
        return {
            "temperature": self.temperature,
            "t_squared": self.t_squared,
            "anneal": self.anneal,
            "anneal_every": self.anneal_every,
            "epochs": self.epochs,
            "regression": self.regression,
        }


@dataclass(frozen=True)
class ObjectiveOutput:
    """A training step's loss.

    Attributes:
        total: The weighted sum to back-propagate.
        terms: Each named, unweighted term (``ce``, ``kd``, ``attr``, ...) as a scalar tensor (detached).
        student_logits: ``[batch, labels]``.
        weighted: Each term times its weight, still attached to the graph (they sum to ``total``),
            for per-term gradient diagnostics.
    """

    total: Tensor
    terms: dict[str, Tensor] = field(default_factory=dict)
    student_logits: Tensor | None = None
    weighted: dict[str, Tensor] = field(default_factory=dict)


@dataclass(frozen=True)
class TeacherOutputs:
    """What the frozen teacher contributes to a batch (from a cache or a forward pass).

    Attributes:
        logits: ``[batch, labels]``.
        maps: ``[batch, views, seq]`` normalized token maps, or None without an attribution term.
    """

    logits: Tensor
    maps: Tensor | None = None


class DistillationObjective(nn.Module):
    """``alpha * KD + (1 - alpha) * CE + beta * L_attr (+ extra terms)``.

    Args:
        alpha: Weight of KD; CE gets ``1 - alpha``.
        beta: Weight of the attribution loss (ignored without ``attribution``).
        kd: The :class:`KDLoss` (default T = 1).
        attribution: An :class:`AttributionLoss`, or None for vanilla KD.
        extra: Further terms as ``{name: (weight, module)}``; each module is called as
            ``module(student, teacher, batch)`` and returns a scalar (e.g. interchange intervention).

    Calling it returns an :class:`ObjectiveOutput` with the total and every named term.
    """

    def __init__(
        self,
        *,
        alpha: float = 0.9,
        beta: float = 0.0,
        kd: KDLoss | None = None,
        attribution: AttributionLoss | None = None,
        extra: Mapping[str, tuple[float, nn.Module]] | None = None,
    ) -> None:
        super().__init__()
        if not 0.0 <= alpha <= 1.0:
            raise OptionError(f"alpha must be in [0, 1]; got {alpha!r}")
        if beta < 0:
            raise OptionError(f"beta must be >= 0; got {beta!r}")
        self.alpha, self.beta = float(alpha), float(beta)
        self.kd = kd or KDLoss()
        self.attribution = attribution
        self.extra_weights = {name: float(weight) for name, (weight, _m) in (extra or {}).items()}
        self.extra = nn.ModuleDict({name: module for name, (_w, module) in (extra or {}).items()})

    def forward(
        self,
        student: nn.Module,
        teacher: nn.Module | None,
        batch: dict[str, Tensor],
        *,
        teacher_outputs: TeacherOutputs | None = None,
        progress: float = 0.0,
        epoch: int | None = None,
    ) -> ObjectiveOutput:
        """One step's loss.

        Args:
            student: The model being trained.
            teacher: The frozen teacher, or None when ``teacher_outputs`` (a cache) covers it.
            batch: Model inputs and ``labels`` (``[batch]``).
            teacher_outputs: Precomputed teacher logits (and maps); skips the teacher's passes.
            progress: Fraction of training done, for temperature annealing.
            epoch: The 0-based epoch being trained, for per-epoch annealing (see :meth:`KDLoss.temperature_at`).
        """
        if teacher is None and teacher_outputs is None:
            raise InvalidInputError("give the teacher model or its precomputed outputs (teacher_outputs=)")
        cross = is_cross(batch)
        if teacher is not None and not cross:
            check_shared_vocabulary(student, teacher)
        if cross and len(self.extra):
            raise OptionError(
                f"{', '.join(self.extra)}: these terms align hidden states token by token, which needs one "
                "tokenizer for teacher and student; this batch has two"
            )
        terms: dict[str, Tensor] = {}
        student_logits = teacher_logits = None
        if self.attribution is not None and self.beta > 0:
            source = (
                teacher_outputs.maps if teacher_outputs is not None and teacher_outputs.maps is not None else teacher
            )
            if source is None:
                raise InvalidInputError("the teacher outputs hold no attribution maps: give the teacher model too")
            if cross and not isinstance(self.attribution, CrossTokenizerAttributionLoss):
                raise OptionError(
                    "teacher and student tokenize differently: use CrossTokenizerAttributionLoss for the attribution term"
                )
            out = self.attribution.compute(student, source, batch)
            terms["attr"] = out.loss
            student_logits, teacher_logits = out.student_logits, out.teacher_logits
        if teacher_outputs is not None:
            teacher_logits = teacher_outputs.logits
        if teacher_logits is None and self.alpha > 0:
            if teacher is None:
                raise InvalidInputError("the teacher outputs hold no logits: give the teacher model too")
            with torch.no_grad():
                teacher_logits = teacher(**model_inputs(teacher_side(batch))).logits
        if student_logits is None:
            student_logits = student(**model_inputs(student_side(batch))).logits
        if self.alpha > 0:
            assert teacher_logits is not None  # from the cache, the attribution pass or the teacher above
            terms["kd"] = self.kd(
                student_logits, teacher_logits.to(student_logits.device), progress=progress, epoch=epoch
            )
        if self.alpha < 1:
            terms["ce"] = task_loss(student, student_logits, batch)
        for name, module in self.extra.items():
            terms[name] = module(student, teacher, batch)
        weights = {"kd": self.alpha, "ce": 1.0 - self.alpha, "attr": self.beta, **self.extra_weights}
        weighted = {name: weights[name] * value for name, value in terms.items()}
        total = cast(Tensor, sum(weighted.values()))
        return ObjectiveOutput(total, {k: v.detach() for k, v in terms.items()}, student_logits, weighted)


def task_loss(model: nn.Module, logits: Tensor, batch: dict[str, Tensor]) -> Tensor:
    """Cross-entropy with the gold labels (MSE for a regression head)."""
    labels = batch.get("labels")
    if labels is None:
        raise InvalidInputError("the batch has no 'labels'; the CE term needs them (or set alpha=1)")
    if is_regression(model):
        return F.mse_loss(logits.view(-1), labels.to(logits.dtype).view(-1))
    return F.cross_entropy(logits, labels.long().view(-1))


def describe(objective: DistillationObjective) -> dict[str, Any]:
    """JSON-ready description of an objective's weights and options."""
    info: dict[str, Any] = {"alpha": objective.alpha, "beta": objective.beta, **objective.kd.options()}
    if objective.attribution is not None:
        info["attribution"] = objective.attribution.options()
    info.update({f"{name}_weight": w for name, w in objective.extra_weights.items()})
    info.update(
        {name: cast(Any, module).options() for name, module in objective.extra.items() if hasattr(module, "options")}
    )
    return info

"""Hugging Face ``Trainer`` integration: AD-KD (or vanilla KD) with multi-GPU / multi-node for free.

``accelerate launch`` or ``torchrun`` start one process per device; the Trainer wraps the student
in DDP and this class only replaces the loss. The attribution maps are taken through forward
hooks inside the student's ordinary (DDP-wrapped) forward pass, so gradient synchronisation sees
every parameter's gradient, second-order terms included.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import Trainer
from transformers.modeling_outputs import SequenceClassifierOutput

from attribkit_distill.objective import DistillationObjective


class AttributionDistillationTrainer(Trainer):
    """A ``transformers.Trainer`` whose loss is a :class:`DistillationObjective`.

    Args:
        teacher: The frozen teacher (moved to the training device, eval mode, no gradients).
        objective: ``alpha*KD + (1-alpha)*CE + beta*L_attr`` (+ extra terms).
        *args: As for ``transformers.Trainer`` (``model`` is the student).
        **kwargs: As for ``transformers.Trainer``.

    The mean of every objective term over the logging interval is logged next to ``loss``
    (``kd``, ``ce``, ``attr`` ...).
    """

    #: transformers >= 5.25: the loss is a micro-batch mean; Trainer divides it by the accumulation steps.
    loss_is_scaled_for_ga = False

    def __init__(self, *args: Any, teacher: nn.Module, objective: DistillationObjective, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.teacher = teacher.to(self.args.device).eval().requires_grad_(False)
        # The objective's terms are means over each micro-batch, not sums scaled by ``num_items_in_batch``:
        # tell Trainer so, and it divides the loss by the accumulation steps (else N steps give N x the gradient).
        self.model_accepts_loss_kwargs = False
        self.objective: DistillationObjective = objective
        self._term_sums: dict[str, float] = {}
        self._term_count = 0

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, torch.Tensor],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,  # unused: the terms are micro-batch means (see __init__)
    ) -> torch.Tensor | tuple[torch.Tensor, SequenceClassifierOutput]:
        max_steps = max(int(getattr(self.state, "max_steps", 0) or 0), 1)
        out = self.objective(
            model,
            self.teacher,
            inputs,
            progress=self.state.global_step / max_steps,
            epoch=int(self.state.epoch or 0),  # the Trainer's epoch (fractional: the epoch being trained)
        )
        if model.training:
            for name, value in out.terms.items():
                self._term_sums[name] = self._term_sums.get(name, 0.0) + float(value)
            self._term_count += 1
        if return_outputs:
            return out.total, SequenceClassifierOutput(loss=out.total, logits=out.student_logits)
        return out.total

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        if self._term_count and "loss" in logs:
            logs.update({name: round(total / self._term_count, 6) for name, total in self._term_sums.items()})
            self._term_sums, self._term_count = {}, 0
        super().log(logs, *args, **kwargs)

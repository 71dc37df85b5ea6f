"""The AD-KD attribution loss, usable in any training loop.

Wu et al., "AD-KD: Attribution-Driven Knowledge Distillation for Language Model Compression",
ACL 2023 (the exact recipe, including the facts of its reference code, is in DESIGN.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from attribkit import InvalidInputError, OptionError, attribute, normalize_scores, reduce_dims
from attribkit_distill.maps import forward_with_maps, is_regression, model_inputs, unwrap

VIEWS = ("auto", "all", "gold")
DISTANCES = ("mse", "l1")
BASELINES = ("zero", "pad")


@dataclass(frozen=True)
class AttributionLossOutput:
    """Everything one attribution-loss call computed.

    Attributes:
        loss: Scalar attribution loss (views summed).
        student_maps: ``[batch, views, seq]`` L2-normalized student token scores (with graph).
        teacher_maps: ``[batch, views, seq]`` normalized teacher token scores (detached).
        student_logits: ``[batch, labels]`` from the same forward pass, or None when the
            attribution needed a separate pass (non-zero baseline).
        teacher_logits: ``[batch, labels]`` when the teacher ran, else None.
    """

    loss: Tensor
    student_maps: Tensor
    teacher_maps: Tensor
    student_logits: Tensor | None = None
    teacher_logits: Tensor | None = None


class AttributionLoss(nn.Module):
    """AD-KD attribution loss between a student's and a teacher's token maps.

    Teacher map per view c: Integrated Gradients at ``layer`` with a zero baseline and ``steps``
    points, target ``log_prob`` of class c; token score = L2 norm of the ``top_k`` largest
    ``|A|`` over hidden dims. Student map: the same over all dims, differentiable (second order).
    Maps are normalized over the real tokens of each example and view; the loss per view is the
    sum of squared differences divided by the number of non-pad tokens in the batch; views are
    summed. Views (``auto``): one for a binary task where both classes give the same map (target
    ``prob``, or ``log_prob`` with one step: :meth:`binary_views_coincide`), else every class; the
    output itself for regression.

    Args:
        top_k: Hidden dims kept per token on the teacher side (None = all).
        steps: IG integration points m (1 = gradient x input, the paper's default).
        layer: ``embeddings`` (the paper's) or ``word_embeddings``.
        views: ``auto`` (as above), ``all`` (every class, also for binary), ``gold`` (the label).
        target_fn: ``log_prob`` (the paper's), ``prob`` or ``logit``; regression uses the output.
        normalize: ``l2`` (the paper's), ``l1``, ``max`` or None.
        distance: ``mse`` (sum of squares / non-pad tokens) or ``l1`` (sum of |.| / non-pad tokens).
        baseline: ``zero`` (the paper's; logits and maps from one forward) or ``pad`` token
            embeddings at ``word_embeddings`` (through :func:`attribkit.attribute`; special tokens
            are kept when the batch has a ``special_tokens_mask`` or the config names their ids).

    Call ``loss_fn(student, teacher, batch)`` where ``teacher`` is a model or precomputed
    teacher maps ``[batch, views, seq]`` (e.g. from :class:`TeacherCache`); ``return_maps=True``
    returns an :class:`AttributionLossOutput` instead of the scalar.
    """

    def __init__(
        self,
        *,
        top_k: int | None = None,
        steps: int = 1,
        layer: str = "embeddings",
        views: str = "auto",
        target_fn: str = "log_prob",
        normalize: str | None = "l2",
        distance: str = "mse",
        baseline: str = "zero",
    ) -> None:
        super().__init__()
        if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1):
            raise OptionError(f"top_k must be a positive integer or None; got {top_k!r}")
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
            raise OptionError(f"steps must be a positive integer; got {steps!r}")
        for name, value, choices in (
            ("views", views, VIEWS),
            ("distance", distance, DISTANCES),
            ("baseline", baseline, BASELINES),
        ):
            if value not in choices:
                raise OptionError(f"unknown {name} {value!r}; choose one of: {', '.join(choices)}")
        if baseline != "zero" and layer != "word_embeddings":
            raise OptionError(f"baseline={baseline!r} is a token baseline; use it with layer='word_embeddings'")
        normalize_scores(torch.zeros(1), method=normalize)  # validates the name
        self.top_k, self.steps, self.layer, self.views = top_k, steps, layer, views
        self.target_fn, self.normalize, self.distance, self.baseline = target_fn, normalize, distance, baseline

    def options(self) -> dict[str, Any]:
        """The options that define the maps (part of a teacher cache's key)."""
        return {
            "top_k": self.top_k,
            "steps": self.steps,
            "layer": self.layer,
            "views": self.views,
            "target_fn": self.target_fn,
            "normalize": self.normalize,
            "baseline": self.baseline,
        }

    # ------------------------------------------------------------------ views and maps
    def view_targets(self, model: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        """Class index of every view, per example: ``[batch, views]``."""
        n = batch["input_ids"].shape[0]
        device = batch["input_ids"].device
        num_labels = int(unwrap(model).config.num_labels)
        if is_regression(model):
            return torch.zeros(n, 1, dtype=torch.long, device=device)
        if self.views == "gold":
            labels = batch.get("labels")
            if labels is None:
                raise InvalidInputError("views='gold' needs 'labels' in the batch")
            return labels.view(n, 1).long().to(device)
        k = 1 if self.views == "auto" and num_labels == 2 and self.binary_views_coincide() else num_labels
        return torch.arange(k, device=device).expand(n, k)

    def binary_views_coincide(self) -> bool:
        """Whether a 2-class model's two maps are the same after ``|.|`` and normalisation.

        ``prob``: ``dp0 = -dp1`` at every point, so any number of steps gives opposite sums.
        ``log_prob``: ``d log p0 = -(p1/p0) d log p1``, a factor that is the same over one point
        only, so single-step maps coincide (per-example scale, cancelled by normalisation) and
        m-step maps do not. ``logit``: the two logits' gradients differ in general.
        """
        return self.target_fn == "prob" or (self.target_fn == "log_prob" and self.steps == 1)

    def token_maps(
        self, model: nn.Module, batch: dict[str, Tensor], *, top_k: int | None, create_graph: bool
    ) -> tuple[Tensor, Tensor | None]:
        """Normalized token maps ``[batch, views, seq]`` and, when shared, the logits ``[batch, labels]``."""
        scores, logits = self.token_scores(model, batch, top_k=top_k, create_graph=create_graph)
        mask = batch["attention_mask"][:, None, :]
        return normalize_scores(scores, mask, method=self.normalize), logits

    def token_scores(
        self, model: nn.Module, batch: dict[str, Tensor], *, top_k: int | None, create_graph: bool
    ) -> tuple[Tensor, Tensor | None]:
        """Token scores before normalisation ``[batch, views, seq]`` and, when shared, the logits."""
        targets = self.view_targets(model, batch)
        if self.baseline == "zero":
            out = forward_with_maps(
                model,
                batch,
                targets,
                steps=self.steps,
                layer=self.layer,
                target_fn=self.target_fn,
                create_graph=create_graph,
            )
            attributions, logits = out.attributions, out.logits
        else:
            target_fn = "logit" if is_regression(model) else self.target_fn
            attributions = attribute(  # type: ignore[assignment]  # a tensor: return_delta is False
                unwrap(model),
                {**model_inputs(batch), **_special(batch)},
                targets=targets,
                method="fast_ig",
                create_graph=create_graph,
                steps=self.steps,
                rule="riemann_right",
                layer=self.layer,
                target_fn=target_fn,
                baseline=self.baseline,
            )
            logits = None
        return reduce_dims(attributions, sign="absolute", top_k=top_k, aggregate="l2"), logits

    def teacher_maps(self, teacher: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor | None]:
        """The teacher's maps (top-K, detached) and its logits: ``[batch, views, seq]``, ``[batch, labels]``."""
        maps, logits = self.token_maps(teacher, batch, top_k=self.top_k, create_graph=False)
        return maps.detach(), None if logits is None else logits.detach()

    def distance_between(self, student_maps: Tensor, teacher_maps: Tensor, attention_mask: Tensor) -> Tensor:
        """Sum over views of (sum of squared / absolute differences) / non-pad tokens in the batch."""
        diff = (student_maps - teacher_maps) * attention_mask[:, None, :].to(student_maps.dtype)
        total = diff.pow(2).sum() if self.distance == "mse" else diff.abs().sum()
        return total / attention_mask.sum().clamp_min(1).to(total.dtype)

    # ------------------------------------------------------------------ the loss
    def compute(
        self, student: nn.Module, teacher: nn.Module | Tensor, batch: dict[str, Tensor]
    ) -> AttributionLossOutput:
        """Loss with the maps and logits it produced (see :class:`AttributionLossOutput`)."""
        teacher_logits = None
        if isinstance(teacher, Tensor):
            teacher_maps = teacher.to(batch["attention_mask"].device)
        elif isinstance(teacher, nn.Module):
            check_shared_vocabulary(student, teacher)
            teacher_maps, teacher_logits = self.teacher_maps(teacher, batch)
        else:
            raise InvalidInputError(
                f"teacher must be a model or a tensor of teacher maps; got {type(teacher).__name__}"
            )
        student_maps, student_logits = self.token_maps(student, batch, top_k=None, create_graph=True)
        if teacher_maps.shape != student_maps.shape:
            raise InvalidInputError(
                f"teacher maps have shape {tuple(teacher_maps.shape)} but the student's are {tuple(student_maps.shape)} "
                "[batch, views, seq]; were they computed for this batch and these options?"
            )
        loss = self.distance_between(student_maps, teacher_maps.to(student_maps.dtype), batch["attention_mask"])
        return AttributionLossOutput(loss, student_maps, teacher_maps, student_logits, teacher_logits)

    def forward(
        self, student: nn.Module, teacher: nn.Module | Tensor, batch: dict[str, Tensor], *, return_maps: bool = False
    ) -> Tensor | AttributionLossOutput:
        """The attribution loss (a scalar), or everything with ``return_maps=True``.

        Args:
            student: Hugging Face sequence classifier being trained (train mode is fine).
            teacher: Frozen teacher model, or its precomputed maps ``[batch, views, seq]``.
            batch: ``input_ids``, ``attention_mask`` (optional ``token_type_ids``, ``labels``).
            return_maps: Return an :class:`AttributionLossOutput`.
        """
        out = self.compute(student, teacher, batch)
        return out if return_maps else out.loss


def check_shared_vocabulary(student: nn.Module, teacher: nn.Module) -> None:
    """Raise unless both models embed the same vocabulary (maps are compared token by token)."""
    sizes = [unwrap(m).get_input_embeddings().num_embeddings for m in (student, teacher)]
    pads = [getattr(unwrap(m).config, "pad_token_id", None) for m in (student, teacher)]
    if sizes[0] != sizes[1] or pads[0] != pads[1]:
        raise InvalidInputError(
            f"student and teacher do not share a vocabulary (student: {sizes[0]} tokens, pad id {pads[0]}; "
            f"teacher: {sizes[1]} tokens, pad id {pads[1]}); attribution distillation compares maps token by "
            "token, so both must use the same tokenizer"
        )


def _special(batch: dict[str, Tensor]) -> dict[str, Tensor]:
    return {"special_tokens_mask": batch["special_tokens_mask"]} if "special_tokens_mask" in batch else {}

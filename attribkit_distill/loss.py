"""The AD-KD attribution loss, usable in any training loop.

Wu et al., "AD-KD: Attribution-Driven Knowledge Distillation for Language Model Compression",
ACL 2023 (the exact recipe, including the facts of its reference code, is in docs/design.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from attribkit import (
    InvalidInputError,
    OptionError,
    normalize_scores,
    reduce_dims,
)
from attribkit_distill.maps import forward_with_maps, is_regression, unwrap
from attribkit_distill.signal import (
    IG_FAMILY,
    REFERENCE_METHOD,
    check_signal_options,
    registered_scores,
    shuffle_over_tokens,
)

VIEWS = ("auto", "all", "gold")
DISTANCES = ("mse", "l1", "cosine")
COMPARISON_OPTIONS = ("distance",)  # options that compare maps without changing them: not a teacher cache's key
BASELINES = ("zero", "pad")


def maps_part(options: dict[str, Any]) -> dict[str, Any]:
    """The options that make the maps, of an :meth:`AttributionLoss.options` dict: all but :data:`COMPARISON_OPTIONS`."""
    return {name: value for name, value in options.items() if name not in COMPARISON_OPTIONS}


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

    The explanation is pluggable: ``method`` makes the student's map (any differentiable
    registered method: ``fast_ig`` at m steps, ``gradient_x_input``, ``saliency``) and
    ``teacher_method`` the teacher's (any registered method, e.g. ``occlusion``, ``attnlrp`` or ``fast_ig`` at 50
    steps: a teacher cache computes it once). ``teacher_shuffle`` permutes each example's teacher
    map over its real tokens (a fixed permutation per example and seed): the same norm and loss
    scale, but no information about which token matters, the control for "is it the explanation?".

    Args:
        top_k: Hidden dims kept per token on the teacher side (None = all).
        steps: IG integration points m (1 = gradient x input, the paper's default).
        layer: ``embeddings`` (the paper's) or ``word_embeddings``.
        views: ``auto`` (as above), ``all`` (every class, also for binary), ``gold`` (the label).
        target_fn: ``log_prob`` (the paper's), ``prob`` or ``logit``; regression uses the output.
        normalize: ``l2`` (the paper's), ``l1``, ``max`` or None.
        distance: ``mse`` (sum of squares / non-pad tokens), ``l1`` (sum of |.| / non-pad tokens),
            or ``cosine``: ``1 - cos(student map, teacher map)`` per example and view, averaged over
            examples and summed over views (explanation-enhanced KD, Parchami-Araghi et al., 2024).
            On L2-normalised maps it is the MSE loss up to one factor per batch (``mse`` equals it
            times ``2 * batch / non-pad tokens``, gradients included); they differ on other maps.
        baseline: ``zero`` (the paper's; logits and maps from one forward) or ``pad`` token
            embeddings at ``word_embeddings`` (through :func:`attribkit.attribute`; special tokens
            are kept when the batch has a ``special_tokens_mask`` or the config names their ids).
        method: The student's map method (registered and differentiable); default ``fast_ig``.
        teacher_method: The teacher's map method (any registered one); default: ``method``.
        method_options: Options of the student's method beyond ``steps``/``layer``/``target_fn``/
            ``baseline`` (which apply wherever the method takes them), e.g. ``{"rule": "trapezoid"}``.
        teacher_options: The same for the teacher's method, e.g. ``{"steps": 50, "rule": "gausslegendre"}``.
        teacher_shuffle: A seed: permute each teacher map over its example's real tokens (the control).

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
        method: str = REFERENCE_METHOD,
        teacher_method: str | None = None,
        method_options: Mapping[str, Any] | None = None,
        teacher_options: Mapping[str, Any] | None = None,
        teacher_shuffle: int | None = None,
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
        teacher_method = method if teacher_method is None else teacher_method
        check_signal_options(method, teacher_method, method_options, teacher_options, teacher_shuffle)
        self.method, self.teacher_method = method, teacher_method
        self.method_options = dict(method_options or {})
        self.teacher_options = dict(teacher_options or {})
        self.teacher_shuffle = teacher_shuffle

    def options(self) -> dict[str, Any]:
        """The loss's options (recorded in ``run.json``); :meth:`map_options` are those that define the maps."""
        options: dict[str, Any] = {
            "top_k": self.top_k,
            "steps": self.steps,
            "layer": self.layer,
            "views": self.views,
            "target_fn": self.target_fn,
            "normalize": self.normalize,
            "baseline": self.baseline,
        }
        # the pluggable signal, recorded where it differs from the paper's (older records stay valid)
        extra = {
            "method": (self.method, REFERENCE_METHOD),
            "teacher_method": (self.teacher_method, REFERENCE_METHOD),
            "method_options": (self.method_options, {}),
            "teacher_options": (self.teacher_options, {}),
            "teacher_shuffle": (self.teacher_shuffle, None),
            "distance": (self.distance, "mse"),
        }
        options.update({name: value for name, (value, default) in extra.items() if value != default})
        return options

    def map_options(self) -> dict[str, Any]:
        """The options the teacher's maps depend on (a teacher cache's key): :meth:`options` without the
        distance, which only compares maps, so one cache of teacher maps serves every distance."""
        return maps_part(self.options())

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
        """Whether a 2-class model's two maps are the same after ``|.|`` and normalisation, on both sides.

        For the IG family: ``prob``: ``dp0 = -dp1`` at every point, so any number of steps gives
        opposite sums. ``log_prob``: ``d log p0 = -(p1/p0) d log p1``, a factor that is the same over
        one point only, so single-step maps coincide once normalised (per-example scale; with
        ``normalize=None`` nothing cancels it) and m-step maps do not. ``logit``: the two logits'
        gradients differ in general. Other methods are not assumed to coincide.
        """
        normalised = self.normalize is not None

        def side(method: str, options: dict[str, Any]) -> bool:
            steps = 1 if method == "gradient_x_input" else options.get("steps", self.steps)
            target_fn = options.get("target_fn", self.target_fn)
            single_step_log_prob = target_fn == "log_prob" and steps == 1 and normalised
            return method in IG_FAMILY and (target_fn == "prob" or single_step_log_prob)

        return side(self.method, self.method_options) and side(self.teacher_method, self.teacher_options)

    def token_maps(
        self,
        model: nn.Module,
        batch: dict[str, Tensor],
        *,
        top_k: int | None,
        create_graph: bool,
        side: str = "student",
    ) -> tuple[Tensor, Tensor | None]:
        """Normalized token maps ``[batch, views, seq]`` and, when shared, the logits ``[batch, labels]``."""
        scores, logits = self.token_scores(model, batch, top_k=top_k, create_graph=create_graph, side=side)
        mask = batch["attention_mask"][:, None, :]
        return normalize_scores(scores, mask, method=self.normalize), logits

    def token_scores(
        self,
        model: nn.Module,
        batch: dict[str, Tensor],
        *,
        top_k: int | None,
        create_graph: bool,
        side: str = "student",
    ) -> tuple[Tensor, Tensor | None]:
        """Token scores before normalisation ``[batch, views, seq]`` and, when shared, the logits.

        ``side`` (``student`` or ``teacher``) picks the map method and its options; the teacher's
        scores are permuted over real tokens when ``teacher_shuffle`` is set.
        """
        if side not in ("student", "teacher"):
            raise OptionError(f"side must be 'student' or 'teacher'; got {side!r}")
        method, options = (
            (self.method, self.method_options) if side == "student" else (self.teacher_method, self.teacher_options)
        )
        scores, logits = self._method_scores(model, batch, method, options, top_k=top_k, create_graph=create_graph)
        if side == "teacher" and self.teacher_shuffle is not None:
            scores = shuffle_over_tokens(scores, batch, seed=self.teacher_shuffle)
        return scores, logits

    def _method_scores(
        self,
        model: nn.Module,
        batch: dict[str, Tensor],
        method: str,
        options: dict[str, Any],
        *,
        top_k: int | None,
        create_graph: bool,
    ) -> tuple[Tensor, Tensor | None]:
        targets = self.view_targets(model, batch)
        if method != REFERENCE_METHOD or options or self.baseline != "zero":
            shared = {"steps": self.steps, "layer": self.layer, "target_fn": self.target_fn, "baseline": self.baseline}
            return registered_scores(
                model, batch, targets, method, shared=shared, own=options, top_k=top_k, create_graph=create_graph
            )
        out = forward_with_maps(  # the paper's maps: logits and maps from one forward
            model,
            batch,
            targets,
            steps=self.steps,
            layer=self.layer,
            target_fn=self.target_fn,
            create_graph=create_graph,
        )
        attributions, logits = out.attributions, out.logits
        return reduce_dims(attributions, sign="absolute", top_k=top_k, aggregate="l2"), logits

    def teacher_maps(self, teacher: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor | None]:
        """The teacher's maps (top-K, detached) and its logits: ``[batch, views, seq]``, ``[batch, labels]``."""
        maps, logits = self.token_maps(teacher, batch, top_k=self.top_k, create_graph=False, side="teacher")
        return maps.detach(), None if logits is None else logits.detach()

    def distance_between(self, student_maps: Tensor, teacher_maps: Tensor, attention_mask: Tensor) -> Tensor:
        """The distance, summed over views.

        ``mse`` / ``l1``: sum of squared / absolute differences over real tokens / non-pad tokens
        in the batch. ``cosine``: mean over examples of ``1 - cos`` over real tokens (an all-zero
        map has cosine 0 with anything: distance 1).
        """
        mask = attention_mask[:, None, :].to(student_maps.dtype)
        if self.distance == "cosine":
            s, t = student_maps * mask, teacher_maps * mask
            norms = s.norm(dim=-1) * t.norm(dim=-1)
            cosine = (s * t).sum(dim=-1) / norms.clamp_min(1e-12)
            return (1.0 - cosine).mean(dim=0).sum()
        diff = (student_maps - teacher_maps) * mask
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


def vocabulary_of(model: nn.Module) -> tuple[int, int | None]:
    """A model's vocabulary as maps compare it: the rows of its input embeddings and its padding id."""
    inner = unwrap(model)
    return int(inner.get_input_embeddings().num_embeddings), getattr(inner.config, "pad_token_id", None)


def check_shared_vocabulary(student: nn.Module, teacher: nn.Module | dict[str, Any]) -> None:
    """Raise unless both models embed the same vocabulary (maps are compared token by token).

    ``teacher`` is the teacher model, or the ``teacher_config`` a teacher cache records of it.
    """
    theirs = (
        (teacher.get("vocab_size"), teacher.get("pad_token_id"))
        if isinstance(teacher, dict)
        else vocabulary_of(teacher)
    )
    (size, pad), (teacher_size, teacher_pad) = vocabulary_of(student), theirs
    if (size, pad) != (teacher_size, teacher_pad):
        raise InvalidInputError(
            f"student and teacher do not share a vocabulary (student: {size} tokens, pad id {pad}; "
            f"teacher: {teacher_size} tokens, pad id {teacher_pad}); attribution distillation compares maps token by "
            "token, so both must use the same tokenizer"
        )

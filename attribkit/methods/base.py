"""The one abstract base class of attribution methods and the method registry."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor

from attribkit.errors import InvalidInputError, OptionError
from attribkit.layer_hooks import LAYERS
from attribkit.model import Classifier
from attribkit.registry import Registry
from attribkit.targets import TARGET_FNS


def _name_the_class(name: str, cls: type[AttributionMethod]) -> None:
    """The registry key is the method's name: written once, in ``@register_method("...")``."""
    cls.name = name


METHODS: Registry[type[AttributionMethod]] = Registry(
    "method", entry_point_group="attribkit.methods", on_add=_name_the_class
)
register_method = METHODS.register


@dataclass(frozen=True)
class MethodResult:
    """What a method returns for one batch.

    Attributes:
        attributions: ``[batch, views, seq, dims]`` for gradient methods, ``[batch, views, seq]``
            for token-level methods (occlusion). Zero at padding.
        delta: ``[batch, views]`` IG completeness error ``sum(A) - (F(x) - F(x'))``, or None.
        logits: ``[batch, num_labels]`` the model's output on the input itself, taken from the
            method's own forward pass where one runs on the input, else None. Detached, except
            under ``create_graph=True`` when that pass is the one differentiated (single-step
            ``fast_ig``, ``gradient_x_input``, ``attnlrp``): then a training loss on them and one on
            the attributions share one forward pass.
        targets: ``[batch, views]`` the class indices explained (``"pred"`` resolved), or None.
        steps: ``[batch]`` the integration steps each input took (IG methods; with ``steps="auto"``
            they differ per input), or None.
    """

    attributions: Tensor
    delta: Tensor | None = None
    logits: Tensor | None = None
    targets: Tensor | None = None
    steps: Tensor | None = None


class AttributionMethod(ABC):
    """Base class: public :meth:`compute` validates, private :meth:`_scores` does the maths.

    Subclasses are registered with ``@register_method("name")``, which sets ``name`` (the registry
    key); they set ``granularity`` and ``differentiable``, take
    their options as keyword-only ``__init__`` arguments (validated there) and implement
    :meth:`_scores`. A method that runs the model on the input itself anyway (gradient x input,
    single-step IG, occlusion, or a no-grad forward it also needs for completeness) sets
    :attr:`predicts_inline` and accepts ``targets="pred"`` in :meth:`_scores`, resolving the
    prediction from those logits: no separate forward pass.

    Args:
        classifier: The model to explain.
        layer: ``word_embeddings`` or ``embeddings`` (docs/design.md, attribution conventions).
        target_fn: ``logit``, ``prob`` or ``log_prob``.
    """

    name: ClassVar[str] = ""
    granularity: ClassVar[Literal["dims", "tokens"]] = "dims"
    differentiable: ClassVar[bool] = False
    computes_delta: ClassVar[bool] = False
    #: Runs forward passes only (no gradients): may run in reduced precision (``explain(dtype=...)``).
    inference_only: ClassVar[bool] = False

    def __init__(self, classifier: Classifier, *, layer: str = "word_embeddings", target_fn: str = "logit") -> None:
        if layer not in LAYERS:
            raise OptionError(f"unknown layer {layer!r}; choose one of: {', '.join(LAYERS)}")
        if target_fn not in TARGET_FNS:
            raise OptionError(f"unknown target_fn {target_fn!r}; choose one of: {', '.join(TARGET_FNS)}")
        if classifier.is_regression and target_fn != "logit":
            raise OptionError(
                f"target_fn={target_fn!r} needs a classifier; a regression output is explained with target_fn='logit'"
            )
        self.classifier = classifier
        self.layer = layer
        self.target_fn = target_fn

    def options(self) -> dict[str, Any]:
        """The options this instance runs with (recorded in every output)."""
        return {"layer": self.layer, "target_fn": self.target_fn}

    @property
    def predicts_inline(self) -> bool:
        """True when :meth:`_scores` runs the model on the input itself and resolves ``"pred"`` there."""
        return False

    def compute(
        self,
        batch: dict[str, Tensor],
        targets: Tensor | str,
        *,
        create_graph: bool = False,
        return_delta: bool = False,
        with_logits: bool = False,
    ) -> MethodResult:
        """Attribute the target outputs of ``batch`` to its tokens.

        Args:
            batch: ``input_ids``, ``attention_mask`` (and ``token_type_ids``,
                ``special_tokens_mask``), each ``[batch, seq]``, on the model's device.
            targets: ``[batch, views]`` class indices to explain, or ``"pred"`` (the predicted
                class, one view; resolved from the method's own forward pass where it has one).
            create_graph: Keep the graph so that a loss on the attributions back-propagates into
                the model's parameters (differentiable methods only).
            return_delta: Also compute the completeness error (IG methods only).
            with_logits: Make sure the result carries the model's logits on the input (one extra
                no-grad forward pass only for methods that do not run on the input itself).

        Returns:
            A :class:`MethodResult` with ``targets`` set.
        """
        ids = batch.get("input_ids")
        mask = batch.get("attention_mask")
        if ids is None or mask is None or ids.dim() != 2 or mask.shape != ids.shape:
            raise InvalidInputError("batch needs 'input_ids' and 'attention_mask' of the same [batch, seq] shape")
        if create_graph and not self.differentiable:
            differentiable = [m for m in METHODS.names() if METHODS.get(m).differentiable]
            raise OptionError(f"method {self.name!r} is not differentiable; use one of: {', '.join(differentiable)}")
        if return_delta and not self.computes_delta:
            raise OptionError(f"method {self.name!r} has no completeness delta")
        logits = None
        if isinstance(targets, str):
            if targets != "pred":
                raise InvalidInputError(f"targets must be a [batch, views] tensor or 'pred'; got {targets!r}")
            if self.predicts_inline:
                result = self._scores(batch, "pred", create_graph=create_graph, return_delta=return_delta)  # type: ignore[arg-type]
                if result.targets is None or result.logits is None:
                    raise RuntimeError(f"method {self.name!r} predicts inline but returned no targets or logits")
                return result
            logits = self._forward(batch)
            targets = predicted_targets(logits, self.classifier.is_regression)
        if targets.dim() != 2 or targets.shape[0] != ids.shape[0]:
            raise InvalidInputError(
                f"targets must be [batch, views] with batch={ids.shape[0]}; got {tuple(targets.shape)}"
            )
        n = self.classifier.num_labels
        if targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= n):
            raise InvalidInputError(f"target class out of range: the model has {n} output(s)")
        targets = targets.to(ids.device)
        result = self._scores(batch, targets, create_graph=create_graph, return_delta=return_delta)
        if result.logits is None and (logits is not None or with_logits):
            result = replace(result, logits=logits if logits is not None else self._forward(batch))
        return replace(result, targets=targets) if result.targets is None else result

    @torch.no_grad()
    def _forward(self, batch: dict[str, Tensor]) -> Tensor:
        """The model's logits on ``batch`` (no graph). Shapes: ``[batch, num_labels]``."""
        return self.classifier.logits(batch).detach()

    @abstractmethod
    def _scores(
        self, batch: dict[str, Tensor], targets: Tensor, *, create_graph: bool, return_delta: bool
    ) -> MethodResult:
        """The maths: inputs are already validated.

        ``targets`` is ``"pred"`` (a string) only for methods with :attr:`predicts_inline`; they then
        return the resolved ``targets`` and the ``logits`` in the :class:`MethodResult`.
        """


def predicted_targets(logits: Tensor, is_regression: bool) -> Tensor:
    """``[batch, 1]`` the predicted class of each row (0, the one output, for regression)."""
    if is_regression:
        return torch.zeros((logits.shape[0], 1), dtype=torch.long, device=logits.device)
    return logits.argmax(dim=-1, keepdim=True)

"""Saliency: the absolute gradient of the explained output at the layer (Simonyan et al., 2014)."""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import Tensor

from attribkit.methods.base import AttributionMethod, MethodResult, predicted_targets, register_method
from attribkit.methods.chunking import (
    DEFAULT_MEMORY_MB,
    check_chunking,
    chunking_options,
    length_sorted_chunks,
    rows_for_budget,
    trim_rows,
)
from attribkit.model import Classifier
from attribkit.targets import apply_target_fn


@register_method("saliency")
class Saliency(AttributionMethod):
    """``A = |dF/dx|`` at the layer: one forward and one backward per view (Captum's ``Saliency``).

    Per dimension; with the default ``aggregate="sum"`` a token's score is the L1 norm of its
    gradient (``aggregate="l2"``: the L2 norm). Unsigned by construction: it says how sensitive the
    output is to a token, not in which direction the token pushed it. With ``create_graph=True`` the
    map is differentiable w.r.t. the model's parameters (a student's map in distillation).

    Args:
        classifier: Model to explain.
        internal_batch_size: Examples per forward pass; None = from ``memory_mb``.
        memory_mb: Activation-memory budget of one forward + backward pass, in MiB.
        layer: ``word_embeddings`` or ``embeddings``.
        target_fn: ``logit``, ``prob`` or ``log_prob``.

    Shapes:
        attributions ``[batch, views, seq, hidden]``, zero at padding.
    """

    granularity = "dims"
    differentiable = True

    def __init__(
        self,
        classifier: Classifier,
        *,
        internal_batch_size: int | None = None,
        memory_mb: float = DEFAULT_MEMORY_MB,
        layer: str = "word_embeddings",
        target_fn: str = "logit",
    ) -> None:
        super().__init__(classifier, layer=layer, target_fn=target_fn)
        check_chunking(internal_batch_size, memory_mb)
        self.internal_batch_size = internal_batch_size
        self.memory_mb = memory_mb

    def options(self) -> dict[str, Any]:
        return {**super().options(), **chunking_options(self.internal_batch_size, self.memory_mb)}

    @property
    def predicts_inline(self) -> bool:
        """The gradient's own forward runs on the input: its logits are the prediction."""
        return True

    def _rows(self, width: int, create_graph: bool = False) -> int:
        if self.internal_batch_size is not None:
            return self.internal_batch_size
        return rows_for_budget(self.classifier, width, self.memory_mb, create_graph=create_graph)

    def _scores(
        self, batch: dict[str, Tensor], targets: Tensor | str, *, create_graph: bool, return_delta: bool
    ) -> MethodResult:
        clf = self.classifier
        ids = batch["input_ids"]
        lengths = batch["attention_mask"].sum(dim=1)
        scores: Tensor | None = None
        logits_all: Tensor | None = None
        resolved: Tensor | None = None if isinstance(targets, str) else targets
        ctx = clf.double_backward() if create_graph else contextlib.nullcontext()
        with ctx, torch.enable_grad():
            for rows, width in length_sorted_chunks(lengths, lambda w: self._rows(w, create_graph)):
                sub = trim_rows(batch, rows, width)
                if create_graph:  # the layer output keeps its graph: the layers below it shape the map too
                    x = clf.layer_output(sub, self.layer)
                else:
                    with torch.no_grad():
                        x = clf.layer_output(sub, self.layer)
                    x = x.detach().requires_grad_(True)
                logits = clf.forward_with_layer(sub, self.layer, lambda _out, z=x: z)
                if logits_all is None:
                    logits_all = logits.new_zeros((ids.shape[0], logits.shape[1]))
                logits_all[rows] = logits.detach()
                chunk_targets = (
                    predicted_targets(logits.detach(), clf.is_regression) if resolved is None else resolved[rows]
                )
                out = apply_target_fn(logits, self.target_fn, is_regression=clf.is_regression)
                outputs = out.gather(1, chunk_targets)
                views = []
                for v in range(chunk_targets.shape[1]):
                    keep = create_graph or v < chunk_targets.shape[1] - 1
                    (grad,) = torch.autograd.grad(outputs[:, v].sum(), x, retain_graph=keep, create_graph=create_graph)
                    views.append(grad.abs())
                attr = torch.stack(views, dim=1)
                if scores is None:
                    scores = attr.new_zeros((ids.shape[0], chunk_targets.shape[1], ids.shape[1], attr.shape[-1]))
                    full_targets = chunk_targets.new_zeros((ids.shape[0], chunk_targets.shape[1]))
                scores[rows, :, :width] = attr
                full_targets[rows] = chunk_targets
        assert scores is not None and logits_all is not None  # a non-empty batch has at least one chunk
        scores = scores * batch["attention_mask"].to(scores.dtype)[:, None, :, None]
        return MethodResult(scores if create_graph else scores.detach(), logits=logits_all, targets=full_targets)

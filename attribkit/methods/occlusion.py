"""Token occlusion (Zeiler & Fergus, 2014; Captum's ``Occlusion`` with one-token windows)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from attribkit.errors import OptionError
from attribkit.methods.base import AttributionMethod, MethodResult, predicted_targets, register_method
from attribkit.methods.baselines import default_replacement, replacement_id
from attribkit.methods.chunking import length_sorted_chunks, trim_rows
from attribkit.model import Classifier
from attribkit.targets import apply_target_fn

REPLACEMENTS = ("mask", "pad", "unk")


@register_method("occlusion")
class Occlusion(AttributionMethod):
    """``A[t] = F(x) - F(x with token t replaced)``, for every real (non-special) token.

    All occluded variants of a batch are stacked into rows, grouped by real length (no chunk
    computes on padding) and run ``internal_batch_size`` rows per forward pass; special tokens
    and padding score 0.

    Args:
        classifier: Model to explain.
        replacement: Token put in place of the occluded one: ``mask``, ``pad`` or ``unk``; None = ``mask``
            where the tokenizer has one, else ``unk``, else ``pad``.
        internal_batch_size: Occluded variants per forward pass.
        target_fn: ``logit``, ``prob`` or ``log_prob``.

    Shapes:
        attributions ``[batch, views, seq]``.
    """

    granularity = "tokens"
    inference_only = True

    def __init__(
        self,
        classifier: Classifier,
        *,
        replacement: str | None = None,
        internal_batch_size: int = 256,
        target_fn: str = "logit",
    ) -> None:
        super().__init__(classifier, layer="word_embeddings", target_fn=target_fn)
        replacement = default_replacement(classifier, replacement)
        if replacement not in REPLACEMENTS:
            raise OptionError(f"unknown replacement {replacement!r}; choose one of: {', '.join(REPLACEMENTS)}")
        if not isinstance(internal_batch_size, int) or internal_batch_size < 1:
            raise OptionError(f"internal_batch_size must be a positive integer; got {internal_batch_size!r}")
        self.replacement = replacement
        self.replacement_id = replacement_id(classifier, replacement)
        self.internal_batch_size = internal_batch_size

    def options(self) -> dict[str, Any]:
        return {"target_fn": self.target_fn, "replacement": self.replacement}

    @property
    def predicts_inline(self) -> bool:
        """Occlusion runs the model on the unoccluded input first: that forward is the prediction."""
        return True

    def _scores(
        self, batch: dict[str, Tensor], targets: Tensor | str, *, create_graph: bool, return_delta: bool
    ) -> MethodResult:
        with torch.inference_mode():
            scores, targets, logits = self._occlude(batch, targets)
        # normal tensors, usable outside inference mode
        return MethodResult(scores.clone(), logits=logits.clone(), targets=targets.clone())

    def _occlude(self, batch: dict[str, Tensor], targets: Tensor | str) -> tuple[Tensor, Tensor, Tensor]:
        """``[batch, views, seq]`` occlusion scores, the targets and the logits on the input (under inference mode)."""
        clf = self.classifier
        ids = batch["input_ids"]
        logits = clf.logits(batch)
        if isinstance(targets, str):
            targets = predicted_targets(logits, clf.is_regression)
        full = apply_target_fn(logits, self.target_fn, is_regression=clf.is_regression).gather(1, targets)
        example, position = torch.nonzero(~clf.special_mask(batch), as_tuple=True)
        scores = torch.zeros((*targets.shape, ids.shape[1]), dtype=full.dtype, device=ids.device)
        lengths = batch["attention_mask"].sum(dim=1)[example]
        for rows, width in length_sorted_chunks(lengths, lambda w: self.internal_batch_size):
            ex, pos = example[rows], position[rows]
            sub = trim_rows(batch, ex, width)
            sub["input_ids"] = sub["input_ids"].clone()
            sub["input_ids"][torch.arange(ex.numel(), device=ids.device), pos] = self.replacement_id
            out = apply_target_fn(clf.logits(sub), self.target_fn, is_regression=clf.is_regression)
            scores[ex, :, pos] = full[ex] - out.gather(1, targets[ex])
        return scores, targets, logits

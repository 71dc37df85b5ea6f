"""Integrated Gradients through Captum (the reference implementation).

Sundararajan et al., ICML 2017; Kokhlikyan et al., "Captum", 2020. Token baselines (``pad``,
``mask``, ``unk``) go through ``LayerIntegratedGradients``; a zero baseline, which no token
sequence produces, goes through ``IntegratedGradients`` on the layer's output.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from attribkit.errors import OptionError
from attribkit.methods.auto_steps import AUTO, check_steps, integrate_until_complete, steps_options
from attribkit.methods.base import AttributionMethod, MethodResult, predicted_targets, register_method
from attribkit.methods.baselines import baseline_ids, check_baseline, output_change
from attribkit.methods.chunking import (
    DEFAULT_MEMORY_MB,
    check_chunking,
    chunking_options,
    length_sorted_chunks,
    rows_for_budget,
    select_rows,
    trim_rows,
)
from attribkit.methods.integration import RULES
from attribkit.model import Classifier
from attribkit.targets import apply_target_fn


@register_method("integrated_gradients")
class CaptumIntegratedGradients(AttributionMethod):
    """Integrated Gradients computed by Captum, one call per view and group of equal-length texts.

    Texts are sorted by real length and trimmed to the longest of each group (little padding),
    and each Captum call gets as many texts as ``steps`` rows of them fit the memory budget;
    Captum's ``internal_batch_size`` caps the rows of every forward pass at the same budget.
    The result equals one Captum call on the whole padded batch (to float rounding).

    Args:
        classifier: Model to explain.
        steps: Captum's ``n_steps`` (>= 2), or ``"auto"`` (the default): every input starts at 50
            steps and takes about twice as many until its completeness error is below
            ``tolerance`` (see :mod:`attribkit.methods.auto_steps`; Captum's trapezoid weights do not
            sum to 1, so with that rule every count is computed afresh).
        rule: Captum's ``method``; default ``gausslegendre`` (Captum's default).
        tolerance: With ``steps="auto"``: the completeness error to reach, as a share of
            ``|F(x) - F(x')|`` (default 0.01).
        max_steps: With ``steps="auto"``: the most steps one input may take (default 400).
        baseline: ``pad``, ``mask``, ``unk`` or ``zero``; None = the layer's default.
        internal_batch_size: Rows (text x step) per forward pass; None = from ``memory_mb``.
        memory_mb: Activation-memory budget of one forward + backward pass, in MiB, when
            ``internal_batch_size`` is None.
        layer: ``word_embeddings`` or ``embeddings``.
        target_fn: ``logit``, ``prob`` or ``log_prob``.

    Shapes:
        attributions ``[batch, views, seq, hidden]``; delta ``[batch, views]``.
    """

    granularity = "dims"
    computes_delta = True

    def __init__(
        self,
        classifier: Classifier,
        *,
        steps: int | str = AUTO,
        rule: str = "gausslegendre",
        tolerance: float | None = None,
        max_steps: int | None = None,
        baseline: str | None = None,
        internal_batch_size: int | None = None,
        memory_mb: float = DEFAULT_MEMORY_MB,
        layer: str = "word_embeddings",
        target_fn: str = "logit",
    ) -> None:
        super().__init__(classifier, layer=layer, target_fn=target_fn)
        if rule not in RULES:
            raise OptionError(f"unknown integration rule {rule!r}; choose one of: {', '.join(RULES)}")
        if steps == 1 and not isinstance(steps, bool):
            raise OptionError(
                "Captum's integrated_gradients needs steps >= 2 (got 1); use method='fast_ig' for steps=1"
            )
        self.auto = check_steps(steps, tolerance, max_steps, least=2)
        self.steps, self.rule = steps, rule
        self.baseline = check_baseline(baseline, layer)
        check_chunking(internal_batch_size, memory_mb)
        self.internal_batch_size = internal_batch_size
        self.memory_mb = memory_mb

    def options(self) -> dict[str, Any]:
        return {
            **super().options(),
            **steps_options(self.steps, self.auto),
            "rule": self.rule,
            "baseline": self.baseline,
            **chunking_options(self.internal_batch_size, self.memory_mb),
        }

    def rows_per_pass(self, seq_len: int) -> int:
        """Rows (text x step) of ``seq_len`` tokens per forward pass."""
        if self.internal_batch_size is not None:
            return self.internal_batch_size
        return rows_for_budget(self.classifier, seq_len, self.memory_mb)

    @property
    def predicts_inline(self) -> bool:
        """The prediction comes from one no-grad forward at the start of :meth:`_scores`, reused for completeness."""
        return True

    def _scores(
        self, batch: dict[str, Tensor], targets: Tensor | str, *, create_graph: bool, return_delta: bool
    ) -> MethodResult:
        clf = self.classifier
        with torch.no_grad():
            logits = clf.logits(batch).detach()
        if isinstance(targets, str):
            targets = predicted_targets(logits, clf.is_regression)
        base_ids = None if self.baseline == "zero" else baseline_ids(clf, batch, self.baseline)
        change = None
        if return_delta or self.auto is not None:
            change = output_change(clf, batch, self.layer, self.baseline, self.target_fn, targets, logits)
        resolved = targets
        if self.auto is None:
            attributions = self._attribute_rows(batch, base_ids, resolved, int(self.steps), self.rule)
            steps = torch.full((len(targets),), int(self.steps), dtype=torch.long)
        else:
            assert change is not None

            def attribute_rows(rows: Tensor, count: int, rule: str) -> Tensor:
                sub = select_rows(batch, rows)
                sub_base = None if base_ids is None else base_ids[rows]
                return self._attribute_rows(sub, sub_base, resolved[rows], count, rule)

            nests = self.rule != "riemann_trapezoid"  # Captum weights trapezoid points 1/m: no refinement identity
            attributions, steps = integrate_until_complete(self.auto, self.rule, change, attribute_rows, nests=nests)
        delta = None
        if return_delta:
            assert change is not None
            delta = attributions.sum(dim=(2, 3)) - change.to(attributions.dtype)
        return MethodResult(attributions, delta, logits=logits, targets=targets, steps=steps)

    def _attribute_rows(
        self, batch: dict[str, Tensor], base_ids: Tensor | None, targets: Tensor, steps: int, rule: str
    ) -> Tensor:
        """Captum IG at ``steps`` points of ``rule`` for every row of ``batch``, length-sorted and chunked.

        Shapes:
            ``batch`` ``[n, seq]`` tensors, ``targets`` ``[n, views]``; returns ``[n, views, seq, hidden]``.
        """
        ids = batch["input_ids"]
        attributions: Tensor | None = None
        lengths = batch["attention_mask"].sum(dim=1)
        for texts, width in length_sorted_chunks(lengths, lambda w: max(1, self.rows_per_pass(w) // steps)):
            sub = trim_rows(batch, texts, width)
            base = None if base_ids is None else base_ids[texts, :width]
            attr = self._attribute(sub, base, targets[texts], self.rows_per_pass(width), steps, rule)
            if attributions is None:
                attributions = attr.new_zeros((*targets.shape, ids.shape[1], attr.shape[-1]))
            attributions[texts, :, :width] = attr
        assert attributions is not None  # length_sorted_chunks yields at least one group for a non-empty batch
        return attributions * batch["attention_mask"].to(attributions.dtype)[:, None, :, None]

    def _attribute(
        self, sub: dict[str, Tensor], base_ids: Tensor | None, targets: Tensor, rows: int, steps: int, rule: str
    ) -> Tensor:
        """One Captum call per view on a chunk of texts trimmed to its longest.

        Shapes:
            ``sub`` ``[n, width]`` tensors; returns attributions ``[n, views, width, hidden]``.
        """
        from captum.attr import IntegratedGradients, LayerIntegratedGradients

        clf = self.classifier
        keys = [k for k in ("attention_mask", "token_type_ids", "special_tokens_mask") if k in sub]
        extra = tuple(sub[k] for k in keys)
        if base_ids is None or clf.layer_is_block_input(self.layer):
            # a zero baseline, or a decoder's block input (Captum's layer-input hook cannot copy the block's
            # other arguments): Captum's IntegratedGradients on the layer's values, baseline = the layer's value
            # on the baseline ids, which is the path LayerIntegratedGradients integrates along

            def on_layer(z: Tensor, ids: Tensor, *rest: Tensor) -> Tensor:
                logits = clf.forward_with_layer({"input_ids": ids, **dict(zip(keys, rest))}, self.layer, lambda _out: z)
                return apply_target_fn(logits, self.target_fn, is_regression=clf.is_regression)

            with torch.no_grad():
                x = clf.layer_output(sub, self.layer)
                base = (
                    torch.zeros_like(x)
                    if base_ids is None
                    else clf.layer_output({**sub, "input_ids": base_ids}, self.layer)
                )
            explainer: Any = IntegratedGradients(on_layer)
            inputs, baselines, extra = x, base, (sub["input_ids"], *extra)
        else:

            def on_ids(ids: Tensor, *rest: Tensor) -> Tensor:
                logits = clf.logits({"input_ids": ids, **dict(zip(keys, rest))})
                return apply_target_fn(logits, self.target_fn, is_regression=clf.is_regression)

            explainer = LayerIntegratedGradients(on_ids, clf.layer_module(self.layer))
            inputs, baselines = sub["input_ids"], base_ids
        views = []
        for v in range(targets.shape[1]):
            attr = explainer.attribute(
                inputs,
                baselines=baselines,
                target=targets[:, v].tolist(),
                additional_forward_args=extra,
                n_steps=steps,
                method=rule,
                internal_batch_size=max(rows, len(targets)),
            )
            views.append(attr.detach())
        return torch.stack(views, dim=1)

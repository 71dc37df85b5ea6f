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
from attribkit.methods.base import AttributionMethod, MethodResult, register_method
from attribkit.methods.baselines import baseline_ids, check_baseline
from attribkit.methods.integration import RULES
from attribkit.model import Classifier
from attribkit.targets import apply_target_fn

@register_method("integrated_gradients")
class CaptumIntegratedGradients(AttributionMethod):
    """Integrated Gradients computed by Captum, one call per view.

    Args:
        classifier: Model to explain.
        steps: Captum's ``n_steps`` (>= 2).
        rule: Captum's ``method``; default ``gausslegendre`` (Captum's default).
        baseline: ``pad``, ``mask``, ``unk`` or ``zero``; None = the layer's default.
        internal_batch_size: Captum's ``internal_batch_size`` (rows per forward pass).
        layer: ``word_embeddings`` or ``embeddings``.
        target_fn: ``logit``, ``prob`` or ``log_prob``.

    Shapes:
        attributions ``[batch, views, seq, hidden]``; delta ``[batch, views]``.
    """

    name = "integrated_gradients"
    granularity = "dims"
    computes_delta = True

    def __init__(
        self,
        classifier: Classifier,
        *,
        steps: int = 50,
        rule: str = "gausslegendre",
        baseline: str | None = None,
        internal_batch_size: int | None = None,
        layer: str = "word_embeddings",
        target_fn: str = "logit",
    ) -> None:
        super().__init__(classifier, layer=layer, target_fn=target_fn)
        if rule not in RULES:
            raise OptionError(f"unknown integration rule {rule!r}; choose one of: {', '.join(RULES)}")
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
            raise OptionError(f"Captum's integrated_gradients needs steps >= 2 (got {steps!r}); use method='fast_ig' for steps=1")
        self.steps, self.rule = steps, rule
        self.baseline = check_baseline(baseline, layer)
        self.internal_batch_size = internal_batch_size

    def options(self) -> dict[str, Any]:
        return {**super().options(), "steps": self.steps, "rule": self.rule, "baseline": self.baseline}

    def _scores(self, batch: dict[str, Tensor], targets: Tensor, *, create_graph: bool, return_delta: bool) -> MethodResult:
        from captum.attr import IntegratedGradients, LayerIntegratedGradients

        clf = self.classifier
        keys = [k for k in ("attention_mask", "token_type_ids", "special_tokens_mask") if k in batch]
        extra = tuple(batch[k] for k in keys)

        if self.baseline == "zero":
            def on_layer(z: Tensor, ids: Tensor, *rest: Tensor) -> Tensor:
                sub = {"input_ids": ids, **dict(zip(keys, rest))}
                logits = clf.forward_with_layer(sub, self.layer, lambda _out: z)
                return apply_target_fn(logits, self.target_fn, is_regression=clf.is_regression)

            with torch.no_grad():
                x = clf.layer_output(batch, self.layer)
            explainer: Any = IntegratedGradients(on_layer)
            inputs, baselines, extra = x, torch.zeros_like(x), (batch["input_ids"], *extra)
        else:
            def on_ids(ids: Tensor, *rest: Tensor) -> Tensor:
                logits = clf.logits({"input_ids": ids, **dict(zip(keys, rest))})
                return apply_target_fn(logits, self.target_fn, is_regression=clf.is_regression)

            explainer = LayerIntegratedGradients(on_ids, clf.layer_module(self.layer))
            inputs, baselines = batch["input_ids"], baseline_ids(clf, batch, self.baseline)

        views, deltas = [], []
        for v in range(targets.shape[1]):
            attr, delta = explainer.attribute(
                inputs, baselines=baselines, target=targets[:, v].tolist(), additional_forward_args=extra,
                n_steps=self.steps, method=self.rule, internal_batch_size=self.internal_batch_size,
                return_convergence_delta=True,
            )
            views.append(attr.detach())
            deltas.append(delta.detach())
        mask = batch["attention_mask"].to(views[0].dtype)[:, None, :, None]
        attributions = torch.stack(views, dim=1) * mask
        return MethodResult(attributions, torch.stack(deltas, dim=1).to(attributions.dtype) if return_delta else None)

"""Gradient x input (Shrikumar et al., 2016; Captum's ``InputXGradient`` at a layer)."""

from __future__ import annotations

from typing import Any

from attribkit.methods.base import register_method
from attribkit.methods.chunking import DEFAULT_MEMORY_MB
from attribkit.methods.fast_ig import FastIntegratedGradients
from attribkit.model import Classifier


@register_method("gradient_x_input")
class GradientXInput(FastIntegratedGradients):
    """``A = x * grad F(x)`` at the chosen layer: one forward and one backward.

    Identical to ``fast_ig`` with ``steps=1`` and a zero baseline, and computed by it.

    Args:
        classifier: Model to explain.
        internal_batch_size: Examples per forward pass; None = from ``memory_mb``.
        memory_mb: Activation-memory budget per chunk.
        layer: ``word_embeddings`` or ``embeddings``.
        target_fn: ``logit``, ``prob`` or ``log_prob``.

    Shapes:
        attributions ``[batch, views, seq, hidden]``.
    """

    computes_delta = False

    def __init__(
        self,
        classifier: Classifier,
        *,
        internal_batch_size: int | None = None,
        memory_mb: int = DEFAULT_MEMORY_MB,
        layer: str = "word_embeddings",
        target_fn: str = "logit",
    ) -> None:
        super().__init__(
            classifier,
            steps=1,
            rule="riemann_right",
            baseline="zero",
            internal_batch_size=internal_batch_size,
            memory_mb=memory_mb,
            layer=layer,
            target_fn=target_fn,
        )

    def options(self) -> dict[str, Any]:
        return {"layer": self.layer, "target_fn": self.target_fn}

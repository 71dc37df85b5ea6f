"""DeepLIFT through Captum at the layer (Shrikumar et al., ICML 2017; Ancona et al., ICLR 2018).

Captum's ``DeepLift`` runs the input and the baseline through the model in one batch and replaces
the gradient of every *supported nonlinearity module* (``nn.ReLU``, ``nn.Sigmoid``, ``nn.Tanh``,
``nn.Softmax``, ``nn.ELU`` ...) by the Rescale multiplier ``(f(a) - f(a')) / (a - a')``. Everything
else — GELU activations, and the softmax, tanh or ReLU a model calls as a function — keeps its
plain gradient at the input. On Hugging Face transformers this is gradient x (input - baseline)
with Rescale at the modules Captum recognises (BERT's pooler ``nn.Tanh``, for example); it does
not satisfy completeness there, so no convergence delta is reported.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from attribkit.methods.base import AttributionMethod, MethodResult, predicted_targets, register_method
from attribkit.methods.baselines import baseline_output, check_baseline
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


class _OnLayer(nn.Module):
    """The classifier as a module of its layer's output: ``forward(z, input_ids, *inputs) -> F`` (Captum's
    DeepLift hooks the nonlinearities of the modules it owns, so the classifier's model is a submodule)."""

    def __init__(self, clf: Classifier, layer: str, target_fn: str, keys: list[str]) -> None:
        super().__init__()
        self.model = clf.model
        self.clf, self.layer, self.target_fn, self.keys = clf, layer, target_fn, keys

    def forward(self, z: Tensor, input_ids: Tensor, *rest: Tensor) -> Tensor:
        rows = {"input_ids": input_ids, **dict(zip(self.keys, rest))}
        logits = self.clf.forward_with_layer(rows, self.layer, lambda _out: z)
        return apply_target_fn(logits, self.target_fn, is_regression=self.clf.is_regression)


@register_method("deeplift")
class DeepLift(AttributionMethod):
    """Captum's ``DeepLift`` on the layer's output, per view; zero at padding (see the module docstring).

    The baseline is the layer's IG baseline (``pad`` tokens at ``word_embeddings``, zeros at
    ``embeddings``). Deterministic; texts are grouped by length and trimmed (little padding).

    Args:
        classifier: Model to explain.
        baseline: ``pad``, ``mask``, ``unk`` or ``zero``; None = the layer's default.
        internal_batch_size: Texts per Captum call (each runs input and baseline); None = from ``memory_mb``.
        memory_mb: Activation-memory budget of one forward + backward pass, in MiB.
        layer: ``word_embeddings`` or ``embeddings``.
        target_fn: ``logit``, ``prob`` or ``log_prob``.

    Shapes:
        attributions ``[batch, views, seq, hidden]``.
    """

    granularity = "dims"

    def __init__(
        self,
        classifier: Classifier,
        *,
        baseline: str | None = None,
        internal_batch_size: int | None = None,
        memory_mb: float = DEFAULT_MEMORY_MB,
        layer: str = "word_embeddings",
        target_fn: str = "logit",
    ) -> None:
        super().__init__(classifier, layer=layer, target_fn=target_fn)
        check_chunking(internal_batch_size, memory_mb)
        self.baseline = check_baseline(baseline, layer)
        self.internal_batch_size, self.memory_mb = internal_batch_size, memory_mb

    def options(self) -> dict[str, Any]:
        return {
            **super().options(),
            "baseline": self.baseline,
            **chunking_options(self.internal_batch_size, self.memory_mb),
        }

    def _rows(self, width: int) -> int:
        if self.internal_batch_size is not None:
            return self.internal_batch_size
        return max(1, rows_for_budget(self.classifier, width, self.memory_mb) // 2)  # input and baseline

    def _scores(
        self, batch: dict[str, Tensor], targets: Tensor | str, *, create_graph: bool, return_delta: bool
    ) -> MethodResult:
        import warnings

        from captum.attr import DeepLift as CaptumDeepLift

        clf = self.classifier
        ids = batch["input_ids"]
        if isinstance(targets, str):  # not predicts_inline: compute() resolves "pred" before this
            targets = predicted_targets(self._forward(batch), clf.is_regression)
        lengths = batch["attention_mask"].sum(dim=1)
        scores: Tensor | None = None
        for rows, width in length_sorted_chunks(lengths, self._rows):
            sub = trim_rows(batch, rows, width)
            with torch.no_grad():
                x = clf.layer_output(sub, self.layer)
                base = baseline_output(clf, sub, self.layer, self.baseline, x)
            keys = [k for k in sub if k != "input_ids"]
            explainer = CaptumDeepLift(_OnLayer(clf, self.layer, self.target_fn, keys), multiply_by_inputs=True)
            extra = (sub["input_ids"], *(sub[k] for k in keys))
            views = []
            for v in range(targets.shape[1]):
                with warnings.catch_warnings():  # Captum warns that it sets hooks and that eval mode is advised
                    warnings.simplefilter("ignore")
                    attr = explainer.attribute(
                        x.detach().clone(), baselines=base, target=targets[rows, v], additional_forward_args=extra
                    )
                views.append(attr.detach())
            chunk = torch.stack(views, dim=1)
            if scores is None:
                scores = chunk.new_zeros((ids.shape[0], targets.shape[1], ids.shape[1], chunk.shape[-1]))
            scores[rows, :, :width] = chunk
        assert scores is not None  # a non-empty batch has at least one chunk
        scores = scores * batch["attention_mask"].to(scores.dtype)[:, None, :, None]
        return MethodResult(scores, targets=targets)

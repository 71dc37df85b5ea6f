"""GradientSHAP through Captum at the layer (Lundberg & Lee, 2017; Erion et al., 2021: expected gradients)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from attribkit.errors import OptionError
from attribkit.methods.base import AttributionMethod, MethodResult, predicted_targets, register_method
from attribkit.methods.baselines import baseline_output, check_baseline
from attribkit.methods.chunking import trim_rows
from attribkit.methods.seeding import check_sampling, seeded
from attribkit.model import Classifier
from attribkit.targets import apply_target_fn


@register_method("gradient_shap")
class GradientShap(AttributionMethod):
    """Captum's ``GradientShap`` on the layer's output: ``(x - x') * grad F(x' + a (x - x') + noise)``
    averaged over ``n_samples`` random points ``a ~ U(0, 1)``, with Gaussian noise of ``stdevs``.

    With ``stdevs=0`` it is Integrated Gradients by Monte-Carlo integration over the same straight
    path: its maps sum to ``F(x) - F(x')`` in expectation (not for each draw). The baseline is the
    layer's IG baseline (``pad`` at ``word_embeddings``, ``zero`` at ``embeddings``). Each example is
    drawn with its own generator seeded by ``seed``: the same map alone or in any batch.

    Args:
        classifier: Model to explain.
        n_samples: Random points per example (Captum's default 5 is noisy; default 25).
        stdevs: Standard deviation of the noise added to the input at every sample (Captum's default 0).
        seed: Seed of the draws, per example.
        baseline: ``pad``, ``mask``, ``unk`` or ``zero``; None = the layer's default.
        layer: ``word_embeddings`` or ``embeddings``.
        target_fn: ``logit``, ``prob`` or ``log_prob``.

    Shapes:
        attributions ``[batch, views, seq, hidden]``, zero at padding.
    """

    granularity = "dims"

    def __init__(
        self,
        classifier: Classifier,
        *,
        n_samples: int = 25,
        stdevs: float = 0.0,
        seed: int = 0,
        baseline: str | None = None,
        layer: str = "word_embeddings",
        target_fn: str = "logit",
    ) -> None:
        super().__init__(classifier, layer=layer, target_fn=target_fn)
        check_sampling(n_samples, seed)
        if not isinstance(stdevs, (int, float)) or isinstance(stdevs, bool) or stdevs < 0:
            raise OptionError(f"stdevs must be a number >= 0; got {stdevs!r}")
        self.n_samples, self.stdevs, self.seed = n_samples, float(stdevs), seed
        self.baseline = check_baseline(baseline, layer)

    def options(self) -> dict[str, Any]:
        return {
            **super().options(),
            "n_samples": self.n_samples,
            "stdevs": self.stdevs,
            "seed": self.seed,
            "baseline": self.baseline,
        }

    def _scores(
        self, batch: dict[str, Tensor], targets: Tensor | str, *, create_graph: bool, return_delta: bool
    ) -> MethodResult:
        from captum.attr import GradientShap as CaptumGradientShap

        clf = self.classifier
        ids = batch["input_ids"]
        if isinstance(targets, str):  # not predicts_inline: compute() resolves "pred" before this
            targets = predicted_targets(self._forward(batch), clf.is_regression)
        lengths = batch["attention_mask"].sum(dim=1)
        scores: Tensor | None = None
        for b in range(ids.shape[0]):
            width = int(lengths[b])
            row = trim_rows(batch, torch.tensor([b], device=ids.device), width)
            with torch.no_grad():
                x = clf.layer_output(row, self.layer)
                base = baseline_output(clf, row, self.layer, self.baseline, x)
            keys = [k for k in row if k != "input_ids"]  # trim_rows drops a mask with no padding left

            def on_layer(z: Tensor, row_ids: Tensor, *rest: Tensor, keys: list[str] = keys) -> Tensor:
                rows: dict[str, Tensor] = {"input_ids": row_ids, **dict(zip(keys, rest))}
                logits = clf.forward_with_layer(rows, self.layer, lambda _out: z)
                return apply_target_fn(logits, self.target_fn, is_regression=clf.is_regression)

            explainer = CaptumGradientShap(on_layer)
            extra = (row["input_ids"], *(row[k] for k in keys))
            views = []
            for target in targets[b].tolist():
                with seeded(self.seed, ids.device):
                    attr = explainer.attribute(
                        x,
                        baselines=base,
                        n_samples=self.n_samples,
                        stdevs=self.stdevs,
                        target=int(target),
                        additional_forward_args=extra,
                    )
                views.append(attr[0].detach())
            if scores is None:
                scores = x.new_zeros((ids.shape[0], targets.shape[1], ids.shape[1], x.shape[-1]))
            scores[b, :, :width] = torch.stack(views)
        assert scores is not None  # a non-empty batch
        return MethodResult(scores, targets=targets)

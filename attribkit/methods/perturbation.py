"""Perturbation methods through Captum, one feature per real token: leave-one-out, Shapley sampling,
Kernel SHAP and LIME.

Each example is explained on its own real tokens only: the features Captum perturbs are the
word-embedding vectors of the real (non-special) tokens, special tokens stay in place, and
a perturbed token gets the embedding of the ``replacement`` token (``[MASK]`` by default), as
:class:`~attribkit.methods.occlusion.Occlusion` does. Perturbed variants run
``perturbations_per_eval`` per forward pass, sized from a memory budget unless given. Sampling
methods are seeded per example (the same ``seed`` gives the same map, alone or in any batch).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from attribkit.errors import OptionError
from attribkit.methods.base import AttributionMethod, MethodResult, predicted_targets, register_method
from attribkit.methods.baselines import default_replacement, replacement_id
from attribkit.methods.chunking import CPU_PASS_MB, DEFAULT_MEMORY_MB, rows_for_budget, trim_rows
from attribkit.methods.occlusion import REPLACEMENTS
from attribkit.methods.seeding import check_sampling, seeded
from attribkit.methods.surrogate import WeightedLinearModel
from attribkit.model import Classifier
from attribkit.targets import apply_target_fn


class TokenPerturbation(AttributionMethod):
    """Shared machinery: a Captum perturbation explainer over the real tokens of each example.

    Args:
        classifier: Model to explain.
        replacement: Token whose embedding a perturbed token takes: ``mask``, ``pad`` or ``unk``; None = ``mask``
            where the tokenizer has one, else ``unk``, else ``pad``.
        n_samples: Samples per example (permutations for Shapley sampling, coalitions for Kernel
            SHAP and LIME); unused by leave-one-out.
        seed: Seed of the sampling, per example.
        perturbations_per_eval: Perturbed variants per forward pass; None = from ``memory_mb``.
        memory_mb: Activation-memory budget of one pass when ``perturbations_per_eval`` is None.
        target_fn: ``logit``, ``prob`` or ``log_prob``.

    Shapes:
        attributions ``[batch, views, seq]``; zero at special tokens and padding.
    """

    granularity = "tokens"
    inference_only = True
    sampled: ClassVar[bool] = True

    def __init__(
        self,
        classifier: Classifier,
        *,
        replacement: str | None = None,
        n_samples: int | None = None,
        seed: int = 0,
        perturbations_per_eval: int | None = None,
        memory_mb: float = DEFAULT_MEMORY_MB,
        target_fn: str = "logit",
    ) -> None:
        super().__init__(classifier, layer="word_embeddings", target_fn=target_fn)
        replacement = default_replacement(classifier, replacement)
        if replacement not in REPLACEMENTS:
            raise OptionError(f"unknown replacement {replacement!r}; choose one of: {', '.join(REPLACEMENTS)}")
        samples = n_samples if self.sampled else None
        check_sampling(n_samples if self.sampled else None, seed)
        if perturbations_per_eval is not None and (
            not isinstance(perturbations_per_eval, int) or perturbations_per_eval < 1
        ):
            raise OptionError(f"perturbations_per_eval must be a positive integer; got {perturbations_per_eval!r}")
        if not isinstance(memory_mb, (int, float)) or memory_mb <= 0:
            raise OptionError(f"memory_mb must be a positive number; got {memory_mb!r}")
        self.replacement = replacement
        self.replacement_id = replacement_id(classifier, replacement)
        self.n_samples = samples
        self.seed = seed
        self.perturbations_per_eval = perturbations_per_eval
        self.memory_mb = memory_mb

    def options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"target_fn": self.target_fn, "replacement": self.replacement}
        if self.n_samples is not None:
            options.update(n_samples=self.n_samples, seed=self.seed)
        return options

    @property
    def predicts_inline(self) -> bool:
        """The unperturbed forward (F(x), which every perturbation is compared with) is the prediction."""
        return True

    def explainer(self, forward: Any) -> Any:
        """The Captum explainer for ``forward`` (a function of ``[k, n_tokens, hidden]`` embeddings)."""
        raise NotImplementedError

    def attribute_kwargs(self) -> dict[str, Any]:
        """Method-specific keyword arguments of the explainer's ``attribute``."""
        return {"n_samples": self.n_samples}

    def _scores(
        self, batch: dict[str, Tensor], targets: Tensor | str, *, create_graph: bool, return_delta: bool
    ) -> MethodResult:
        clf = self.classifier
        ids = batch["input_ids"]
        with torch.no_grad():
            logits = clf.logits(batch).detach()
            if isinstance(targets, str):
                targets = predicted_targets(logits, clf.is_regression)
            embeddings = clf.layer_module("word_embeddings")(ids).detach()
            replacement = clf.layer_module("word_embeddings")(
                torch.full((1, 1), self.replacement_id, dtype=ids.dtype, device=ids.device)
            ).detach()[0, 0]
            real = ~clf.special_mask(batch)
            lengths = batch["attention_mask"].sum(dim=1)
            scores = torch.zeros((*targets.shape, ids.shape[1]), dtype=embeddings.dtype, device=ids.device)
            for b in range(ids.shape[0]):
                positions = torch.nonzero(real[b], as_tuple=True)[0]
                if positions.numel():
                    width = int(lengths[b])
                    row = trim_rows(batch, torch.tensor([b], device=ids.device), width)
                    example = self._example(row, embeddings[b : b + 1, :width], positions, replacement, targets[b])
                    scores[b, :, positions] = example
        return MethodResult(scores, logits=logits, targets=targets)

    def _example(
        self, row: dict[str, Tensor], embeddings: Tensor, positions: Tensor, replacement: Tensor, targets: Tensor
    ) -> Tensor:
        """``[views, n_real]`` scores of one example (``embeddings`` ``[1, width, hidden]``)."""
        clf = self.classifier
        n = positions.numel()

        def forward(features: Tensor) -> Tensor:
            k = features.shape[0]
            full = embeddings.expand(k, -1, -1).clone()
            full[:, positions] = features.to(full.dtype)
            rows = {key: value.expand(k, -1) for key, value in row.items()}
            out = clf.forward_with_layer(rows, "word_embeddings", lambda _out: full)
            return apply_target_fn(out, self.target_fn, is_regression=clf.is_regression)

        inputs = embeddings[:, positions]
        baselines = replacement.expand_as(inputs).contiguous()
        if n == 1:  # one player: every method's answer is F(x) - F(x')
            difference = forward(inputs) - forward(baselines)
            return difference[0, targets].view(-1, 1).to(embeddings.dtype)
        mask = torch.arange(n, device=inputs.device).view(1, n, 1).expand_as(inputs).contiguous()
        per_eval = self.perturbations_per_eval or self._rows_per_pass(embeddings.shape[1])
        explainer = self.explainer(forward)
        out = []
        for target in targets.tolist():
            with seeded(self.seed, inputs.device):
                attribution = explainer.attribute(
                    inputs,
                    baselines=baselines,
                    target=int(target),
                    feature_mask=mask,
                    perturbations_per_eval=per_eval,
                    **self.attribute_kwargs(),
                )
            out.append(attribution[0, :, 0].to(embeddings.dtype))
        return torch.stack(out)

    def _rows_per_pass(self, width: int) -> int:
        budget = self.memory_mb if self.classifier.device.type != "cpu" else min(self.memory_mb, CPU_PASS_MB)
        return max(1, rows_for_budget(self.classifier, width, budget))


@register_method("feature_ablation")
class FeatureAblation(TokenPerturbation):
    """Leave-one-out through Captum's ``FeatureAblation``: ``A[t] = F(x) - F(x with token t replaced)``.

    The same numbers as ``occlusion``, computed by Captum one example at a time (``occlusion`` is the
    batched implementation); here as the reference of the perturbation family.
    """

    sampled = False

    def __init__(
        self,
        classifier: Classifier,
        *,
        replacement: str | None = None,
        perturbations_per_eval: int | None = None,
        memory_mb: float = DEFAULT_MEMORY_MB,
        target_fn: str = "logit",
    ) -> None:
        super().__init__(
            classifier,
            replacement=replacement,
            perturbations_per_eval=perturbations_per_eval,
            memory_mb=memory_mb,
            target_fn=target_fn,
        )

    def explainer(self, forward: Any) -> Any:
        from captum.attr import FeatureAblation as CaptumFeatureAblation

        return CaptumFeatureAblation(forward)

    def attribute_kwargs(self) -> dict[str, Any]:
        return {}


@register_method("shapley_sampling")
class ShapleySampling(TokenPerturbation):
    """Shapley values by permutation sampling through Captum's ``ShapleyValueSampling``.

    Strumbelj & Kononenko (2010): ``n_samples`` random token orders (default 25); each token's score is its mean marginal
    contribution. The scores of one map sum to ``F(x) - F(all tokens replaced)`` exactly, whatever
    ``n_samples`` (every order telescopes).
    """

    def __init__(
        self,
        classifier: Classifier,
        *,
        n_samples: int = 25,
        seed: int = 0,
        replacement: str | None = None,
        perturbations_per_eval: int | None = None,
        memory_mb: float = DEFAULT_MEMORY_MB,
        target_fn: str = "logit",
    ) -> None:
        super().__init__(
            classifier,
            n_samples=n_samples,
            seed=seed,
            replacement=replacement,
            perturbations_per_eval=perturbations_per_eval,
            memory_mb=memory_mb,
            target_fn=target_fn,
        )

    def explainer(self, forward: Any) -> Any:
        from captum.attr import ShapleyValueSampling

        return ShapleyValueSampling(forward)


@register_method("kernel_shap")
class KernelShap(TokenPerturbation):
    """Kernel SHAP (Lundberg & Lee, 2017) through Captum's ``KernelShap``, one feature per real token.

    A Shapley-kernel-weighted linear fit over ``n_samples`` sampled coalitions, solved exactly by
    weighted least squares (:class:`~attribkit.methods.surrogate.WeightedLinearModel`).
    """

    def __init__(
        self,
        classifier: Classifier,
        *,
        n_samples: int = 200,
        seed: int = 0,
        replacement: str | None = None,
        perturbations_per_eval: int | None = None,
        memory_mb: float = DEFAULT_MEMORY_MB,
        target_fn: str = "logit",
    ) -> None:
        super().__init__(
            classifier,
            n_samples=n_samples,
            seed=seed,
            replacement=replacement,
            perturbations_per_eval=perturbations_per_eval,
            memory_mb=memory_mb,
            target_fn=target_fn,
        )

    def explainer(self, forward: Any) -> Any:
        from captum.attr import KernelShap as CaptumKernelShap

        explainer = CaptumKernelShap(forward)
        explainer.interpretable_model = WeightedLinearModel()  # exact solve; Captum's default needs scikit-learn
        return explainer


@register_method("lime")
class Lime(TokenPerturbation):
    """LIME (Ribeiro et al., 2016) through Captum's ``Lime``, one feature per real token.

    A locally weighted linear surrogate over ``n_samples`` random coalitions with Captum's
    exponential cosine kernel, fitted by weighted ridge regression (``ridge`` 1.0 by default, the
    ``lime`` package's ``Ridge(alpha=1)``).

    Args:
        ridge: L2 penalty of the surrogate (0 = plain weighted least squares).
    """

    def __init__(
        self,
        classifier: Classifier,
        *,
        n_samples: int = 200,
        seed: int = 0,
        ridge: float = 1.0,
        replacement: str | None = None,
        perturbations_per_eval: int | None = None,
        memory_mb: float = DEFAULT_MEMORY_MB,
        target_fn: str = "logit",
    ) -> None:
        super().__init__(
            classifier,
            n_samples=n_samples,
            seed=seed,
            replacement=replacement,
            perturbations_per_eval=perturbations_per_eval,
            memory_mb=memory_mb,
            target_fn=target_fn,
        )
        if not isinstance(ridge, (int, float)) or isinstance(ridge, bool) or ridge < 0:
            raise OptionError(f"ridge must be a number >= 0; got {ridge!r}")
        self.ridge = float(ridge)

    def options(self) -> dict[str, Any]:
        return {**super().options(), "ridge": self.ridge}

    def explainer(self, forward: Any) -> Any:
        from captum.attr import Lime as CaptumLime

        return CaptumLime(forward, interpretable_model=WeightedLinearModel(ridge=self.ridge))

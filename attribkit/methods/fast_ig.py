"""Fast, batched, differentiable Integrated Gradients at an embedding layer.

Sundararajan et al., "Axiomatic Attribution for Deep Networks", ICML 2017. With ``steps=1`` and
the right Riemann rule this is the single-step IG of AD-KD (Wu et al., ACL 2023): one forward
and one backward pass.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import Tensor

from attribkit.methods.base import AttributionMethod, MethodResult, predicted_targets, register_method
from attribkit.methods.baselines import baseline_logits, baseline_output, check_baseline
from attribkit.methods.chunking import (
    DEFAULT_MEMORY_MB,
    check_chunking,
    chunking_options,
    length_sorted_chunks,
    rows_for_budget,
    trim_rows,
)
from attribkit.methods.integration import integration_points
from attribkit.model import Classifier
from attribkit.targets import apply_target_fn

#: Integration points when none are asked for: faithful maps for explaining (see ``steps``).
DEFAULT_STEPS = 50


@register_method("fast_ig")
class FastIntegratedGradients(AttributionMethod):
    """Integrated Gradients computed in one batched pass over (example, step) rows.

    ``IG = (x - x') * sum_k w_k grad F(x' + a_k (x - x'))`` with the rule's points ``a_k`` and
    weights ``w_k`` (right Riemann: ``a_k = k/m``, ``w_k = 1/m``). Rows of all examples and steps
    are stacked, sorted by real length (little padding) and cut into chunks that fit
    ``memory_mb`` (or ``internal_batch_size`` rows).
    With ``create_graph=True`` the result is differentiable w.r.t. the model's parameters.

    Args:
        classifier: Model to explain.
        steps: Number of integration points m (>= 1). The default, 50 Gauss-Legendre points, gives
            faithful maps for explaining (completeness error measured in docs/methods.md); training
            code asks for ``steps=1`` (single-step IG, one forward and one backward).
        rule: Integration rule (see :mod:`attribkit.methods.integration`); None = Gauss-Legendre
            for ``steps >= 2`` (Captum's default) and right Riemann for ``steps=1``.
        baseline: ``zero``, ``pad``, ``mask`` or ``unk``; None = the layer's default
            (``pad`` ids at ``word_embeddings``, zeros at ``embeddings``).
        internal_batch_size: Rows (example x step) per forward pass; None = from ``memory_mb``.
        memory_mb: Activation-memory budget per chunk when ``internal_batch_size`` is None.
        layer: ``word_embeddings`` or ``embeddings``.
        target_fn: ``logit``, ``prob`` or ``log_prob``.

    Shapes:
        attributions ``[batch, views, seq, hidden]``; delta ``[batch, views]``.
    """

    granularity = "dims"
    differentiable = True
    computes_delta = True

    def __init__(
        self,
        classifier: Classifier,
        *,
        steps: int = DEFAULT_STEPS,
        rule: str | None = None,
        baseline: str | None = None,
        internal_batch_size: int | None = None,
        memory_mb: int = DEFAULT_MEMORY_MB,
        layer: str = "word_embeddings",
        target_fn: str = "logit",
    ) -> None:
        super().__init__(classifier, layer=layer, target_fn=target_fn)
        if rule is None:
            rule = (
                "gausslegendre"
                if isinstance(steps, int) and not isinstance(steps, bool) and steps >= 2
                else "riemann_right"
            )
        self.alphas, self.weights = integration_points(rule, steps)
        self.steps, self.rule = steps, rule
        self.baseline = check_baseline(baseline, layer)
        check_chunking(internal_batch_size, memory_mb)
        self.internal_batch_size = internal_batch_size
        self.memory_mb = memory_mb

    def options(self) -> dict[str, Any]:
        return {
            **super().options(),
            "steps": self.steps,
            "rule": self.rule,
            "baseline": self.baseline,
            **chunking_options(self.internal_batch_size, self.memory_mb),
        }

    def rows_per_chunk(self, seq_len: int, create_graph: bool) -> int:
        """How many (example, step) rows one forward pass takes under the memory budget."""
        if self.internal_batch_size is not None:
            return self.internal_batch_size
        return rows_for_budget(self.classifier, seq_len, self.memory_mb, create_graph=create_graph)

    @property
    def predicts_inline(self) -> bool:
        """The prediction and F(x) come from the method's own passes: the integration pass itself when its
        only point is the input (m = 1, right Riemann), else one no-grad forward that serves both."""
        return True

    def _scores(
        self, batch: dict[str, Tensor], targets: Tensor | str, *, create_graph: bool, return_delta: bool
    ) -> MethodResult:
        clf = self.classifier
        logits = None
        if self.alphas != [1.0] and (isinstance(targets, str) or return_delta):
            with torch.no_grad():
                logits = clf.logits(batch).detach()
            if isinstance(targets, str):
                targets = predicted_targets(logits, clf.is_regression)
        ctx = clf.double_backward() if create_graph else contextlib.nullcontext()
        with ctx, torch.enable_grad():
            x = clf.layer_output(batch, self.layer)
            base = baseline_output(clf, batch, self.layer, self.baseline, x)
            if not create_graph:
                x, base = x.detach(), base.detach()
            grad_sum, resolved, at_input = self._weighted_gradients(batch, targets, x, base, create_graph)
            logits = at_input if at_input is not None else logits
            mask = batch["attention_mask"].to(x.dtype)[:, None, :, None]
            attributions = (x - base).unsqueeze(1) * grad_sum * mask
        delta = self._delta(batch, resolved, attributions, logits) if return_delta and logits is not None else None
        return MethodResult(attributions, delta, logits=logits, targets=resolved)

    def _weighted_gradients(
        self, batch: dict[str, Tensor], targets: Tensor | str, x: Tensor, base: Tensor, create_graph: bool
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """``sum_k w_k grad F_v(x' + a_k (x - x'))`` per example and view.

        Returns:
            The weighted gradients ``[B, V, T, D]``; the targets ``[B, V]`` (``"pred"`` resolved
            from each row's own logits, only when every row is the input itself); and, in that
            case, the logits on the input ``[B, C]`` (else None).
        """
        clf = self.classifier
        n_examples = x.shape[0]
        at_input = self.alphas == [1.0]  # every row is the input itself: its logits are the prediction
        if isinstance(targets, str):
            targets = torch.full((n_examples, 1), -1, dtype=torch.long, device=x.device)  # filled chunk by chunk
            resolve = True
        else:
            resolve = False
        n_views = targets.shape[1]
        m = self.steps
        alphas = torch.tensor(self.alphas, dtype=x.dtype, device=x.device)
        weights = torch.tensor(self.weights, dtype=x.dtype, device=x.device)
        lengths = batch["attention_mask"].sum(dim=1).repeat_interleave(m)
        totals = [x.new_zeros(x.shape) for _ in range(n_views)]
        logits_at_input: Tensor | None = None
        seq = x.shape[1]
        for rows, width in length_sorted_chunks(lengths, lambda w: self.rows_per_chunk(w, create_graph)):
            example, step = rows // m, rows % m
            sub = trim_rows(batch, example, width)
            a = alphas[step].view(-1, 1, 1)
            start, end = base[example, :width], x[example, :width]
            path = start + a * (end - start)
            if not create_graph:
                path = path.detach().requires_grad_(True)
            logits = clf.forward_with_layer(sub, self.layer, lambda _out, p=path: p)
            if at_input:
                if logits_at_input is None:
                    logits_at_input = logits.new_zeros((n_examples, logits.shape[1]))
                logits_at_input[example] = logits.detach()
                if resolve:
                    targets[example] = predicted_targets(logits.detach(), clf.is_regression)
            out = apply_target_fn(logits, self.target_fn, is_regression=clf.is_regression)
            for v in range(n_views):
                f = out.gather(1, targets[example, v : v + 1]).sum()
                keep = create_graph or v < n_views - 1
                (grad,) = torch.autograd.grad(f, path, retain_graph=keep, create_graph=create_graph)
                grad = torch.nn.functional.pad(grad * weights[step].view(-1, 1, 1), (0, 0, 0, seq - width))
                totals[v] = totals[v].index_add(0, example, grad)
        return torch.stack(totals, dim=1), targets, logits_at_input

    @torch.no_grad()
    def _delta(self, batch: dict[str, Tensor], targets: Tensor, attributions: Tensor, logits: Tensor) -> Tensor:
        """``sum(A) - (F(x) - F(x'))`` per example and view.

        F(x) comes from ``logits`` (the pass that gave the prediction), so only the baselines need a
        forward pass, and only the distinct ones (see ``baseline_logits``).
        """
        clf = self.classifier
        base_logits = baseline_logits(clf, batch, self.layer, self.baseline)
        f_x = apply_target_fn(logits, self.target_fn, is_regression=clf.is_regression).gather(1, targets)
        f_base = apply_target_fn(base_logits, self.target_fn, is_regression=clf.is_regression).gather(1, targets)
        return attributions.detach().sum(dim=(2, 3)) - (f_x - f_base)

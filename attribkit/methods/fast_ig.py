"""Fast, batched, differentiable Integrated Gradients at an embedding layer.

Sundararajan et al., "Axiomatic Attribution for Deep Networks", ICML 2017. With ``steps=1`` and
the right Riemann rule this is the single-step IG of AD-KD (Wu et al., ACL 2023): one forward
and one backward pass.
"""

from __future__ import annotations

import contextlib
from typing import Any, ClassVar

import torch
from torch import Tensor

from attribkit.methods.auto_steps import AUTO, check_steps, integrate_until_complete, steps_options
from attribkit.methods.base import AttributionMethod, MethodResult, predicted_targets, register_method
from attribkit.methods.baselines import baseline_output, check_baseline, output_change
from attribkit.methods.chunking import (
    DEFAULT_MEMORY_MB,
    check_chunking,
    chunking_options,
    length_sorted_chunks,
    rows_for_budget,
    select_rows,
    trim_rows,
)
from attribkit.methods.integration import integration_points
from attribkit.model import Classifier
from attribkit.targets import apply_target_fn, view_gradients

#: Integration points when none are asked for: as many per input as completeness needs (see ``steps``).
DEFAULT_STEPS = AUTO


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
        steps: Number of integration points m (>= 1), or ``"auto"`` (the default): every input
            starts at 50 points and takes about twice as many until its completeness error is
            below ``tolerance`` (see :mod:`attribkit.methods.auto_steps`); the record says how
            many each input took. Training code asks for ``steps=1`` (single-step IG, one forward
            and one backward).
        rule: Integration rule (see :mod:`attribkit.methods.integration`); None = Gauss-Legendre
            for ``"auto"`` and ``steps >= 2`` (Captum's default), right Riemann for ``steps=1``.
        tolerance: With ``steps="auto"``: the completeness error to reach, as a share of
            ``|F(x) - F(x')|`` (default 0.01).
        max_steps: With ``steps="auto"``: the most steps one input may take (default 400).
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
    #: The gradients are the model's own, so two classes' views come from one backward (``view_gradients``).
    views_share_a_gradient: ClassVar[bool] = True

    def __init__(
        self,
        classifier: Classifier,
        *,
        steps: int | str = DEFAULT_STEPS,
        rule: str | None = None,
        tolerance: float | None = None,
        max_steps: int | None = None,
        baseline: str | None = None,
        internal_batch_size: int | None = None,
        memory_mb: int = DEFAULT_MEMORY_MB,
        layer: str = "word_embeddings",
        target_fn: str = "logit",
    ) -> None:
        super().__init__(classifier, layer=layer, target_fn=target_fn)
        self.auto = check_steps(steps, tolerance, max_steps)
        if rule is None:
            rule = "gausslegendre" if self.auto is not None or steps != 1 else "riemann_right"
        # fixed counts: the rule's points now (bad rules and counts fail here); "auto": its first count
        first = self.auto.start if self.auto is not None else int(steps)
        self.alphas, self.weights = integration_points(rule, first)
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
        if self.auto is not None:
            return self._auto_scores(batch, targets, create_graph=create_graph, return_delta=return_delta)
        clf = self.classifier
        logits = None
        if self.alphas != [1.0] and (isinstance(targets, str) or return_delta):
            with torch.no_grad():
                logits = clf.logits(batch).detach()
            if isinstance(targets, str):
                targets = predicted_targets(logits, clf.is_regression)
        ctx = clf.double_backward() if create_graph else contextlib.nullcontext()
        with ctx, torch.enable_grad():
            x, base = self._endpoints(batch, create_graph)
            grad_sum, resolved, at_input = self._weighted_gradients(
                batch, targets, x, base, create_graph, self.alphas, self.weights
            )
            logits = at_input if at_input is not None else logits
            mask = batch["attention_mask"].to(x.dtype)[:, None, :, None]
            attributions = (x - base).unsqueeze(1) * grad_sum * mask
        delta = None
        if return_delta and logits is not None:
            delta = attributions.detach().sum(dim=(2, 3)) - output_change(
                self.classifier, batch, self.layer, self.baseline, self.target_fn, resolved, logits.detach()
            )
        steps = torch.full((len(resolved),), int(self.steps), dtype=torch.long)
        return MethodResult(attributions, delta, logits=logits, targets=resolved, steps=steps)

    def _auto_scores(
        self, batch: dict[str, Tensor], targets: Tensor | str, *, create_graph: bool, return_delta: bool
    ) -> MethodResult:
        """``steps="auto"``: more points for the inputs whose map does not add up yet (one batch)."""
        assert self.auto is not None
        clf = self.classifier
        with torch.no_grad():
            logits = clf.logits(batch).detach()
        if isinstance(targets, str):
            targets = predicted_targets(logits, clf.is_regression)
        resolved = targets
        change = output_change(self.classifier, batch, self.layer, self.baseline, self.target_fn, resolved, logits)
        ctx = clf.double_backward() if create_graph else contextlib.nullcontext()
        with ctx, torch.enable_grad():
            x, base = self._endpoints(batch, create_graph)
            mask = batch["attention_mask"].to(x.dtype)[:, None, :, None]

            def attribute_rows(rows: Tensor, steps: int, rule: str) -> Tensor:
                alphas, weights = integration_points(rule, steps)
                sub = select_rows(batch, rows)
                grad_sum, _, _ = self._weighted_gradients(
                    sub, resolved[rows], x[rows], base[rows], create_graph, alphas, weights
                )
                return (x[rows] - base[rows]).unsqueeze(1) * grad_sum * mask[rows]

            attributions, steps = integrate_until_complete(self.auto, self.rule, change, attribute_rows)
        delta = attributions.detach().sum(dim=(2, 3)) - change if return_delta else None
        return MethodResult(attributions, delta, logits=logits, targets=resolved, steps=steps)

    def _endpoints(self, batch: dict[str, Tensor], create_graph: bool) -> tuple[Tensor, Tensor]:
        """The layer's output on the input and on the baseline, ``[batch, seq, hidden]`` each."""
        x = self.classifier.layer_output(batch, self.layer)
        base = baseline_output(self.classifier, batch, self.layer, self.baseline, x)
        if not create_graph:
            x, base = x.detach(), base.detach()
        return x, base

    def _explained_outputs(
        self, batch: dict[str, Tensor], path: Tensor, create_graph: bool
    ) -> tuple[Tensor, Tensor, Tensor]:
        """One forward with the layer's output replaced by ``path``.

        Returns:
            The logits ``[rows, C]``; the explained outputs (``target_fn`` of the logits) ``[rows, C]``; and
            the tensor the gradient of an explained output is taken at (``path`` itself here).
        """
        clf = self.classifier
        logits = clf.forward_with_layer(batch, self.layer, lambda _out: path)
        return logits, apply_target_fn(logits, self.target_fn, is_regression=clf.is_regression), path

    def _weighted_gradients(
        self,
        batch: dict[str, Tensor],
        targets: Tensor | str,
        x: Tensor,
        base: Tensor,
        create_graph: bool,
        alphas_list: list[float],
        weights_list: list[float],
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """``sum_k w_k grad F_v(x' + a_k (x - x'))`` per example and view, at the points ``alphas_list``.

        Returns:
            The weighted gradients ``[B, V, T, D]``; the targets ``[B, V]`` (``"pred"`` resolved
            from each row's own logits, only when every row is the input itself); and, in that
            case, the logits on the input ``[B, C]`` (else None), with their graph under ``create_graph``.
        """
        clf = self.classifier
        n_examples = x.shape[0]
        at_input = alphas_list == [1.0]  # every row is the input itself: its logits are the prediction
        if isinstance(targets, str):
            targets = torch.full((n_examples, 1), -1, dtype=torch.long, device=x.device)  # filled chunk by chunk
            resolve = True
        else:
            resolve = False
        n_views = targets.shape[1]
        m = len(alphas_list)
        alphas = torch.tensor(alphas_list, dtype=x.dtype, device=x.device)
        weights = torch.tensor(weights_list, dtype=x.dtype, device=x.device)
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
            logits, out, wrt = self._explained_outputs(sub, path, create_graph)
            if at_input:  # with create_graph the logits keep the graph: a training loss can use this very forward
                if logits_at_input is None:
                    logits_at_input = logits.new_zeros((n_examples, logits.shape[1]))
                logits_at_input = logits_at_input.index_copy(0, example, logits if create_graph else logits.detach())
                if resolve:
                    targets[example] = predicted_targets(logits.detach(), clf.is_regression)
            grads = view_gradients(
                logits,
                out,
                wrt,
                targets[example],
                self.target_fn,
                create_graph=create_graph,
                retain_graph=create_graph,
                one_backward=self.views_share_a_gradient,
            )
            for v, grad in enumerate(grads):
                grad = torch.nn.functional.pad(grad * weights[step].view(-1, 1, 1), (0, 0, 0, seq - width))
                totals[v] = totals[v].index_add(0, example, grad)
        return torch.stack(totals, dim=1), targets, logits_at_input

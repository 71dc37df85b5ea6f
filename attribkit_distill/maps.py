"""Embedding-layer attribution maps computed inside an ordinary forward pass.

Training needs a model's logits *and* its Integrated-Gradients map on every step. With a zero
baseline and the right Riemann rule (alphas ``k/m``, ``k = 1..m``) the last integration point is
the input itself, so one batched forward over ``[batch x m]`` rows yields both: the logits at
``alpha = 1`` are the model's ordinary logits. The layer's output is intercepted by a forward
hook (no patched model code), so the forward can go through any wrapper (DDP, accelerate) and
dropout behaves as in training.

Wu et al., "AD-KD: Attribution-Driven Knowledge Distillation for Language Model Compression",
ACL 2023; Sundararajan et al., "Axiomatic Attribution for Deep Networks", ICML 2017.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from attribkit import Classifier, OptionError, apply_target_fn, run_with_layer, view_gradients


@dataclass(frozen=True)
class ForwardMaps:
    """Logits and dimension-level IG attributions from one forward pass.

    Attributes:
        logits: ``[batch, num_labels]`` at the input itself.
        attributions: ``[batch, views, seq, hidden]``, zero at padding.
    """

    logits: Tensor
    attributions: Tensor


def unwrap(model: nn.Module) -> Any:
    """The Hugging Face model inside DDP / accelerate / torch.compile wrappers."""
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            return model
        model = inner


def is_regression(model: nn.Module) -> bool:
    """True for a single-output regression head (e.g. STS-B), as :attr:`attribkit.Classifier.is_regression` says.

    Read from the config alone: building a :class:`attribkit.Classifier` would also set a decoder's
    padding token, and a question must not change the model.
    """
    config = unwrap(model).config
    return int(config.num_labels) == 1 or getattr(config, "problem_type", None) == "regression"


# the entries of a batch a Hugging Face encoder takes (labels and example positions dropped)
model_inputs = Classifier.model_inputs


def forward_with_maps(
    model: nn.Module,
    batch: dict[str, Tensor],
    targets: Tensor,
    *,
    steps: int = 1,
    layer: str = "embeddings",
    target_fn: str = "log_prob",
    create_graph: bool = False,
) -> ForwardMaps:
    """Logits and zero-baseline IG attributions at ``layer`` from one batched forward.

    ``IG_v = x * (1/m) sum_k grad F_v(k/m * x)`` for each view ``v`` (a class index per example),
    with ``F`` the ``target_fn`` of the logits. Padding positions are zeroed.

    Args:
        model: A Hugging Face sequence classifier, possibly wrapped (DDP, accelerate).
        batch: ``input_ids``, ``attention_mask`` (optional ``token_type_ids``), ``[batch, seq]``.
        targets: ``[batch, views]`` class indices (0 for a regression output).
        steps: Integration points m >= 1 (m = 1: gradient x input, the AD-KD default).
        layer: ``embeddings`` (AD-KD) or ``word_embeddings``.
        target_fn: ``log_prob`` (AD-KD), ``prob`` or ``logit``; forced to ``logit`` for regression.
        create_graph: Keep the graph so a loss on the attributions reaches the parameters
            (second order). Without it the attributions are detached.

    Returns:
        :class:`ForwardMaps`; logits keep their graph whenever the model has trainable parameters.

    Shapes:
        targets ``[batch, views]`` -> logits ``[batch, labels]``, attributions
        ``[batch, views, seq, hidden]``.
    """
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise OptionError(f"steps must be a positive integer; got {steps!r}")
    clf = Classifier(unwrap(model))
    if clf.is_regression:
        target_fn = "logit"
    inputs = model_inputs(batch)
    n, m = inputs["input_ids"].shape[0], steps
    if m > 1:
        inputs = {k: v.repeat_interleave(m, dim=0) for k, v in inputs.items()}
    captured: dict[str, Tensor] = {}

    def on_layer(x: Tensor) -> Tensor:
        """The layer's output ``x`` -> the path points ``k/m * x`` the rest of the model sees."""
        if not x.requires_grad:  # a frozen teacher: differentiate w.r.t. the activation itself
            x = x.detach().requires_grad_(True)
        path = x
        if m > 1:
            alphas = torch.arange(1, m + 1, dtype=x.dtype, device=x.device).div(m).repeat(n)
            path = x * alphas.view(-1, 1, 1)
        captured["x"], captured["path"] = x, path
        return path

    with clf.double_backward(), torch.enable_grad():
        # the hook goes on the unwrapped model's layer; the forward runs through the wrapper (DDP, accelerate)
        logits = run_with_layer(clf.model, layer, on_layer, lambda: model(**inputs, **clf.forward_flags).logits)
        attributions = _path_gradients(logits, captured["path"], targets, m, target_fn, clf.is_regression, create_graph)
    x = captured["x"].view(n, m, *captured["x"].shape[1:])[:, -1]
    if not create_graph:
        x = x.detach()
    mask = batch["attention_mask"].to(x.dtype)[:, None, :, None]
    return ForwardMaps(logits.view(n, m, -1)[:, -1], x.unsqueeze(1) * attributions * mask)


def _path_gradients(
    logits: Tensor, path: Tensor, targets: Tensor, m: int, target_fn: str, regression: bool, create_graph: bool
) -> Tensor:
    """``(1/m) sum_k grad F_v`` at the path points, per example and view: ``[batch, views, seq, hidden]``."""
    out = apply_target_fn(logits, target_fn, is_regression=regression)
    rows = targets.to(out.device).repeat_interleave(m, dim=0)
    views = view_gradients(logits, out, path, rows, target_fn, create_graph=create_graph, retain_graph=True)
    return torch.stack([grad.view(-1, m, *grad.shape[1:]).mean(dim=1) for grad in views], dim=1)

"""AttnLRP: attention-aware layer-wise relevance propagation (Achtibat et al., ICML 2024).

Relevance is computed in the Gradient x Input form the authors' ``lxt`` package uses: one forward and
one backward in which the backward of a few operations is replaced by its LRP rule, and the relevance
of the attributed layer's output ``x`` is ``x * grad``. The rules, applied without patching model code
by a :class:`torch.overrides.TorchFunctionMode` that sees every torch call of the forward pass:

- linear layers: the epsilon rule, which in this form is the plain gradient (nothing to change);
- element-wise non-linearities (GELU, tanh, SiLU, ReLU, sigmoid): the identity rule, gradient scaled
  by ``f(x) / x``;
- layer and RMS normalisation: the identity rule on the normalisation, the standard deviation held
  constant in the backward;
- products of two activations (attention scores ``Q K^T``, the attention-weighted values, gates):
  the uniform rule, half of the gradient to each operand;
- softmax: the plain gradient (the paper's softmax rule in this form).

Attention runs in its eager form under the method (fused kernels hide the two products). Relevance
is not conserved through the bias terms (linear and normalisation biases, the softmax's implicit
bias, constant embeddings added to the attributed one), as in the paper; a tracker accounts for each
of them (tests check that inputs plus biases sum to the explained output).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd import Function
from torch.overrides import TorchFunctionMode

from attribkit.architectures import architecture_of, architectures_supporting
from attribkit.errors import OptionError
from attribkit.methods.attnlrp_graph import ELEMENTWISE, EPSILON, PRODUCTS, SOFTMAX, DualRules
from attribkit.methods.base import register_method
from attribkit.methods.chunking import DEFAULT_MEMORY_MB
from attribkit.methods.fast_ig import FastIntegratedGradients
from attribkit.model import Classifier
from attribkit.targets import apply_target_fn

# The architectures the rules are tested on (conservation; norms are layer norms, activations single torch
# calls) are those whose ArchitectureSpec sets ``attnlrp`` (attribkit.architectures). RMS norms and composite
# activations (Llama, GPT-2's gelu_new) are not.


class _IdentityRule(Function):
    """``y = f(x)``; backward: ``grad * f(x) / x`` (relevance passes through unchanged)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, fn: Callable[[Tensor], Tensor]) -> Tensor:
        y = fn(x)
        ctx.save_for_backward(y / torch.where(x >= 0, x + EPSILON, x - EPSILON))
        return y

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        (ratio,) = ctx.saved_tensors
        return grad * ratio, None


class _Halve(Function):
    """Identity forward; backward: half of the gradient (the uniform rule of a product of two activations)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        return grad / 2


def _activation(x: Any) -> bool:
    return isinstance(x, Tensor) and x.requires_grad and not isinstance(x, nn.Parameter)


class BiasTracker:
    """Relevance absorbed by the terms that do not pass it on (summed per example): linear and norm biases,
    the softmax's implicit bias, and embedding lookups other than the attributed one."""

    def __init__(self) -> None:
        self.absorbed: list[Tensor] = []

    def record(self, tensor: Tensor, weight: Tensor | None = None) -> None:
        """On backward, add ``sum(weight * grad)`` per example (``weight`` defaults to ``tensor``)."""
        source = tensor if weight is None else weight
        if tensor.requires_grad:
            tensor.register_hook(lambda g, s=source: self.absorbed.append((s * g).reshape(g.shape[0], -1).sum(-1)))

    def total(self) -> Tensor:
        """``[batch]`` relevance absorbed in all."""
        return torch.stack(self.absorbed).sum(0)


class AttnLRPMode(TorchFunctionMode):
    """Applies the AttnLRP rules to the torch calls of a forward pass (see the module docstring)."""

    def __init__(self, tracker: BiasTracker | None = None) -> None:
        super().__init__()
        self.tracker = tracker

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if func in PRODUCTS and len(args) >= 2 and _activation(args[0]) and _activation(args[1]):
            return _Halve.apply(func(*args, **kwargs))
        if func is torch.einsum and sum(_activation(a) for a in args[1:]) >= 2:
            return _Halve.apply(func(*args, **kwargs))
        if func in ELEMENTWISE and args and _activation(args[0]):
            return _IdentityRule.apply(args[0], lambda x: func(x, *args[1:], **kwargs))
        if func is F.layer_norm and _activation(args[0]):
            return self._layer_norm(*args, **kwargs)
        if func in SOFTMAX and args and _activation(args[0]) and self.tracker is not None:
            return self._tracked_softmax(func, args, kwargs)
        if func is F.linear and self.tracker is not None:
            return self._tracked_linear(*args, **kwargs)
        if func is F.embedding and self.tracker is not None:
            out = func(*args, **kwargs)
            if not out.requires_grad:
                out = out.detach().requires_grad_(True)
            self.tracker.record(out)
            return out
        if func is F.scaled_dot_product_attention:
            raise RuntimeError("AttnLRP needs eager attention; scaled_dot_product_attention reached the rules")
        return func(*args, **kwargs)

    def _layer_norm(
        self, x: Tensor, shape: Any, weight: Tensor | None = None, bias: Tensor | None = None, eps: float = 1e-5
    ) -> Tensor:
        dims = tuple(range(-len(tuple(shape)), 0))
        mean = x.mean(dim=dims, keepdim=True)
        std = ((x - mean) ** 2).mean(dim=dims, keepdim=True).add(eps).sqrt()
        y = (x - mean) / std.detach()
        if weight is not None:
            y = y * weight
        if bias is not None:
            y = y + bias
            if self.tracker is not None:
                self.tracker.record(y, bias.expand_as(y))
        return y

    def _tracked_linear(self, x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
        assert self.tracker is not None
        out = F.linear(x, weight, bias)
        if bias is not None:
            self.tracker.record(out, bias.expand_as(out))
        return out

    def _tracked_softmax(self, func: Any, args: tuple, kwargs: dict) -> Tensor:
        assert self.tracker is not None
        x = args[0].view_as(args[0])  # a node of its own: its gradient comes from the softmax only
        s = func(x, *args[1:], **kwargs)
        self.tracker.record(s)  # relevance arriving at the softmax output: + sum(s * grad)
        x.register_hook(lambda g, x=x: self.tracker.absorbed.append(-(x * g).reshape(g.shape[0], -1).sum(-1)))
        return s


@contextlib.contextmanager
def eager_attention(model: Any) -> Iterator[None]:
    """Eager attention (plain matmul and softmax calls) for the block, whatever the model was loaded with."""
    config = getattr(model, "config", None)
    impl = getattr(config, "_attn_implementation", None)
    if impl in (None, "eager") or not hasattr(model, "set_attn_implementation"):
        yield
        return
    model.set_attn_implementation("eager")
    try:
        yield
    finally:
        model.set_attn_implementation(impl)


@contextlib.contextmanager
def attnlrp_rules(model: nn.Module, tracker: BiasTracker | None = None) -> Iterator[None]:
    """Forward passes in this block follow the AttnLRP rules: eager attention, parameters held constant
    (so that only tensors computed from the input count as activations: a product of the input with a
    parameter-only branch, e.g. DeBERTa's relative positions, is linear in the input), and the rules' mode."""
    frozen = [p for p in model.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    try:
        with eager_attention(model), AttnLRPMode(tracker):
            yield
    finally:
        for p in frozen:
            p.requires_grad_(True)


@register_method("attnlrp")
class AttnLRP(FastIntegratedGradients):
    """AttnLRP relevance (Achtibat et al., ICML 2024) at the layer: one forward and one backward.

    Gradient x input of the output under the AttnLRP rules (identity rule on non-linearities and
    normalisations, uniform rule on products of activations), as the ``lxt`` package computes it,
    for any Hugging Face classifier without patched model code.

    Args:
        classifier: Model to explain.
        internal_batch_size: Examples per forward pass; None = from ``memory_mb``.
        memory_mb: Activation-memory budget of one forward + backward pass, in MiB.
        layer: ``word_embeddings`` (lxt's choice) or ``embeddings``.
        target_fn: ``logit`` (the paper's; ``prob``/``log_prob`` add a non-LRP softmax on top).

    Shapes:
        attributions ``[batch, views, seq, hidden]``.
    """

    computes_delta = False
    differentiable = True  # create_graph=True: the dual forward of attribkit.methods.attnlrp_graph
    views_share_a_gradient = False  # with create_graph the gradient is taken in the rules' twin graph, not via logits

    def __init__(
        self,
        classifier: Classifier,
        *,
        internal_batch_size: int | None = None,
        memory_mb: int = DEFAULT_MEMORY_MB,
        layer: str = "word_embeddings",
        target_fn: str = "logit",
    ) -> None:
        spec = architecture_of(classifier.model)
        if spec is None or not spec.attnlrp:
            model_type = getattr(classifier.model.config, "model_type", "?")
            raise OptionError(
                f"attnlrp supports {', '.join(architectures_supporting('attnlrp'))} for now; {model_type} (RMS norms or composite "
                "activations) is not covered by its rules yet"
            )
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

    def rows_per_chunk(self, seq_len: int, create_graph: bool) -> int:
        """Half the rows of IG's budget with ``create_graph``: the dual forward keeps two graphs."""
        rows = super().rows_per_chunk(seq_len, create_graph)
        return max(1, rows // 2) if create_graph and self.internal_batch_size is None else rows

    def _scores(self, batch: dict[str, Tensor], targets: Any, *, create_graph: bool, return_delta: bool) -> Any:
        if create_graph:  # the rules as a twin graph, so that a loss on the relevance differentiates truly
            with eager_attention(self.classifier.model):
                return super()._scores(batch, targets, create_graph=True, return_delta=False)
        with attnlrp_rules(self.classifier.model):
            return super()._scores(batch, targets, create_graph=False, return_delta=False)

    def _explained_outputs(
        self, batch: dict[str, Tensor], path: Tensor, create_graph: bool
    ) -> tuple[Tensor, Tensor, Tensor]:
        if not create_graph:
            return super()._explained_outputs(batch, path, create_graph)
        path_rule = torch.zeros_like(path, requires_grad=True)  # its value is irrelevant: the twin is linear in it
        clf = self.classifier
        with DualRules(path, path_rule) as rules:
            logits = clf.forward_with_layer(batch, self.layer, lambda _out: path)
            explained = apply_target_fn(logits, self.target_fn, is_regression=clf.is_regression)
            explained_rule = rules.twin(explained)
        return logits, explained_rule, path_rule

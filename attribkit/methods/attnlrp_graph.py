"""Differentiable AttnLRP: relevance whose gradient w.r.t. the model's parameters is the true one.

The rules of :mod:`attribkit.methods.attnlrp` replace the backward of some operations (half of the
gradient through a product, ``f(x) / x`` through a non-linearity, the standard deviation held constant
through a normalisation). A second-order pass through that graph (``create_graph=True``) would
differentiate the *replaced* backward as if it were the forward's derivative: the gradient of a loss on
the relevance would be wrong wherever a rule applies (every layer).

Here the forward runs twice, op by op, under :class:`DualRules`:

- the *true* forward: the model's own calls, whose autograd graph keeps the true derivatives;
- the *rule twin* of each activation: a graph that is linear in a separate input ``path_rule`` and whose
  coefficients (weights, softmax outputs, ``f(x) / x``, standard deviations, the other operand of a
  product) are tensors of the true forward.

The gradient of the explained output's twin w.r.t. ``path_rule`` is the AttnLRP gradient (the same
numbers as the rules' backward), and it depends on the parameters only through true tensors, so a
loss on ``x * grad`` differentiates correctly to second order. Only the operations the rules cover are
allowed on activations; any other raises :class:`~attribkit.errors.OptionError` naming it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten, tree_map

from attribkit.errors import OptionError

EPSILON = 1e-12  # the identity rule's stabiliser (also attribkit.methods.attnlrp's)

# Calls that are affine in their activation arguments: the twin is the same call on the twins.
_AFFINE = {
    Tensor.view,
    Tensor.view_as,
    Tensor.reshape,
    torch.reshape,
    Tensor.transpose,
    torch.transpose,
    Tensor.permute,
    torch.permute,
    Tensor.contiguous,
    Tensor.__getitem__,
    Tensor.expand,
    Tensor.expand_as,
    Tensor.unsqueeze,
    torch.unsqueeze,
    Tensor.squeeze,
    torch.squeeze,
    Tensor.flatten,
    torch.flatten,
    Tensor.movedim,
    torch.movedim,
    Tensor.narrow,
    Tensor.select,
    Tensor.split,
    torch.split,
    Tensor.chunk,
    torch.chunk,
    Tensor.unbind,
    torch.unbind,
    torch.cat,
    torch.concat,
    torch.stack,
    Tensor.gather,
    torch.gather,
    Tensor.index_select,
    torch.index_select,
    Tensor.sum,
    torch.sum,
    Tensor.mean,
    torch.mean,
    Tensor.to,
    Tensor.float,
    Tensor.double,
    Tensor.type_as,
    Tensor.clone,
    Tensor.__add__,
    Tensor.__radd__,
    Tensor.add,
    torch.add,
    Tensor.__sub__,
    Tensor.__rsub__,
    Tensor.sub,
    torch.sub,
    Tensor.__neg__,
    Tensor.neg,
    torch.neg,
    Tensor.masked_fill,
    torch.masked_fill,
    F.pad,
    F.linear,
}
#: Calls whose backward the rules change (shared with attribkit.methods.attnlrp): products of two activations,
#: single-call non-linearities, softmax.
PRODUCTS = {
    torch.matmul,
    Tensor.matmul,
    Tensor.__matmul__,
    torch.bmm,
    Tensor.bmm,
    torch.mul,
    Tensor.mul,
    Tensor.__mul__,
}
ELEMENTWISE = {F.gelu, torch.tanh, Tensor.tanh, F.silu, F.relu, torch.relu, Tensor.relu, torch.sigmoid, Tensor.sigmoid}
SOFTMAX = {F.softmax, torch.softmax, Tensor.softmax}
# Bilinear calls: the uniform rule when both operands are activations, else linear in the activation.
_PRODUCTS = PRODUCTS | {Tensor.__rmul__, torch.einsum}
_DIVISIONS = {torch.div, Tensor.div, Tensor.__truediv__}  # linear in the dividend only
_LOG_SOFTMAX = {F.log_softmax, torch.log_softmax, Tensor.log_softmax}


class DualRules(TorchFunctionMode):
    """Runs every call on activations twice: on the true tensors and on their rule twins.

    Args:
        path: The attributed layer's output on the true forward ``[rows, seq, hidden]`` (with its graph).
        path_rule: Its twin: a leaf of the same shape; the AttnLRP gradient is taken w.r.t. it.
    """

    def __init__(self, path: Tensor, path_rule: Tensor) -> None:
        super().__init__()
        self._twins: dict[int, tuple[Tensor, Tensor]] = {id(path): (path, path_rule)}

    def twin(self, tensor: Tensor) -> Tensor:
        """The rule twin of an activation of the forward run in this mode."""
        try:
            return self._twins[id(tensor)][1]
        except KeyError:
            raise OptionError("this tensor was not computed from the attributed layer under the rules") from None

    def _is_activation(self, value: Any) -> bool:
        return isinstance(value, Tensor) and id(value) in self._twins

    def __exit__(self, *exc: Any) -> Any:
        self._twins.clear()
        return super().__exit__(*exc)

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        leaves, _ = tree_flatten((args, kwargs))
        if not any(self._is_activation(leaf) for leaf in leaves):
            return func(*args, **kwargs)
        if func is F.scaled_dot_product_attention:
            raise OptionError("differentiable attnlrp needs eager attention; scaled_dot_product_attention was called")
        if func is F.dropout:
            return self._dropout(*args, **kwargs)
        if func is Tensor.__setitem__:
            raise OptionError("differentiable attnlrp has no rule for writing into an activation (x[i] = ...)")
        out = func(*args, **kwargs)
        if not _floating(out):
            return out  # sizes, masks, comparisons: nothing for the rules to carry
        rule = self._rule(func, args, kwargs, out)
        self._register(out, rule)
        return out

    def _register(self, out: Any, rule: Any) -> None:
        if isinstance(out, Tensor):
            self._twins[id(out)] = (out, rule)
            return
        for true, twin in zip(out, rule, strict=True):
            self._register(true, twin)

    def _swap(self, value: Any) -> Any:
        """Activations replaced by their twins, everything else kept."""
        return tree_map(lambda v: self._twins[id(v)][1] if self._is_activation(v) else v, value)

    def _rule(self, func: Any, args: tuple, kwargs: dict, out: Any) -> Any:
        func = _out_of_place(func)  # x.add_(y): the twin is the twin of x + y
        if func in (Tensor.masked_fill, torch.masked_fill):  # the twin's values are never used: fill with 0
            return func(self._swap(args[0]), args[1], 0.0)
        if func in _AFFINE:
            return func(*self._swap(args), **self._swap(kwargs))
        if func in _PRODUCTS:
            return self._product(func, args, kwargs)
        if func in _DIVISIONS and self._is_activation(args[0]) and not any(self._is_activation(a) for a in args[1:]):
            return func(*self._swap(args), **kwargs)
        if func in ELEMENTWISE:
            (x, *_) = args
            ratio = out / torch.where(x >= 0, x + EPSILON, x - EPSILON)  # the identity rule: f(x) / x
            return self.twin(x) * ratio
        if func is F.layer_norm:
            return self._layer_norm(*args, **kwargs)
        if func in SOFTMAX:  # the plain gradient: J^T of softmax at the true scores
            dim = _dim(args, kwargs)
            x_rule = self.twin(args[0])
            return out * (x_rule - (out * x_rule).sum(dim=dim, keepdim=True))
        if func in _LOG_SOFTMAX:  # the plain gradient (a softmax on top of the logits is not an LRP layer)
            dim = _dim(args, kwargs)
            x_rule = self.twin(args[0])
            return x_rule - (out.exp() * x_rule).sum(dim=dim, keepdim=True)
        name = getattr(func, "__qualname__", None) or getattr(func, "__name__", repr(func))
        raise OptionError(f"differentiable attnlrp has no rule for {name} on activations; this model is not covered")

    def _product(self, func: Callable[..., Tensor], args: tuple, kwargs: dict) -> Tensor:
        if func is torch.einsum:
            equation, *operands = args
            if len(operands) == 1 and isinstance(operands[0], list | tuple):
                operands = list(operands[0])
            return self._uniform(lambda a, b: torch.einsum(equation, a, b), operands)
        if sum(self._is_activation(a) for a in args[:2]) == 2:
            return self._uniform(lambda a, b: func(a, b, *args[2:], **kwargs), list(args[:2]))
        return func(*self._swap(args), **kwargs)  # one operand is a weight or a constant: linear

    def _uniform(self, product: Callable[[Tensor, Tensor], Tensor], operands: list[Any]) -> Tensor:
        """AttnLRP's uniform rule on ``a * b`` of two activations: half of the relevance to each."""
        if len(operands) != 2:
            raise OptionError(f"differentiable attnlrp handles products of two operands; got {len(operands)}")
        a, b = operands
        if not (self._is_activation(a) and self._is_activation(b)):
            return product(self._swap(a), self._swap(b))
        return (product(self.twin(a), b) + product(a, self.twin(b))) / 2

    def _layer_norm(
        self, x: Tensor, shape: Any, weight: Tensor | None = None, bias: Tensor | None = None, eps: float = 1e-5
    ) -> Tensor:
        """The identity rule on the normalisation: the standard deviation (a true tensor) as a constant."""
        dims = tuple(range(-len(tuple(shape)), 0))
        mean = x.mean(dim=dims, keepdim=True)
        std = ((x - mean) ** 2).mean(dim=dims, keepdim=True).add(eps).sqrt()
        x_rule = self.twin(x)
        rule = (x_rule - x_rule.mean(dim=dims, keepdim=True)) / std
        return rule if weight is None else rule * weight

    def _dropout(self, x: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
        """One dropout mask for the forward and its twin."""
        if not training or p == 0.0:
            out = x.clone() if inplace else x.view_as(x)
            self._register(out, self.twin(x))
            return out
        keep = torch.empty_like(x).bernoulli_(1 - p) / (1 - p)
        out = x * keep
        self._register(out, self.twin(x) * keep)
        return out


def _floating(value: Any) -> bool:
    """Whether a call's result holds a floating tensor (then it needs a rule; ``max``'s values and indices too)."""
    if isinstance(value, Tensor):
        return value.is_floating_point()
    if isinstance(value, list | tuple):
        return any(isinstance(v, Tensor) and v.is_floating_point() for v in value)
    return False


def _dim(args: tuple, kwargs: dict) -> int:
    return int(kwargs["dim"] if "dim" in kwargs else args[1])


def _out_of_place(func: Any) -> Any:
    """``Tensor.add_`` -> ``Tensor.add``, ``Tensor.__iadd__`` -> ``Tensor.__add__``; other calls unchanged."""
    name = getattr(func, "__name__", "")
    if name.startswith("__i") and name.endswith("__"):
        return getattr(Tensor, "__" + name[3:], func)
    if name.endswith("_") and not name.endswith("__"):
        return getattr(Tensor, name[:-1], func)
    return func

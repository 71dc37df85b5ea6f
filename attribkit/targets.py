"""Which output an attribution explains: target functions and target resolution."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from attribkit.errors import OptionError, TargetError
from attribkit.model import Classifier

TARGET_FNS = ("logit", "prob", "log_prob")
TargetSpec = str | int | Sequence[int | str]


def apply_target_fn(logits: Tensor, target_fn: str, *, is_regression: bool = False) -> Tensor:
    """Map logits to the quantity being explained.

    Args:
        logits: ``[rows, num_labels]``.
        target_fn: ``logit``, ``prob`` (softmax) or ``log_prob`` (log-softmax).
        is_regression: For a regression head only ``logit`` (the output itself) is defined.

    Shapes:
        returns ``[rows, num_labels]``.
    """
    if target_fn == "logit":
        return logits
    if target_fn not in TARGET_FNS:
        raise OptionError(f"unknown target_fn {target_fn!r}; choose one of: {', '.join(TARGET_FNS)}")
    if is_regression:
        raise OptionError(
            f"target_fn={target_fn!r} needs a classifier; a regression output is explained with target_fn='logit'"
        )
    return torch.softmax(logits, dim=-1) if target_fn == "prob" else torch.log_softmax(logits, dim=-1)


def two_class_view_scales(logits: Tensor, targets: Tensor, target_fn: str) -> Tensor | None:
    """Per-row factors that turn one gradient into every view's, on a two-class head; None elsewhere.

    With ``d = z_1 - z_0``: ``grad log p_1 = p_0 grad d`` and ``grad log p_0 = -p_1 grad d``;
    ``grad p_1 = p_0 p_1 grad d = -grad p_0``. So the gradients of both classes' explained outputs
    are ``s_v * grad d`` for one backward of ``d``, exactly (``p_0 + p_1 = 1``), where asking for
    each class's gradient takes one backward per view. The factors keep the logits' graph, so a
    second-order gradient through them is the true one.

    Args:
        logits: ``[rows, 2]``; other widths give None.
        targets: ``[rows, views]`` class indices (0 or 1).
        target_fn: ``log_prob`` or ``prob``; ``logit`` gives None (the two logits' gradients are unrelated).

    Shapes:
        returns ``[rows, views]``.
    """
    if logits.dim() != 2 or logits.shape[1] != 2 or target_fn not in ("log_prob", "prob"):
        return None
    p = torch.softmax(logits, dim=-1)
    p0, p1 = p[:, :1], p[:, 1:]
    positive, negative = (p0, -p1) if target_fn == "log_prob" else (p0 * p1, -(p0 * p1))
    return torch.where(targets.to(logits.device) == 1, positive, negative)


def view_gradients(
    logits: Tensor,
    explained: Tensor,
    wrt: Tensor,
    targets: Tensor,
    target_fn: str,
    *,
    create_graph: bool,
    retain_graph: bool,
    one_backward: bool = True,
) -> list[Tensor]:
    """The gradient at ``wrt`` of each view's explained output: one tensor shaped as ``wrt`` per view.

    One backward per view; with several views of a two-class head under ``log_prob`` or ``prob``, one
    backward for all of them (:func:`two_class_view_scales`), unless ``one_backward`` is False.

    Args:
        logits: ``[rows, labels]`` the logits ``explained`` was computed from (with their graph).
        explained: ``[rows, labels]`` the explained outputs (``target_fn`` of the logits).
        wrt: The tensor to differentiate at.
        targets: ``[rows, views]`` class indices.
        target_fn: The ``target_fn`` that made ``explained``.
        create_graph: Keep the graph of the gradients (second order).
        retain_graph: Keep the forward graph after the last backward.
        one_backward: Allow the shared backward (False for gradients that are not the chain rule's).
    """
    n_views = targets.shape[1]
    scales = two_class_view_scales(logits, targets, target_fn) if one_backward and n_views > 1 else None
    if scales is not None:
        if not create_graph:
            scales = scales.detach()
        difference = (logits[:, 1] - logits[:, 0]).sum()
        (grad,) = torch.autograd.grad(difference, wrt, retain_graph=retain_graph, create_graph=create_graph)
        shape = (-1,) + (1,) * (grad.dim() - 1)
        return [scales[:, v].view(shape) * grad for v in range(n_views)]
    grads = []
    for v in range(n_views):
        f = explained.gather(1, targets[:, v : v + 1]).sum()
        keep = retain_graph or v < n_views - 1
        (grad,) = torch.autograd.grad(f, wrt, retain_graph=keep, create_graph=create_graph)
        grads.append(grad)
    return grads


def resolve_targets(
    clf: Classifier,
    spec: TargetSpec,
    logits: Tensor,
    *,
    labels: Sequence[int | str] | None = None,
) -> tuple[Tensor, list[list[str]]]:
    """Turn a target specification into class indices per example and view.

    Args:
        clf: The classifier (for label names).
        spec: ``"pred"``, ``"gold"`` (needs ``labels``), ``"all"`` (one view per class), a class
            index or name (same for every example), or a sequence with one index/name per example.
        logits: ``[batch, num_labels]`` predictions on the real inputs.
        labels: Gold labels, one per example, for ``"gold"``.

    Returns:
        ``targets`` ``[batch, views]`` (long, on the logits' device) and view names per example.

    Raises:
        TargetError: unknown class, out-of-range index, missing or mis-sized gold labels.
    """
    idx = fixed_targets(clf, spec, logits.shape[0], labels=labels)
    if idx is None:
        idx = logits.argmax(dim=-1, keepdim=True)
    idx = idx.to(logits.device)
    return idx, view_names(clf, idx)


def fixed_targets(
    clf: Classifier, spec: TargetSpec, batch: int, *, labels: Sequence[int | str] | None = None
) -> Tensor | None:
    """Class indices ``[batch, views]`` (CPU) for every spec that does not depend on the prediction.

    Returns None for ``"pred"`` on a classifier: its targets come from the model's output, which
    the attribution method's own forward pass can provide (see ``AttributionMethod.compute``).

    Raises:
        TargetError: as :func:`resolve_targets`.
    """
    if clf.is_regression:  # one output: every spec names it (per example too, e.g. the views a teacher explained)
        for value in spec if isinstance(spec, (list, tuple)) else [spec]:
            if isinstance(value, bool) or value not in ("pred", "all", "gold", 0, "0", "output"):
                raise TargetError(f"a regression model has one output; target {value!r} does not exist")
        return torch.zeros((batch, 1), dtype=torch.long)
    if isinstance(spec, str) and spec == "pred":
        return None
    if isinstance(spec, str) and spec == "all":
        return torch.arange(clf.num_labels).expand(batch, -1)
    if isinstance(spec, str) and spec == "gold":
        if labels is None:
            raise TargetError("targets='gold' needs the gold labels: pass labels=[...] (one per text)")
        return _per_example(clf, labels, batch)
    if isinstance(spec, (list, tuple)):
        return _per_example(clf, spec, batch)
    return torch.full((batch, 1), clf.label_index(spec), dtype=torch.long)  # type: ignore[arg-type]  # int or str here


def view_names(clf: Classifier, targets: Tensor) -> list[list[str]]:
    """The class name of each view of each example (``output`` for regression)."""
    names = clf.labels if not clf.is_regression else ("output",)
    return [[names[int(c)] for c in row] for row in targets.tolist()]


def _per_example(clf: Classifier, values: Sequence[int | str], batch: int) -> Tensor:
    if len(values) != batch:
        raise TargetError(f"got {len(values)} target labels for {batch} texts; give exactly one per text")
    return torch.tensor([[clf.label_index(v)] for v in values], dtype=torch.long)

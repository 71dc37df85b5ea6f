"""The pluggable explanation signal of :class:`attribkit_distill.AttributionLoss`.

Maps from any registered attribkit method (through :func:`attribkit.attribute`), the checks on the
chosen methods and their options, and the shuffled-map control, which keeps a map's values and norm
but not which token they belong to.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Mapping
from typing import Any, cast

import torch
from torch import Tensor, nn

from attribkit import OptionError, attribute, get_method, list_methods, reduce_dims
from attribkit_distill.maps import is_regression, model_inputs, unwrap

#: The map method of the paper (single- or m-step IG from the fused forward, :func:`forward_with_maps`).
REFERENCE_METHOD = "fast_ig"
#: Methods whose two binary class maps coincide under the conditions of ``AttributionLoss.binary_views_coincide``.
IG_FAMILY = ("fast_ig", "gradient_x_input")


def method_parameters(method: str) -> list[str]:
    """The options a registered method's constructor takes (its classifier left out)."""
    return [p for p in inspect.signature(get_method(method).__init__).parameters if p not in ("self", "classifier")]


def check_signal_options(
    method: str,
    teacher_method: str,
    method_options: Mapping[str, Any] | None,
    teacher_options: Mapping[str, Any] | None,
    teacher_shuffle: int | None,
) -> None:
    """Refuse an unknown method, a student method that is not differentiable, options a method does not take.

    Raises:
        OptionError: one line naming the choices.
    """
    known = list_methods()
    for role, name in (("method", method), ("teacher_method", teacher_method)):
        if name not in known:
            raise OptionError(f"unknown {role} {name!r}; choose one of: {', '.join(known)}")
    if not get_method(method).differentiable:
        usable = [m for m in known if get_method(m).differentiable]
        raise OptionError(
            f"the student's map method {method!r} is not differentiable (the loss must reach the student); "
            f"use one of: {', '.join(usable)} (any method can make the teacher's map)"
        )
    for role, name, given in (
        ("method_options", method, method_options),
        ("teacher_options", teacher_method, teacher_options),
    ):
        accepted = method_parameters(name)
        unknown = sorted(set(given or {}) - set(accepted))
        if unknown:
            raise OptionError(f"{role}: {name} has no option {unknown[0]!r}; it takes: {', '.join(accepted)}")
    if teacher_shuffle is not None and (not isinstance(teacher_shuffle, int) or isinstance(teacher_shuffle, bool)):
        raise OptionError(f"teacher_shuffle is a seed (an integer) or None; got {teacher_shuffle!r}")


def registered_scores(
    model: nn.Module,
    batch: dict[str, Tensor],
    targets: Tensor,
    method: str,
    *,
    shared: dict[str, Any],
    own: dict[str, Any],
    top_k: int | None,
    create_graph: bool,
) -> tuple[Tensor, Tensor | None]:
    """Token scores ``[batch, views, seq]`` (``|A|``, L2 over the top-K dims) from any registered method.

    With ``create_graph=True``, also the model's logits ``[batch, labels]`` from the forward pass the
    scores were differentiated through, where the method runs one on the input (single-step ``fast_ig``,
    ``gradient_x_input``, ``attnlrp``): the student's KD and CE terms then need no forward of their own.
    Else None.

    Args:
        shared: The loss's options (``steps``, ``layer``, ``target_fn``, ``baseline``), each passed where
            the method takes it; a step rule defaults to the paper's right Riemann sum, and the zero
            baseline goes to ``fast_ig`` only (other methods keep their own default).
        own: The method's own options (``method_options`` / ``teacher_options``); they win.
    """
    accepted = method_parameters(method)
    chosen: dict[str, Any] = {name: value for name, value in shared.items() if name in accepted}
    if is_regression(model):
        chosen["target_fn"] = "logit"  # a regression output is explained as itself
    if "rule" in accepted and "steps" in chosen:
        chosen["rule"] = "riemann_right"  # the paper's points: k/m, k = 1..m
    if method != REFERENCE_METHOD and chosen.get("baseline") == "zero":
        chosen.pop("baseline")
    chosen.update(own)
    with torch.set_grad_enabled(create_graph or torch.is_grad_enabled()):
        attributions, logits = cast(
            tuple[Tensor, Tensor | None],
            attribute(
                unwrap(model),
                {**model_inputs(batch), **special_tokens(batch)},
                targets=targets,
                method=method,
                create_graph=create_graph,
                return_logits=True,
                **chosen,
            ),
        )
    graph_logits = logits if create_graph and logits is not None and logits.requires_grad else None
    if attributions.dim() == 3:  # token-level methods (occlusion, Shapley ...): |score| per token
        return attributions.abs(), graph_logits
    return reduce_dims(attributions, sign="absolute", top_k=top_k, aggregate="l2"), graph_logits


def shuffle_over_tokens(scores: Tensor, batch: dict[str, Tensor], *, seed: int) -> Tensor:
    """Permute each example's scores over its real (non-pad) tokens, the same way for every view.

    The permutation is fixed by ``seed`` and the example's token ids, so a teacher map computed
    live and one read from a cache are shuffled alike. Padding stays where it is (and zero).

    Shapes:
        scores ``[batch, views, seq]`` -> the same.
    """
    out = scores.clone()
    for row in range(scores.shape[0]):
        real = batch["attention_mask"][row].nonzero().flatten()
        ids = batch["input_ids"][row, real].tolist()
        digest = hashlib.sha256(json.dumps([seed, ids]).encode()).digest()
        generator = torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))
        order = torch.randperm(len(real), generator=generator).to(real.device)
        out[row, :, real] = scores[row, :, real[order]]
    return out


def special_tokens(batch: dict[str, Tensor]) -> dict[str, Tensor]:
    """The batch's ``special_tokens_mask``, if it has one (a token baseline keeps those tokens)."""
    return {"special_tokens_mask": batch["special_tokens_mask"]} if "special_tokens_mask" in batch else {}

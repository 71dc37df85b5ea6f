"""Baselines x' for path methods, at the attributed layer."""

from __future__ import annotations

import torch
from torch import Tensor

from attribkit.errors import OptionError
from attribkit.model import Classifier
from attribkit.targets import apply_target_fn

BASELINES = ("zero", "pad", "mask", "unk")
DEFAULT_BASELINE = {"word_embeddings": "pad", "embeddings": "zero"}


def check_baseline(baseline: str | None, layer: str) -> str:
    """The baseline name to use (layer default for None); raises on unknown names."""
    name = DEFAULT_BASELINE[layer] if baseline is None else baseline
    if name not in BASELINES:
        raise OptionError(f"unknown baseline {name!r}; choose one of: {', '.join(BASELINES)}")
    return name


def replacement_id(clf: Classifier, kind: str) -> int:
    """Token id of the ``pad``/``mask``/``unk`` token.

    Raises:
        OptionError: the tokenizer has no such token.
    """
    if kind == "pad":
        return clf.pad_token_id
    token_id = getattr(clf.tokenizer, f"{kind}_token_id", None)
    if token_id is None:
        raise OptionError(f"the tokenizer has no {kind} token; use baseline/replacement 'pad'")
    return int(token_id)


def default_replacement(clf: Classifier, replacement: str | None) -> str:
    """The replacement token to use: the one asked for, else ``mask``, else ``unk``, else ``pad`` (decoders
    usually have neither a mask nor an unknown token)."""
    if replacement is not None:
        return replacement
    available = [k for k in ("mask", "unk") if getattr(clf.tokenizer, f"{k}_token_id", None) is not None]
    return available[0] if available else "pad"


def baseline_ids(clf: Classifier, batch: dict[str, Tensor], kind: str) -> Tensor:
    """``input_ids`` with every real token replaced by the ``kind`` token; special tokens kept.

    Shapes:
        ``[batch, seq]``.
    """
    ids = batch["input_ids"]
    keep = clf.special_mask(batch)
    return torch.where(keep, ids, torch.full_like(ids, replacement_id(clf, kind)))


def baseline_output(clf: Classifier, batch: dict[str, Tensor], layer: str, kind: str, x: Tensor) -> Tensor:
    """The baseline x' at ``layer``: zeros, or the layer's output on :func:`baseline_ids`.

    Args:
        x: The layer's output on the real input ``[batch, seq, hidden]`` (for shape/dtype).

    Shapes:
        returns ``[batch, seq, hidden]``.
    """
    if kind == "zero":
        return torch.zeros_like(x)
    return clf.layer_output({**batch, "input_ids": baseline_ids(clf, batch, kind)}, layer)


@torch.no_grad()
def baseline_logits(clf: Classifier, batch: dict[str, Tensor], layer: str, kind: str) -> Tensor:
    """The model's logits at the baselines x', one forward pass per *distinct* baseline.

    A baseline depends only on a text's length and segments (``[CLS] [PAD] ... [SEP]`` ids, or
    zeros at the layer), so the texts of a length-bucketed batch share a handful of them.

    Shapes:
        returns ``[batch, num_labels]``.
    """
    keys = [batch["attention_mask"]]
    if "token_type_ids" in batch:
        keys.append(batch["token_type_ids"])
    if kind != "zero":
        keys.append(baseline_ids(clf, batch, kind))
    first, inverse = _distinct_rows(torch.cat(keys, dim=1))
    sub = {k: v[first] for k, v in batch.items()}
    if kind == "zero":
        logits = clf.forward_with_layer(sub, layer, torch.zeros_like)
    else:
        logits = clf.logits({**sub, "input_ids": baseline_ids(clf, sub, kind)})
    return logits[inverse]


@torch.no_grad()
def output_change(
    clf: Classifier, batch: dict[str, Tensor], layer: str, kind: str, target_fn: str, targets: Tensor, logits: Tensor
) -> Tensor:
    """``F(x) - F(x')`` per example and view: what a complete IG map adds up to.

    F(x) comes from ``logits`` (the pass that gave the prediction), so only the baselines need a
    forward pass, and only the distinct ones (see :func:`baseline_logits`).

    Shapes:
        targets ``[batch, views]``, logits ``[batch, num_labels]`` -> ``[batch, views]``.
    """
    f_x = apply_target_fn(logits, target_fn, is_regression=clf.is_regression).gather(1, targets)
    base = baseline_logits(clf, batch, layer, kind)
    return f_x - apply_target_fn(base, target_fn, is_regression=clf.is_regression).gather(1, targets)


def _distinct_rows(rows: Tensor) -> tuple[Tensor, Tensor]:
    """For a 2-D integer tensor: the index of each distinct row's first occurrence, and each row's distinct row."""
    unique, inverse = torch.unique(rows, dim=0, return_inverse=True)
    first = torch.full((unique.shape[0],), rows.shape[0], dtype=torch.long, device=rows.device)
    first = first.scatter_reduce(0, inverse, torch.arange(rows.shape[0], device=rows.device), reduce="amin")
    return first, inverse

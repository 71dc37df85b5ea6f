"""Students made from a teacher by keeping some of its transformer layers."""

from __future__ import annotations

import copy
from collections.abc import Sequence

from torch import Tensor, nn

from attribkit import OptionError
from attribkit_distill.maps import unwrap

# where each architecture keeps its list of layers, and the config field counting them
_LAYER_LISTS = (("encoder", "layer", "num_hidden_layers"), ("transformer", "layer", "n_layers"))


def layer_list(model: nn.Module) -> tuple[nn.ModuleList, str]:
    """The encoder's ``nn.ModuleList`` of layers and the config field that counts them."""
    base = unwrap(model).base_model
    for parent, child, field in _LAYER_LISTS:
        layers = getattr(getattr(base, parent, None), child, None)
        if isinstance(layers, nn.ModuleList):
            return layers, field
    raise OptionError(f"cannot find the transformer layers of {type(base).__name__}; use --student-init with a ready model")


def student_from_layers(teacher: nn.Module, layers: Sequence[int]) -> nn.Module:
    """A copy of ``teacher`` (embeddings, head included) keeping only the given layers, in order.

    Args:
        teacher: A Hugging Face sequence classifier.
        layers: 0-based indices of the layers to keep (e.g. ``[0, 2, 4]``).
    """
    inner = unwrap(teacher)
    available, field = layer_list(inner)
    n = len(available)
    if not layers or any(not 0 <= i < n for i in layers) or len(set(layers)) != len(layers):
        raise OptionError(f"--student-layers must be distinct indices in 0..{n - 1}; got {','.join(map(str, layers)) or 'none'}")
    student = copy.deepcopy(inner)
    kept, _ = layer_list(student)
    chosen = nn.ModuleList([kept[i] for i in layers])
    for i, layer in enumerate(chosen):  # attention layers that know their index (cache bookkeeping)
        for module in layer.modules():
            if hasattr(module, "layer_idx"):
                module.layer_idx = i
    parent = student.base_model.encoder if field == "num_hidden_layers" else student.base_model.transformer
    parent.layer = chosen
    setattr(student.config, field, len(layers))
    return student


# parameter-name fragments whose rows (outputs) are attention heads, and whose columns (inputs) are
_HEAD_OUTPUTS = ("attention.self.query.", "attention.self.key.", "attention.self.value.",
                 "attention.q_lin.", "attention.k_lin.", "attention.v_lin.")
_HEAD_INPUTS = ("attention.output.dense.", "attention.out_lin.")


def narrow_student(teacher: nn.Module, layers: Sequence[int], hidden: int) -> nn.Module:
    """A narrower student: keep ``layers`` and select a subset of every weight's dimensions.

    Weight selection after Xu et al., "Initializing Models with Larger Ones" (ICLR 2024): the
    residual width shrinks to ``hidden`` by keeping evenly spaced dimensions (the same ones in
    every layer, so LayerNorms and residual connections stay consistent), attention keeps
    evenly spaced whole heads of the teacher's head size, and the feed-forward layer keeps
    evenly spaced neurons in the same proportion. The vocabulary and positions are unchanged.

    Args:
        teacher: A BERT-style Hugging Face sequence classifier (BERT, RoBERTa, ELECTRA, DistilBERT).
        layers: Teacher layers to keep, in order.
        hidden: Student width; a multiple of the teacher's head size, at most the teacher's width.
    """
    import torch

    deep = student_from_layers(teacher, layers)
    config = copy.deepcopy(deep.config)
    names = _width_fields(config)
    width, heads, inner = (int(getattr(config, names[0])), int(getattr(config, names[1])), int(getattr(config, names[2])))
    head_size = width // heads
    if not head_size <= hidden <= width or hidden % head_size:
        raise OptionError(f"--student-hidden must be a multiple of the teacher's head size {head_size} between {head_size} and {width}; got {hidden}")
    kept_heads = hidden // head_size
    ffn = max(1, inner * hidden // width)
    setattr(config, names[0], hidden)
    setattr(config, names[1], kept_heads)
    setattr(config, names[2], ffn)
    if getattr(config, "embedding_size", None) == width:  # ELECTRA ties embedding size to the width
        config.embedding_size = hidden
    student = type(deep)(config).to(next(deep.parameters()).dtype)
    dims = _evenly(width, hidden)
    head_dims = torch.cat([torch.arange(h * head_size, (h + 1) * head_size) for h in _evenly(heads, kept_heads).tolist()])
    neurons = _evenly(inner, ffn)
    source = deep.state_dict()
    with torch.no_grad():
        for name, target in student.state_dict().items():
            value = source[name]
            for axis in range(value.dim()):
                if value.shape[axis] == target.shape[axis]:
                    continue
                if value.shape[axis] == inner:
                    index = neurons
                elif (axis == 0 and any(f in name for f in _HEAD_OUTPUTS)) or (axis == 1 and any(f in name for f in _HEAD_INPUTS)):
                    index = head_dims
                else:
                    index = dims
                value = value.index_select(axis, index)
            target.copy_(value)
    reference = next(deep.parameters())
    return student.to(device=reference.device, dtype=reference.dtype).train(deep.training)


def _width_fields(config: object) -> tuple[str, str, str]:
    for fields in (("hidden_size", "num_attention_heads", "intermediate_size"), ("dim", "n_heads", "hidden_dim")):
        if all(hasattr(config, f) for f in fields):
            return fields
    raise OptionError(f"cannot narrow a {type(config).__name__}: no hidden size / heads / feed-forward size fields")


def _evenly(total: int, count: int) -> Tensor:
    """``count`` evenly spaced indices in ``0..total-1`` (all of them when equal)."""
    import torch

    return torch.linspace(0, total - 1, count).round().long()

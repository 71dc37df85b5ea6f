"""Students made from a teacher by keeping some of its transformer layers."""

from __future__ import annotations

import copy
from collections.abc import Sequence

from torch import nn

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

"""Students made by keeping some transformer layers of a teacher, or of a pre-trained (not fine-tuned) model."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, cast

from torch import Tensor, nn

from attribkit import OptionError, architecture_of, architectures_supporting, find_layer_list
from attribkit_distill.maps import unwrap


def _find_layers(model: nn.Module) -> tuple[nn.Module, str, str]:
    """The module owning the layer list, the list's attribute name and the config field counting them
    (where the model's ``ArchitectureSpec`` says, see ``attribkit.register_architecture``)."""
    inner = unwrap(model)
    found = find_layer_list(inner.base_model, inner.config)
    if found is None:
        raise OptionError(
            f"cannot find the transformer layers of {type(inner.base_model).__name__}; register its architecture "
            "(attribkit.register_architecture) or use --student-init with a ready model"
        )
    return found


def layer_list(model: nn.Module) -> tuple[nn.ModuleList, str]:
    """The model's ``nn.ModuleList`` of transformer layers and the config field that counts them."""
    owner, attribute, field = _find_layers(model)
    return getattr(owner, attribute), field


def student_from_layers(teacher: nn.Module, layers: Sequence[int]) -> nn.Module:
    """A copy of ``teacher`` (embeddings, head included) keeping only the given layers, in order.

    Works for encoders (BERT, RoBERTa, ELECTRA, DeBERTa-v2, DistilBERT, ModernBERT) and decoder
    classifiers (GPT-2, Llama, Qwen2, Mistral). Per-layer config lists (``layer_types``) keep the
    kept layers' entries, and the result must load back from its own config: a choice that the
    architecture cannot rebuild (ModernBERT's first layer has no attention norm, so it must be
    layer 0) is refused.

    Args:
        teacher: A Hugging Face sequence classifier.
        layers: 0-based indices of the layers to keep (e.g. ``[0, 2, 4]``).

    Raises:
        OptionError: bad indices, or a selection the architecture cannot rebuild.
    """
    inner = unwrap(teacher)
    available, field = layer_list(inner)
    n = len(available)
    if not layers or any(not 0 <= i < n for i in layers) or len(set(layers)) != len(layers):
        raise OptionError(
            f"--student-layers must be distinct indices in 0..{n - 1}; got {','.join(map(str, layers)) or 'none'}"
        )
    student: Any = copy.deepcopy(inner)
    owner, attribute, _ = _find_layers(student)
    kept = getattr(owner, attribute)
    chosen = nn.ModuleList([kept[i] for i in layers])
    for i, layer in enumerate(chosen):  # attention layers that know their index (cache bookkeeping)
        for module in layer.modules():
            if hasattr(module, "layer_idx"):
                cast(Any, module).layer_idx = i
    setattr(owner, attribute, chosen)
    setattr(student.config, field, len(layers))
    types = getattr(student.config, "layer_types", None)
    if isinstance(types, list) and len(types) == n:
        student.config.layer_types = [types[i] for i in layers]
    _check_rebuilds(student, layers)
    return student


def _check_rebuilds(student: Any, layers: Sequence[int]) -> None:
    """Refuse a student whose weights would not load back into a model built from its config."""
    import torch

    with torch.device("meta"):
        fresh = type(student)(student.config)
    want = {k: tuple(v.shape) for k, v in fresh.state_dict().items()}
    have = {k: tuple(v.shape) for k, v in student.state_dict().items()}
    if want != have:
        differs = sorted(set(want) ^ set(have)) or sorted(k for k in want if want[k] != have[k])
        raise OptionError(
            f"layers {','.join(map(str, layers))} of a {student.config.model_type} do not form a model that "
            f"loads back from its config (e.g. {differs[0]}); start with layer 0"
        )


def student_from_pretrained(
    path_or_name: str,
    layers: Sequence[int],
    *,
    num_labels: int,
    hidden: int | None = None,
    labels: Sequence[str] | None = None,
    regression: bool = False,
) -> nn.Module:
    """A student built from a *pre-trained* model: its embeddings and chosen layers, and a fresh head.

    The AD-KD paper's students are pre-trained smaller BERTs, not copies of the fine-tuned teacher;
    this makes such a student from any pre-trained encoder checkpoint (a hub name or a folder).
    Whatever head the checkpoint has is discarded: the classification head is newly initialised
    (seed with ``torch.manual_seed`` first for a reproducible one).

    Args:
        path_or_name: Pre-trained checkpoint (encoder or classifier).
        layers: 0-based indices of its layers to keep (e.g. ``[0, 2, 4]``).
        num_labels: Outputs of the new head (1 = regression).
        hidden: Also narrow the width to this size by weight selection (see :func:`narrow_student`).
        labels: Class names for ``config.id2label``.
        regression: The head is a regression head.

    Raises:
        OptionError: unreadable checkpoint, bad layer indices or width.
    """
    from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the checkpoint's own head is dropped on purpose: no "unexpected weights" report
    try:
        config = AutoConfig.from_pretrained(path_or_name)
        encoder = AutoModel.from_pretrained(path_or_name)
    except Exception as exc:  # transformers raises OSError / ValueError variants
        raise OptionError(
            f"cannot load a pre-trained model from {path_or_name!r}: {str(exc).splitlines()[0]}"
        ) from None
    finally:
        hf_logging.set_verbosity(level)
    config.num_labels = num_labels
    config.id2label = dict(enumerate(labels or [f"LABEL_{i}" for i in range(num_labels)]))
    config.label2id = {name: i for i, name in config.id2label.items()}
    config.problem_type = "regression" if regression else "single_label_classification"
    config.architectures = None
    model = AutoModelForSequenceClassification.from_config(config)  # fresh head, HF's own initialisation
    missing, unexpected = model.base_model.load_state_dict(encoder.state_dict(), strict=False)
    if unexpected or any(not name.startswith("pooler.") for name in missing):
        raise OptionError(
            f"{path_or_name!r}: its encoder does not fit {type(model).__name__} "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    model.eval()
    return narrow_student(model, layers, hidden) if hidden is not None else student_from_layers(model, layers)


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

    spec = architecture_of(unwrap(teacher))
    if spec is None or spec.width_fields is None:
        kind = getattr(unwrap(teacher).config, "model_type", "?")
        raise OptionError(
            f"--student-hidden narrows BERT-style encoders ({', '.join(architectures_supporting('narrowable'))}); a {kind} keeps "
            "its width"
        )
    deep = student_from_layers(teacher, layers)
    config: Any = copy.deepcopy(deep.config)
    names = spec.width_fields
    width, heads, inner = (
        int(getattr(config, names[0])),
        int(getattr(config, names[1])),
        int(getattr(config, names[2])),
    )
    head_size = width // heads
    if not head_size <= hidden <= width or hidden % head_size:
        raise OptionError(
            f"--student-hidden must be a multiple of the teacher's head size {head_size} between {head_size} and {width}; got {hidden}"
        )
    kept_heads = hidden // head_size
    ffn = max(1, inner * hidden // width)
    setattr(config, names[0], hidden)
    setattr(config, names[1], kept_heads)
    setattr(config, names[2], ffn)
    if getattr(config, "embedding_size", None) == width:  # ELECTRA ties embedding size to the width
        config.embedding_size = hidden
    student = type(deep)(config).to(next(deep.parameters()).dtype)
    dims = _evenly(width, hidden)
    head_dims = torch.cat(
        [torch.arange(h * head_size, (h + 1) * head_size) for h in _evenly(heads, kept_heads).tolist()]
    )
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
                elif (axis == 0 and any(f in name for f in spec.head_outputs)) or (
                    axis == 1 and any(f in name for f in spec.head_inputs)
                ):
                    index = head_dims
                else:
                    index = dims
                value = value.index_select(axis, index)
            target.copy_(value)
    reference = next(deep.parameters())
    return student.to(device=reference.device, dtype=reference.dtype).train(deep.training)


def _evenly(total: int, count: int) -> Tensor:
    """``count`` evenly spaced indices in ``0..total-1`` (all of them when equal)."""
    import torch

    return torch.linspace(0, total - 1, count).round().long()

"""What differs between Hugging Face architectures and matters to attribution and distillation: one table.

Every fact attribkit needs about a model family lives in one :class:`ArchitectureSpec`: where its
transformer blocks are and which config field counts them (layer hooks, students, interchange
intervention), whether its positions start after the padding id (the longest input), whether the
AttnLRP rules are tested on its forward, and how to narrow it by weight selection. Adding a family
is one :func:`register_architecture` call (docs/architecture.md shows one); a model whose family is
not registered still works wherever the facts can be found by search (the block lists of every
registered family are tried), and is refused in one line where they cannot.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from torch import nn

from attribkit.errors import DuplicateNameError, OptionError


@dataclass(frozen=True)
class ArchitectureSpec:
    """The facts attribkit uses about one model family (a Hugging Face ``config.model_type`` or several).

    Attributes:
        model_types: The ``config.model_type`` values it covers, e.g. ``("roberta", "xlm-roberta")``.
        layers: Attribute path from the base model to its ``nn.ModuleList`` of blocks, e.g. ``("encoder", "layer")``.
        layer_count: The config field counting the blocks (``num_hidden_layers``, ``n_layers`` ...).
        positions_after_padding: Position ids start at ``pad_token_id + 1`` (RoBERTa): the longest input is
            ``max_position_embeddings - pad_token_id - 1`` tokens.
        attnlrp: The AttnLRP rules are tested on this forward (layer norms, single-call activations,
            eager attention that can be switched on after loading).
        width_fields: Config fields of the residual width, the attention heads and the feed-forward width,
            when the family can be narrowed by weight selection (``--student-hidden``); None otherwise.
        head_outputs: Parameter-name fragments whose rows are attention heads (queries, keys, values).
        head_inputs: Parameter-name fragments whose columns are attention heads (the attention output).
    """

    model_types: tuple[str, ...]
    layers: tuple[str, ...]
    layer_count: str = "num_hidden_layers"
    positions_after_padding: bool = False
    attnlrp: bool = False
    width_fields: tuple[str, str, str] | None = None
    head_outputs: tuple[str, ...] = ()
    head_inputs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.model_types or not all(isinstance(t, str) and t for t in self.model_types):
            raise OptionError(f"an architecture needs at least one model_type name; got {self.model_types!r}")
        if not self.layers or not all(isinstance(p, str) and p for p in self.layers):
            raise OptionError(f"layers is an attribute path such as ('encoder', 'layer'); got {self.layers!r}")
        if self.width_fields is not None and not (self.head_outputs and self.head_inputs):
            raise OptionError("a narrowable architecture (width_fields) needs head_outputs and head_inputs")

    @property
    def narrowable(self) -> bool:
        return self.width_fields is not None


_BERT_HEADS = {
    "width_fields": ("hidden_size", "num_attention_heads", "intermediate_size"),
    "head_outputs": ("attention.self.query.", "attention.self.key.", "attention.self.value."),
    "head_inputs": ("attention.output.dense.",),
}

_ARCHITECTURES: dict[str, ArchitectureSpec] = {}


def register_architecture(spec: ArchitectureSpec, *, replace: bool = False) -> ArchitectureSpec:
    """Add a model family to the table (``replace=True`` to redefine a registered one).

    Raises:
        DuplicateNameError: one of its model types is registered already and ``replace`` is False.
    """
    taken = [t for t in spec.model_types if t in _ARCHITECTURES]
    if taken and not replace:
        raise DuplicateNameError(f"architecture {taken[0]!r} is registered already; pass replace=True to redefine it")
    for model_type in spec.model_types:
        _ARCHITECTURES[model_type] = spec
    return spec


def architecture_of(model_or_config: Any) -> ArchitectureSpec | None:
    """The registered family of a model (or its config), by ``model_type``; None when not registered."""
    config = getattr(model_or_config, "config", model_or_config)
    return _ARCHITECTURES.get(str(getattr(config, "model_type", "")))


def architectures() -> dict[str, ArchitectureSpec]:
    """Every registered model type and its spec."""
    return dict(_ARCHITECTURES)


def architectures_supporting(feature: str) -> list[str]:
    """Model types whose spec has ``feature`` (``attnlrp``, ``narrowable``) set."""
    return sorted(t for t, spec in _ARCHITECTURES.items() if getattr(spec, feature))


for _spec in (
    ArchitectureSpec(("bert",), ("encoder", "layer"), attnlrp=True, **_BERT_HEADS),  # type: ignore[arg-type]
    ArchitectureSpec(
        ("roberta", "xlm-roberta", "camembert"),
        ("encoder", "layer"),
        positions_after_padding=True,
        attnlrp=True,
        **_BERT_HEADS,  # type: ignore[arg-type]
    ),
    ArchitectureSpec(("electra",), ("encoder", "layer"), attnlrp=True, **_BERT_HEADS),  # type: ignore[arg-type]
    ArchitectureSpec(("deberta-v2",), ("encoder", "layer"), attnlrp=True),
    ArchitectureSpec(
        ("distilbert",),
        ("transformer", "layer"),
        layer_count="n_layers",
        attnlrp=True,
        width_fields=("dim", "n_heads", "hidden_dim"),
        head_outputs=("attention.q_lin.", "attention.k_lin.", "attention.v_lin."),
        head_inputs=("attention.out_lin.",),
    ),
    ArchitectureSpec(("gpt2",), ("h",), layer_count="n_layer"),
    ArchitectureSpec(("llama", "qwen2", "mistral", "modernbert"), ("layers",)),
):
    register_architecture(_spec)


def layer_paths() -> list[tuple[tuple[str, ...], str]]:
    """Every registered (block list path, count field), for models whose family is not registered."""
    seen: list[tuple[tuple[str, ...], str]] = []
    for spec in _ARCHITECTURES.values():
        if (spec.layers, spec.layer_count) not in seen:
            seen.append((spec.layers, spec.layer_count))
    return seen


def find_layer_list(base: nn.Module, config: Any = None) -> tuple[nn.Module, str, str] | None:
    """The module owning a base model's block list, the list's attribute name and the config field counting it.

    The registered family's path first, then every registered path (a model of an unregistered family
    whose blocks sit where a known family keeps them still works). None when no path fits.
    """
    spec = architecture_of(config) if config is not None else None
    candidates: Iterable[tuple[tuple[str, ...], str]] = [(spec.layers, spec.layer_count)] if spec else []
    for path, field in [*candidates, *layer_paths()]:
        owner: Any = base
        for name in path[:-1]:
            owner = getattr(owner, name, None)
        if isinstance(getattr(owner, path[-1], None), nn.ModuleList) and len(getattr(owner, path[-1])):
            return owner, path[-1], field
    return None


def first_block(base: nn.Module) -> nn.Module | None:
    """The first transformer block of a base model (``encoder.layer[0]``, ``h[0]``, ``layers[0]`` ...).

    Beyond the registered paths, any ``nn.ModuleList`` named like a block list (``layers``, ``h``,
    ``layer``, ``blocks``) on the base model or one level down is taken.
    """
    found = find_layer_list(base, getattr(base, "config", None))
    if found is not None:
        return getattr(found[0], found[1])[0]
    for owner in (base, *base.children()):
        for name in ("layers", "h", "layer", "blocks"):
            blocks = getattr(owner, name, None)
            if isinstance(blocks, nn.ModuleList) and len(blocks):
                return blocks[0]
    return None


def max_positions(config: Any) -> int | None:
    """The longest input the position embeddings allow (RoBERTa's start after the padding id)."""
    positions = getattr(config, "max_position_embeddings", None)
    if not isinstance(positions, int):
        return None
    spec = architecture_of(config)
    if spec is not None and spec.positions_after_padding:
        positions -= int(getattr(config, "pad_token_id", 0) or 0) + 1
    return positions


def pad_with_eos(config: Any, tokenizer: Any) -> None:
    """Decoders often have no padding token: pad with end-of-sequence, as their users do.

    The classification head finds the last real token by the model's ``pad_token_id``, so a model without
    one cannot take a padded batch; attribkit pads right, so every text keeps the positions it has alone.
    """
    if getattr(config, "pad_token_id", None) is not None:
        return
    candidates: list[Any] = [getattr(tokenizer, "pad_token_id", None), getattr(tokenizer, "eos_token_id", None)]
    eos = getattr(config, "eos_token_id", None)
    candidates += list(eos) if isinstance(eos, (list, tuple)) else [eos]
    chosen = next((c for c in candidates if isinstance(c, int)), None)
    if chosen is not None:
        config.pad_token_id = chosen

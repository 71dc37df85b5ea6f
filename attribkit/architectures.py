"""What differs between Hugging Face architectures and matters to attribution: where the blocks are, how decoders pad."""

from __future__ import annotations

from typing import Any

from torch import nn


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


BLOCK_LISTS = ("layers", "h", "layer", "blocks")  # where HF models keep their transformer blocks


def first_block(base: nn.Module) -> nn.Module | None:
    """The first transformer block of a base model (``layers[0]``, ``h[0]`` ...), searched one level down too."""
    for owner in (base, *base.children()):
        for name in BLOCK_LISTS:
            blocks = getattr(owner, name, None)
            if isinstance(blocks, nn.ModuleList) and len(blocks):
                return blocks[0]
    return None

"""What a teacher cache is computed from: the teacher's identity (weights, config) and the cache's key.

A cache (:class:`attribkit_distill.cache.TeacherCache`) is usable only when its key matches the teacher, the
encoded data and the map options of the run asking for it; :func:`teacher_config` is what a student distilled
from the cache alone needs to know of the teacher.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from attribkit_distill.cross_data import CrossEncodedData
from attribkit_distill.data import EncodedData
from attribkit_distill.loss import AttributionLoss, maps_part, vocabulary_of
from attribkit_distill.maps import unwrap

#: Bumped when the cache's file layout changes; a cache of another format is refused by its key.
FORMAT_VERSION = 1


def model_fingerprint(model: nn.Module) -> str:
    """sha256 of a model's config and every parameter and buffer (names, dtypes, bytes).

    The config's ``_name_or_path`` (the folder or hub name it was loaded from) is left out: the same
    weights copied to another folder, or a clone of the repository at another path, are the same teacher.
    """
    inner = unwrap(model)
    config = json.loads(inner.config.to_json_string(use_diff=False))
    config.pop("_name_or_path", None)
    h = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    for name, tensor in sorted(inner.state_dict().items()):
        t = tensor.detach().cpu().contiguous().reshape(-1)
        h.update(f"{name}:{t.dtype}:{tuple(tensor.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def teacher_config(model: nn.Module) -> dict[str, Any]:
    """What a student distilled from a cache needs to know of the teacher: architecture, width, labels, vocabulary.

    ``hidden_size`` scales the paper's top-K to the teacher's width; ``vocab_size`` (the rows of its input
    embeddings) and ``pad_token_id`` check that teacher and student read the same token ids. A value the
    config does not have is None.
    """
    config = unwrap(model).config
    vocab_size, pad_token_id = vocabulary_of(model)
    return {
        "model_type": getattr(config, "model_type", None),
        "hidden_size": getattr(config, "hidden_size", None),
        "num_labels": int(config.num_labels),
        "vocab_size": vocab_size,
        "pad_token_id": pad_token_id,
    }


def cache_key(
    teacher_fingerprint: str,
    data: EncodedData | CrossEncodedData,
    loss_fn: AttributionLoss | None,
    examples: Sequence[int] | None = None,
) -> dict[str, Any]:
    """What a cache was computed from; a cache is usable only when all of it matches.

    Across tokenizers the maps are unit maps: the key holds the teacher's encoding and the units
    (their boundaries and the teacher tokens in each), so a student tokenizer with other units is refused.
    A cache of some examples only (``examples``) records which, so a longer run does not reuse it.
    """
    key = {
        "format": FORMAT_VERSION,
        "teacher": teacher_fingerprint,
        **data.cache_fields(),
        "options": None if loss_fn is None else loss_fn.map_options(),
    }
    if examples is not None:
        listed = ",".join(map(str, sorted(set(examples))))
        key["examples"] = {"count": len(set(examples)), "sha256": hashlib.sha256(listed.encode()).hexdigest()}
    return key


def comparable(key: dict[str, Any]) -> dict[str, Any]:
    """A stored cache key as :func:`cache_key` writes it now: a cache built when the distance was part of its
    key (it never changed the maps) keeps serving runs of any distance."""
    options = key.get("options")
    return key if options is None else {**key, "options": maps_part(options)}

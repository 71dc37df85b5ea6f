"""Tokenized task data and the batches a training loop reads."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from attribkit import InvalidInputError
from attribkit_distill.tasks import Example


@dataclass(frozen=True)
class EncodedData:
    """Token ids of a list of examples, unpadded, with their labels.

    Attributes:
        input_ids: One id list per example (special tokens included, truncated).
        token_type_ids: Segment ids per example, or None when the tokenizer gives none.
        labels: Class index or score per example.
        pad_id: The tokenizer's padding id.
    """

    input_ids: tuple[tuple[int, ...], ...]
    token_type_ids: tuple[tuple[int, ...], ...] | None
    labels: tuple[int | float, ...]
    pad_id: int

    def __len__(self) -> int:
        return len(self.input_ids)

    def fingerprint(self) -> str:
        """sha256 of the ids and labels: names this exact data (for a teacher cache)."""
        h = hashlib.sha256()
        h.update(json.dumps([self.input_ids, self.token_type_ids, self.labels]).encode())
        return h.hexdigest()

    def cache_fields(self) -> dict[str, str]:
        """What a teacher cache of token maps depends on: this data."""
        return {"data": self.fingerprint()}

    def map_lengths(self) -> list[int]:
        """Length of each example's map: its number of tokens."""
        return [len(r) for r in self.input_ids]

    def batch(self, indices: Sequence[int], device: torch.device | str = "cpu") -> dict[str, Tensor]:
        """Padded batch of the given examples.

        Returns:
            ``input_ids``, ``attention_mask`` (``token_type_ids``) ``[batch, seq]``, ``labels``
            ``[batch]`` (long, or float for scores) and ``index`` ``[batch]`` (example positions).
        """
        width = max(len(self.input_ids[i]) for i in indices)

        def pad(rows: Sequence[Sequence[int]], value: int) -> Tensor:
            return torch.tensor([list(r) + [value] * (width - len(r)) for r in rows], dtype=torch.long)

        ids = [self.input_ids[i] for i in indices]
        out = {"input_ids": pad(ids, self.pad_id), "attention_mask": pad([[1] * len(r) for r in ids], 0)}
        if self.token_type_ids is not None:
            out["token_type_ids"] = pad([self.token_type_ids[i] for i in indices], 0)
        labels = [self.labels[i] for i in indices]
        out["labels"] = torch.tensor(labels, dtype=torch.float32 if isinstance(labels[0], float) else torch.long)
        out["index"] = torch.tensor(list(indices), dtype=torch.long)
        return {k: v.to(device) for k, v in out.items()}


def encode_examples(tokenizer: Any, examples: Sequence[Example], *, max_length: int = 128) -> EncodedData:
    """Tokenize examples (pairs as two segments), truncating to ``max_length`` tokens."""
    if not examples:
        raise InvalidInputError("no examples to encode")
    texts = [e.text for e in examples]
    pairs = [e.pair for e in examples] if examples[0].pair is not None else None
    enc = tokenizer(texts, pairs, truncation=True, max_length=max_length)
    types = enc.get("token_type_ids")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return EncodedData(
        tuple(tuple(r) for r in enc["input_ids"]),
        None if types is None else tuple(tuple(r) for r in types),
        tuple(e.label for e in examples),
        int(pad_id),
    )


def epoch_batches(n: int, batch_size: int, *, seed: int, epoch: int, shuffle: bool = True) -> list[list[int]]:
    """The batches of one epoch: a permutation fixed by ``(seed, epoch)``, so a resumed run sees the same order."""
    if shuffle:
        generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        order = torch.randperm(n, generator=generator).tolist()
    else:
        order = list(range(n))
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


def visited_examples(n: int, batch_size: int, steps: int, *, seed: int) -> list[int]:
    """The sorted indices of the examples a run of ``steps`` steps trains on (epoch orders as in :func:`epoch_batches`).

    A short run (``--max-steps 20`` on 67k sentences) sees a few hundred examples; precomputing the
    teacher's outputs for just these is what keeps it short.
    """
    per_epoch = math.ceil(n / batch_size)
    if steps >= per_epoch:
        return list(range(n))
    seen: set[int] = set()
    for indices in epoch_batches(n, batch_size, seed=seed, epoch=0)[:steps]:
        seen.update(indices)
    return sorted(seen)


def subsample(examples: list[Example], limit: int | None, *, seed: int) -> list[Example]:
    """A seeded random subset of ``limit`` examples in original order (all when limit is None)."""
    if limit is None or limit >= len(examples):
        return examples
    generator = torch.Generator().manual_seed(seed)
    keep = sorted(torch.randperm(len(examples), generator=generator)[:limit].tolist())
    return [examples[i] for i in keep]

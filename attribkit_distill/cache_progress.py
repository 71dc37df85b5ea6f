"""The saved progress of an unfinished teacher cache build (``<cache>.progress``), so the next build continues it.

Used by :meth:`attribkit_distill.cache.TeacherCache.build`: the examples done so far, in the build's own order,
saved atomically every few seconds and on Ctrl-C, and restored only at a batch boundary of the same order.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, cast

import torch
from torch import Tensor


class BuildProgress:
    """The saved progress of one cache computation: the examples done so far, in the build's own order."""

    def __init__(self, path: Path, key: dict[str, Any], batch_size: int, every: float) -> None:
        self.path, self.key, self.batch_size, self.every = path, key, batch_size, every
        self.last = time.monotonic()

    def restore(self, order: list[int], logits: list[Tensor | None], maps: list[Tensor | None]) -> int:
        """Fill ``logits`` and ``maps`` from the saved progress; returns how many of ``order`` it holds (0: none)."""
        if not self.path.is_file():
            return 0
        try:
            blob = torch.load(self.path, map_location="cpu", weights_only=True)
            same = json.loads(blob["key"]) == self.key and int(blob["batch_size"]) == self.batch_size
            done = blob["examples"].tolist()
        except Exception:  # unreadable (a torn copy): computed over
            return 0
        # resumed only at a batch boundary of this very order, so every batch is the one an unbroken build makes
        if not same or done != order[: len(done)] or (len(done) % self.batch_size and len(done) != len(order)):
            return 0
        sizes = blob.get("sizes")
        flat = blob.get("maps")
        parts = [] if sizes is None or flat is None else torch.split(flat, sizes.tolist())
        for row, i in enumerate(done):
            logits[i] = blob["logits"][row]
            if parts:
                maps[i] = parts[row]
        return len(done)

    def maybe_save(self, done: list[int], logits: list[Tensor | None], maps: list[Tensor | None]) -> None:
        if time.monotonic() - self.last >= self.every:
            self.save(done, logits, maps)

    def save(self, done: list[int], logits: list[Tensor | None], maps: list[Tensor | None]) -> None:
        """Write the examples ``done`` (a prefix of the build's order) atomically."""
        blob: dict[str, Any] = {
            "key": json.dumps(self.key),
            "batch_size": self.batch_size,
            "examples": torch.tensor(done, dtype=torch.long),
            "logits": torch.stack([cast(Tensor, logits[i]) for i in done]),
        }
        if maps[done[0]] is not None:
            done_maps = [cast(Tensor, maps[i]) for i in done]
            blob.update(maps=torch.cat(done_maps), sizes=torch.tensor([m.numel() for m in done_maps]))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + f".{os.getpid()}.partial")
        torch.save(blob, partial)
        os.replace(partial, self.path)
        self.last = time.monotonic()

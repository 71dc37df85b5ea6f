"""Precomputed teacher outputs: the frozen teacher's logits and attribution maps, on disk.

The teacher is frozen and in eval mode, so its maps are fixed. Computing them once per training
set skips the teacher's forward and backward pass on every step. A cache is keyed by a hash of
the teacher's weights, the encoded data and the map options, and refuses any other combination.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from torch import Tensor, nn

from attribkit import InvalidInputError, progress_bar
from attribkit_distill.cross_data import CrossEncodedData, teacher_side
from attribkit_distill.cross_tokenizer import CrossTokenizerAttributionLoss
from attribkit_distill.data import EncodedData
from attribkit_distill.loss import AttributionLoss
from attribkit_distill.maps import model_inputs, unwrap
from attribkit_distill.objective import TeacherOutputs

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
        "options": None if loss_fn is None else loss_fn.options(),
    }
    if examples is not None:
        listed = ",".join(map(str, sorted(set(examples))))
        key["examples"] = {"count": len(set(examples)), "sha256": hashlib.sha256(listed.encode()).hexdigest()}
    return key


@dataclass(frozen=True)
class TeacherCache:
    """Teacher logits ``[examples, labels]`` and maps (ragged: ``[views, length]`` per example).

    A cache may hold only the examples a short run visits (``covered``); asking it for another raises.
    ``length`` counts an example's tokens, or its units when teacher and student tokenize differently
    (the maps are then unit maps, see :mod:`attribkit_distill.cross_tokenizer`).

    Build with :meth:`build` (computes or reuses a file) or open with :meth:`load`; read a
    batch's share with :meth:`outputs`.
    """

    key: dict[str, Any]
    logits: Tensor
    lengths: Tensor
    maps: Tensor | None
    offsets: Tensor | None
    views: int
    covered: Tensor | None = None

    @classmethod
    def build(
        cls,
        path: str | Path,
        teacher: nn.Module,
        data: EncodedData | CrossEncodedData,
        loss_fn: AttributionLoss | None,
        *,
        batch_size: int = 64,
        progress: bool = False,
        examples: Sequence[int] | None = None,
    ) -> TeacherCache:
        """Reuse the cache at ``path`` if it was made from this teacher, data and options; else compute it.

        Args:
            path: File to read or write (written atomically).
            teacher: The frozen teacher (put in eval mode here).
            data: The encoded training set the cache serves.
            loss_fn: The attribution loss whose teacher maps are stored; None stores logits only.
            batch_size: Examples per teacher pass (grouped by length).
            progress: Show a progress bar.
            examples: Compute only these example indices (those a short run visits,
                :func:`attribkit_distill.data.visited_examples`); None = every example.
        """
        path = Path(path)
        if (
            isinstance(data, CrossEncodedData)
            and loss_fn is not None
            and not isinstance(loss_fn, CrossTokenizerAttributionLoss)
        ):
            raise InvalidInputError("data for two tokenizers needs unit maps: use CrossTokenizerAttributionLoss")
        if examples is not None and len(set(examples)) == len(data):
            examples = None
        if examples is not None and (not examples or any(not 0 <= i < len(data) for i in examples)):
            raise InvalidInputError(f"teacher cache: give one or more example indices in [0, {len(data)})")
        key = cache_key(model_fingerprint(teacher), data, loss_fn, examples)
        if path.exists():
            cached = cls._read(path)
            if cached.key == key:
                return cached
        cache = cls._compute(key, teacher, data, loss_fn, batch_size, progress, examples)
        cache._write(path)
        return cache

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        teacher: nn.Module,
        data: EncodedData | CrossEncodedData,
        loss_fn: AttributionLoss | None,
    ) -> TeacherCache:
        """Open a cache, refusing it unless it matches ``teacher``, ``data`` and ``loss_fn``'s options.

        Raises:
            InvalidInputError: missing file, or made from something else (says what differs).
        """
        path = Path(path)
        if not path.is_file():
            raise InvalidInputError(f"no teacher cache at {path}; build one with TeacherCache.build")
        cache = cls._read(path)
        want = cache_key(model_fingerprint(teacher), data, loss_fn)
        differs = [name for name in sorted(set(want) | set(cache.key)) if cache.key.get(name) != want.get(name)]
        if differs:
            raise InvalidInputError(
                f"the teacher cache {path} was computed for a different {' and '.join(differs)}; rebuild it (TeacherCache.build)"
            )
        return cache

    def outputs(self, batch: dict[str, Tensor]) -> TeacherOutputs:
        """The teacher's logits and maps ``[batch, views, seq]`` for a batch carrying ``index``."""
        if "index" not in batch:
            raise InvalidInputError("the batch has no 'index' (example positions); the cache is looked up by it")
        index = batch["index"].cpu()
        if self.covered is not None and not bool(self.covered[index].all()):
            raise InvalidInputError(
                "the teacher cache holds only the examples of a shorter run; rebuild it for this run's steps"
            )
        mask = batch.get("unit_mask", batch["attention_mask"])
        device = mask.device
        lengths = mask.sum(dim=1).cpu()
        if not torch.equal(lengths, self.lengths[index]):
            raise InvalidInputError(
                "the batch's token (or unit) counts differ from the cached examples'; was the cache built for this data?"
            )
        logits = self.logits[index].to(device)
        if self.maps is None or self.offsets is None:
            return TeacherOutputs(logits)
        width = mask.shape[1]
        maps = torch.zeros(len(index), self.views, width)
        for row, i in enumerate(index.tolist()):
            n = int(self.lengths[i])
            start = int(self.offsets[i])
            maps[row, :, :n] = self.maps[start : start + self.views * n].view(self.views, n)
        return TeacherOutputs(logits, maps.to(device))

    # ------------------------------------------------------------------ compute / disk
    @classmethod
    @torch.no_grad()
    def _compute(
        cls,
        key: dict[str, Any],
        teacher: nn.Module,
        data: EncodedData | CrossEncodedData,
        loss_fn: AttributionLoss | None,
        batch_size: int,
        progress: bool,
        examples: Sequence[int] | None = None,
    ) -> TeacherCache:
        teacher.eval()
        device = next(teacher.parameters()).device
        lengths = torch.tensor(data.map_lengths())
        covered = None
        if examples is not None:
            covered = torch.zeros(len(data), dtype=torch.bool)
            covered[sorted(set(examples))] = True
        order = [
            i for i in torch.argsort(lengths, descending=True, stable=True).tolist() if covered is None or covered[i]
        ]
        logits: list[Tensor | None] = [None] * len(data)
        maps: list[Tensor | None] = [None] * len(data)
        with progress_bar(len(order), "teacher cache", progress, unit="examples") as update:
            for start in range(0, len(order), batch_size):
                chunk = order[start : start + batch_size]
                batch = data.batch(chunk, device)
                if loss_fn is None:
                    out_logits, out_maps = teacher(**model_inputs(teacher_side(batch))).logits, None
                else:
                    out_maps, out_logits = loss_fn.teacher_maps(teacher, batch)
                    if out_logits is None:
                        out_logits = teacher(**model_inputs(teacher_side(batch))).logits
                for row, i in enumerate(chunk):
                    logits[i] = out_logits[row].float().cpu()
                    if out_maps is not None:
                        maps[i] = out_maps[row, :, : int(lengths[i])].float().cpu().reshape(-1)
                update(min(start + batch_size, len(order)))
        first = order[0]
        views = 0 if maps[first] is None else cast(Tensor, maps[first]).numel() // int(lengths[first])
        width = cast(Tensor, logits[first]).shape
        # examples the run never visits hold NaN logits and empty maps (outputs() refuses them)
        stacked = torch.stack([torch.full(width, float("nan")) if t is None else t for t in logits])
        flat = offsets = None
        if views:
            filled = [torch.zeros(0) if m is None else m for m in maps]
            sizes = torch.tensor([m.numel() for m in filled])
            offsets = torch.cumsum(sizes, 0) - sizes
            flat = torch.cat(filled)
        return cls(key, stacked, lengths, flat, offsets, views, covered)

    @classmethod
    def _read(cls, path: Path) -> TeacherCache:
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
            return cls(
                json.loads(blob["key"]),
                blob["logits"],
                blob["lengths"],
                blob.get("maps"),
                blob.get("offsets"),
                int(blob["views"]),
                blob.get("covered"),
            )
        except Exception as exc:
            raise InvalidInputError(
                f"{path} is not a readable teacher cache ({type(exc).__name__}); delete it and rebuild"
            ) from None

    def _write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        blob: dict[str, Any] = {
            "key": json.dumps(self.key),
            "logits": self.logits,
            "lengths": self.lengths,
            "views": self.views,
        }
        if self.maps is not None:
            blob.update(maps=self.maps, offsets=self.offsets)
        if self.covered is not None:
            blob["covered"] = self.covered
        partial = path.with_name(path.name + ".partial")
        torch.save(blob, partial)
        os.replace(partial, path)

"""Precomputed teacher outputs: the frozen teacher's logits and attribution maps, on disk.

The teacher is frozen and in eval mode, so its maps are fixed. Computing them once per training
set skips the teacher's forward and backward pass on every step. A cache is keyed by a hash of
the teacher's weights, the encoded data and the map options, and refuses any other combination.

Building a cache of expensive maps (IG at 50 steps, occlusion) over a training set takes hours on a
CPU, so a build saves what it has computed beside the cache (``<cache>.progress``, every
``checkpoint_seconds`` and on Ctrl-C) and a build of the same cache continues from there. The
progress is used only when its key and batch size are those of the build asking for it, and it is
resumed at a batch boundary, so a resumed cache is the uninterrupted one bit for bit.

A cache also records its teacher's config (:func:`~attribkit_distill.cache_key.teacher_config`: architecture,
width, labels, vocabulary), so a student can be distilled from the cache alone (:meth:`TeacherCache.open`,
``attribkit distill --teacher-cache``) on a machine that never loads the teacher.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import torch
from torch import Tensor, nn

from attribkit import InvalidInputError, progress_bar
from attribkit_distill.cache_key import cache_key, comparable, model_fingerprint, teacher_config
from attribkit_distill.cache_progress import BuildProgress
from attribkit_distill.cross_data import CrossEncodedData, teacher_side
from attribkit_distill.cross_tokenizer import CrossTokenizerAttributionLoss
from attribkit_distill.data import EncodedData
from attribkit_distill.loss import AttributionLoss
from attribkit_distill.maps import model_inputs
from attribkit_distill.objective import TeacherOutputs
from attribkit_distill.signal import shuffle_over_tokens

#: Seconds between two saves of an unfinished build's progress.
CHECKPOINT_SECONDS = 60.0


def progress_path(path: str | Path) -> Path:
    """Where an unfinished build of the cache ``path`` keeps what it has computed (``<cache>.progress``)."""
    path = Path(path)
    return path.with_name(path.name + ".progress")


@dataclass(frozen=True)
class TeacherCache:
    """Teacher logits ``[examples, labels]`` and maps (ragged: ``[views, length]`` per example).

    A cache may hold only the examples a short run visits (``covered``); asking it for another raises.
    ``teacher_config`` is the teacher's :func:`~attribkit_distill.cache_key.teacher_config` (None in caches
    written before it was recorded);
    ``shuffle`` a seed when :meth:`open` permutes the maps on reading (the shuffled-map control from an
    unshuffled cache).
    ``length`` counts an example's tokens, or its units when teacher and student tokenize differently
    (the maps are then unit maps, see :mod:`attribkit_distill.cross_tokenizer`).

    Build with :meth:`build` (computes or reuses a file), open with :meth:`load` (checked against the teacher)
    or :meth:`open` (no teacher needed); read a batch's share with :meth:`outputs`.
    """

    key: dict[str, Any]
    logits: Tensor
    lengths: Tensor
    maps: Tensor | None
    offsets: Tensor | None
    views: int
    covered: Tensor | None = None
    teacher_config: dict[str, Any] | None = None
    shuffle: int | None = None

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
        checkpoint_seconds: float | None = CHECKPOINT_SECONDS,
    ) -> TeacherCache:
        """Reuse the cache at ``path`` if it was made from this teacher, data and options; else compute it.

        An interrupted computation continues from its progress file (:func:`progress_path`) when that was
        saved by a build of the same key and batch size; any other progress file is computed over.

        Args:
            path: File to read or write (written atomically).
            teacher: The frozen teacher (put in eval mode here).
            data: The encoded training set the cache serves.
            loss_fn: The attribution loss whose teacher maps are stored; None stores logits only.
            batch_size: Examples per teacher pass (grouped by length).
            progress: Show a progress bar.
            examples: Compute only these example indices (those a short run visits,
                :func:`attribkit_distill.data.visited_examples`); None = every example.
            checkpoint_seconds: Save the progress of a computation at most this often (and on Ctrl-C);
                None saves none and ignores any saved progress.
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
                progress_path(path).unlink(missing_ok=True)  # an unfinished build of this very cache: superseded
                if cached.teacher_config is None:  # written before configs were recorded: add it, maps unchanged
                    cached = replace(cached, teacher_config=teacher_config(teacher))
                    cached._write(path)
                return cached
        saves = (
            None
            if checkpoint_seconds is None
            else BuildProgress(progress_path(path), key, batch_size, checkpoint_seconds)
        )
        cache = cls._compute(key, teacher, data, loss_fn, batch_size, progress, examples, saves)
        cache = replace(cache, teacher_config=teacher_config(teacher))
        cache._write(path)
        if saves is not None:
            saves.path.unlink(missing_ok=True)
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

    @classmethod
    def read(cls, path: str | Path) -> TeacherCache:
        """Read a cache file as it is, unchecked (:meth:`open` checks it against a run's data and options).

        Raises:
            InvalidInputError: missing or unreadable file.
        """
        path = Path(path)
        if not path.is_file():
            raise InvalidInputError(f"no teacher cache at {path}")
        return cls._read(path)

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        data: EncodedData | CrossEncodedData,
        loss_fn: AttributionLoss | None,
        examples: Sequence[int] | None = None,
    ) -> TeacherCache:
        """Open a cache without its teacher: everything in its key but the teacher's weights must match.

        The teacher is whichever computed the cache (:attr:`teacher_fingerprint`). KD alone (``loss_fn`` None)
        reads the logits of any cache of this data. A ``loss_fn`` with ``teacher_shuffle`` may read a cache of
        the same, unshuffled maps: they are permuted on reading as a shuffled build would permute them (the
        same permutation; a shuffled build normalises after permuting, so values may differ in the last bit).

        Args:
            path: The cache file.
            data: The encoded training set, with the student's tokenizer (which must be the teacher's).
            loss_fn: The attribution loss whose maps the run needs; None for KD alone.
            examples: The example indices the run visits (None: all); the cache must hold them.

        Raises:
            InvalidInputError: missing or unreadable file, or what :meth:`serving` refuses.
        """
        return cls.read(path).serving(data=data, loss_fn=loss_fn, examples=examples, name=path)

    def serving(
        self,
        *,
        data: EncodedData | CrossEncodedData,
        loss_fn: AttributionLoss | None,
        examples: Sequence[int] | None = None,
        name: str | Path = "the teacher cache",
    ) -> TeacherCache:
        """This cache (as :meth:`read` gave it) checked for a run without its teacher, as :meth:`open` checks it.

        Args:
            data: The encoded training set, with the student's tokenizer (which must be the teacher's).
            loss_fn: The attribution loss whose maps the run needs; None for KD alone.
            examples: The example indices the run visits (None: all); the cache must hold them.
            name: How errors name the cache (its file).

        Raises:
            InvalidInputError: a cache that does not record its teacher's config (written before it was), made
                from other data or options (says what differs), without maps where maps are needed, or
                missing examples the run visits.
        """
        cache, path = self, name
        if cache.teacher_config is None:
            raise InvalidInputError(
                f"the teacher cache {path} does not record its teacher's config (written before it was); "
                "build it once with the teacher (TeacherCache.build, or `attribkit distill --teacher`) to add it"
            )
        if loss_fn is not None and cache.maps is None:
            raise InvalidInputError(f"the teacher cache {path} holds logits only; the attribution term needs maps")
        want = cache_key(str(cache.key.get("teacher")), data, loss_fn)
        shuffle = None
        if loss_fn is None:
            want["options"] = cache.key.get("options")  # KD reads the logits of any cache of this data
        elif (seed := loss_fn.teacher_shuffle) is not None and "teacher_shuffle" not in (
            cache.key.get("options") or {}
        ):
            if isinstance(data, CrossEncodedData):
                raise InvalidInputError("shuffling cached maps on reading needs one tokenizer; build a shuffled cache")
            want["options"] = {k: v for k, v in want["options"].items() if k != "teacher_shuffle"}
            shuffle = seed
        present = {k: v for k, v in cache.key.items() if k != "examples"}
        differs = [name for name in sorted(set(want) | set(present)) if present.get(name) != want.get(name)]
        if differs:
            raise InvalidInputError(
                f"the teacher cache {path} was computed for a different {' and '.join(differs)}; "
                "build one for this data and these options with the teacher"
            )
        if cache.covered is not None:
            needed = range(len(data)) if examples is None else examples
            if not bool(cache.covered[torch.tensor(sorted(set(needed)), dtype=torch.long)].all()):
                raise InvalidInputError(
                    f"the teacher cache {path} holds only the examples of a shorter run; build one for this run"
                )
        return replace(cache, shuffle=shuffle)

    @property
    def teacher_fingerprint(self) -> str:
        """The weight digest of the teacher that computed this cache.

        See :func:`~attribkit_distill.cache_key.model_fingerprint`.
        """
        return str(self.key.get("teacher"))

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
        maps = maps.to(device)
        if self.shuffle is not None:
            maps = shuffle_over_tokens(maps, batch, seed=self.shuffle)
        return TeacherOutputs(logits, maps)

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
        saves: BuildProgress | None = None,
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
        done = 0 if saves is None else saves.restore(order, logits, maps)
        with progress_bar(len(order), "teacher cache", progress, unit="examples") as update:
            update(done)
            try:
                for start in range(done, len(order), batch_size):
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
                    done = min(start + batch_size, len(order))
                    update(done)
                    if saves is not None and done < len(order):
                        saves.maybe_save(order[:done], logits, maps)
            except KeyboardInterrupt:
                if saves is not None and done:
                    saves.save(order[:done], logits, maps)
                raise
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
                comparable(json.loads(blob["key"])),
                blob["logits"],
                blob["lengths"],
                blob.get("maps"),
                blob.get("offsets"),
                int(blob["views"]),
                blob.get("covered"),
                json.loads(blob["teacher_config"]) if "teacher_config" in blob else None,
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
        if self.teacher_config is not None:
            blob["teacher_config"] = json.dumps(self.teacher_config)
        partial = path.with_name(path.name + ".partial")
        torch.save(blob, partial)
        os.replace(partial, path)

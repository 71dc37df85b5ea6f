"""Teacher caches kept in the repository, usable by the same teacher retrained on another CPU.

A study keeps each teacher cache it computes (``bench/results/<study>/caches/``) beside a small JSON naming
the teacher that computed it (its weight digest and the cache key's fingerprint of it). A new session
copies the cache into ``runs/`` before a run needs it:

- computed by the teacher on disk (same digest), or of unknown origin: copied as it is, and the cache's own
  key decides whether the run uses it;
- computed by another digest that the study judges the same teacher (retrained on a CPU that rounds
  differently; :mod:`teacher_identity`): copied with its key's teacher fingerprint set to the teacher on
  disk, and a JSON beside the copy saying which teacher computed it and why it counts as this one. The maps
  of two such teachers differ by a few parts in a million (CoLA, AVX2 vs AVX-512: relative L2 4e-6 for
  single-step and 50-step IG maps), so a run uses the kept maps instead of recomputing them (22 minutes for
  the STS-B dev set at 50 IG steps, hours for a training set);
- computed by another teacher: not copied.

A re-keyed copy is never kept back: the kept file keeps naming the teacher that computed it.

A kept cache also records its teacher's config (``TeacherCache.teacher_config``: architecture, width, labels,
vocabulary; :func:`add_teacher_config` adds it to one kept before caches recorded it). A run can then learn
from the kept caches alone, without retraining the teacher in its session (``attribkit distill
--teacher-cache``).

The progress of an unfinished cache build (``<cache>.pt.progress``: hours of 50-step IG maps over a training
set outlive a session) is kept and restored the same way, so the next session continues the build. A build
continued from a re-keyed progress is kept naming the teacher on disk, and the teachers that computed its
earlier part (``parts_computed_by``).
"""

from __future__ import annotations

import filecmp
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import study_runner


def origin_path(cache: Path) -> Path:
    """The JSON beside a cache that names the teacher that computed it (``maps.pt`` -> ``maps.teacher.json``)."""
    return cache.with_name(cache.stem + ".teacher.json")


def computed_by(kept: Path) -> str | None:
    """The weight digest of the teacher that computed the kept cache ``kept`` (None: no origin JSON)."""
    origin = origin_path(kept)
    return json.loads(origin.read_text()).get("teacher_sha256") if origin.is_file() else None


def records_teacher(cache: Path) -> bool:
    """Whether the cache file records its teacher's config, so a run can use it without the teacher."""
    import torch

    try:
        return "teacher_config" in torch.load(cache, map_location="cpu", weights_only=True)
    except Exception:  # missing, or a torn copy
        return False


def add_teacher_config(cache: Path, config: dict[str, Any]) -> bool:
    """Record the teacher's config in a cache written before caches did; its logits and maps stay as they are.

    Returns:
        True when the file was rewritten (False: no such file, or it records a config already).
    """
    import torch

    if not cache.is_file():
        return False
    blob = torch.load(cache, map_location="cpu", weights_only=True)
    if "teacher_config" in blob:
        return False
    blob["teacher_config"] = json.dumps(config)
    partial = cache.with_name(cache.name + f".{os.getpid()}.partial")
    torch.save(blob, partial)
    os.replace(partial, cache)
    return True


def _key(cache: Path) -> dict[str, Any]:
    import torch

    return dict(json.loads(torch.load(cache, map_location="cpu", weights_only=True)["key"]))


def restore(
    working: Path,
    kept: Path,
    *,
    digest: str,
    same_teacher: Callable[[str], tuple[bool, str]],
    fingerprint: Callable[[], str],
) -> dict[str, str] | None:
    """Copy the kept cache ``kept`` to ``working`` when ``working`` does not exist yet.

    Args:
        working: The cache's place under ``runs/``.
        kept: The cache kept in the repository (with its origin JSON, :func:`origin_path`).
        digest: The weight digest of the teacher on disk.
        same_teacher: Whether the teacher with a given weight digest is the one on disk, and why.
        fingerprint: The cache-key fingerprint of the teacher on disk (``model_fingerprint``).

    Returns:
        For a cache re-keyed from the same teacher retrained on another CPU: ``computed_by`` (that
        teacher's digest) and ``reason``; else None.
    """
    if working.exists() or not kept.is_file():
        return None
    origin = json.loads(origin_path(kept).read_text()) if origin_path(kept).is_file() else {}
    if origin.get("teacher_sha256") in (None, digest):
        study_runner.restore_cache(working, kept)
        return None
    same, reason = same_teacher(origin["teacher_sha256"])
    if not same:
        return None
    import torch

    blob = torch.load(kept, map_location="cpu", weights_only=True)
    key = json.loads(blob["key"])
    if key.get("teacher") != origin.get("fingerprint"):  # not the cache its origin describes
        return None
    blob["key"] = json.dumps({**key, "teacher": fingerprint()})
    provenance = {"computed_by": origin["teacher_sha256"], "reason": reason}
    working.parent.mkdir(parents=True, exist_ok=True)
    origin_path(working).write_text(json.dumps(provenance, indent=1))
    partial = working.with_name(working.name + f".{os.getpid()}.partial")
    torch.save(blob, partial)
    partial.replace(working)
    return provenance


def keep(
    working: Path,
    kept: Path,
    *,
    digest: str,
    fingerprint: Callable[[], str],
    parts_by: Sequence[str] = (),
) -> None:
    """Keep the cache ``working`` computed in this session by the teacher on disk, naming that teacher.

    A cache re-keyed by :func:`restore` (it has an origin JSON beside it) is not kept back, nor one whose key
    names another teacher than the one on disk.

    Args:
        working: The cache (or the progress of its build) under ``runs/``.
        kept: Where it is kept in the repository.
        digest: The weight digest of the teacher on disk.
        fingerprint: The cache-key fingerprint of the teacher on disk.
        parts_by: Digests of the same teacher retrained on other CPUs that computed part of it: a build
            continued from a re-keyed progress (recorded in the origin JSON as ``parts_computed_by``).
    """
    if not working.is_file() or origin_path(working).is_file():
        return
    try:
        teacher = _key(working)["teacher"]
    except Exception:  # a progress file being replaced as it is read: kept at the next call
        return
    if teacher != fingerprint():
        return
    if kept.is_file() and origin_path(kept).is_file() and filecmp.cmp(working, kept, shallow=False):
        return  # kept already, with the origin that describes it
    study_runner.keep_cache(working, kept)
    origin: dict[str, Any] = {"teacher_sha256": digest, "fingerprint": teacher}
    if parts_by:
        origin["parts_computed_by"] = sorted(set(parts_by))
    origin_path(kept).write_text(json.dumps(origin, indent=1))


def discard(kept: Path) -> None:
    """Remove a kept file and its origin JSON (the progress of a build once the cache itself is kept)."""
    kept.unlink(missing_ok=True)
    origin_path(kept).unlink(missing_ok=True)

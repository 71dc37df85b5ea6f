"""The teacher of ``attribkit distill``: a checkpoint it loads, or a saved teacher cache standing in for it.

A cache (:class:`~attribkit_distill.cache.TeacherCache`) holds the teacher's logits and maps of a training
set and records the teacher's config, so KD and AD-KD can run from it on a machine that never loads the
teacher (a teacher too large for it, or one retrained elsewhere). Terms that run the teacher on every step
(interchange intervention) need the checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import attribkit as ak
from attribkit_distill.cache import TeacherCache
from attribkit_distill.cache_key import teacher_config
from attribkit_distill.terms import check_cached_teacher


@dataclass(frozen=True)
class TeacherSource:
    """Where a run's teacher outputs come from.

    Attributes:
        classifier: The loaded teacher, or None when a cache stands in for it.
        cache_file: The cache standing in for the teacher, or None.
        cache: That cache as read (checked against the run's data by :meth:`TeacherCache.open`).
        config: The teacher's :func:`~attribkit_distill.cache_key.teacher_config` (labels, width, vocabulary).
    """

    classifier: ak.Classifier | None
    cache_file: Path | None
    cache: TeacherCache | None
    config: dict[str, Any]


def check_teacher_options(
    teacher: str | None, cache_file: Path | None, *, terms: tuple[str, ...], use_cache: bool
) -> None:
    """Exactly one of ``--teacher`` and ``--teacher-cache``; a cache only for terms that do not run the teacher.

    Raises:
        OptionError: both or neither given, a term that needs the teacher, or ``--no-cache`` with a cache.
    """
    if (teacher is None) == (cache_file is None):
        raise ak.OptionError("give exactly one of --teacher CKPT or --teacher-cache FILE")
    if cache_file is not None:
        check_cached_teacher(terms)
        if not use_cache:
            raise ak.OptionError("--no-cache with --teacher-cache: the cache stands in for the teacher; drop one")


def open_teacher(teacher: str | None, cache_file: Path | None, *, device: str | None) -> TeacherSource:
    """Load the teacher checkpoint, or read the cache standing in for it (after :func:`check_teacher_options`).

    Raises:
        OptionError: a cache that does not record its teacher's config (written before caches did).
        InvalidInputError: a missing or unreadable cache file.
    """
    if cache_file is None:
        assert teacher is not None  # check_teacher_options
        classifier = ak.load_classifier(teacher, device=device)
        return TeacherSource(classifier, None, None, teacher_config(classifier.model))
    cache = TeacherCache.read(cache_file)
    if cache.teacher_config is None:
        raise ak.OptionError(
            f"the teacher cache {cache_file} does not record its teacher's config (written before caches did); "
            "run once with --teacher to add it"
        )
    return TeacherSource(None, cache_file, cache, cache.teacher_config)

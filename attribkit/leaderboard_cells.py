"""The cells of a leaderboard: one method's maps, given maps, or random maps, scored sentence by sentence.

Each function returns a cell: per-sentence ERASER comprehensiveness and sufficiency (AOPC over
1-50 %), plus, for a method, its seconds per sentence and its maps. :mod:`attribkit.leaderboard`
runs them and summarises the cells.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from attribkit.errors import InvalidInputError
from attribkit.evaluation.erasure import faithfulness
from attribkit.facade import explain
from attribkit.model import Classifier, Text
from attribkit.record import Attribution


def score_setting(
    classifier: Classifier,
    texts: Sequence[Text],
    method: str,
    options: Mapping[str, Any],
    *,
    batch_size: int = 16,
    max_length: int | None = None,
) -> dict[str, Any]:
    """Explain ``texts`` with one setting (timed) and score each map's faithfulness.

    Returns:
        A cell: ``summary``, ``options``, ``seconds_per_sentence``, ``threads``, per-sentence
        ``comprehensiveness`` and ``sufficiency`` (AOPC), and the ``maps`` (first view, per token).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a low step count warns about completeness; the scores measure it here
        explain(
            classifier,
            texts[:2],
            method=method,
            batch_size=batch_size,
            max_length=max_length,
            **options,
        )  # warm-up
        start = time.perf_counter()
        records = explain(classifier, texts, method=method, batch_size=batch_size, max_length=max_length, **options)
        seconds = time.perf_counter() - start
    cell = score_records(classifier, records, max_length=max_length)
    cell.update(
        summary=records[0].method_summary(),
        options=dict(records[0].options),
        seconds_per_sentence=seconds / len(texts),
        threads=torch.get_num_threads(),
        maps=[[float(v) for v in r.scores[0]] for r in records],
    )
    if any(r.steps_taken is not None for r in records):
        cell["steps_taken"] = [r.steps_taken for r in records]
    return cell


def score_records(classifier: Classifier, records: Sequence[Attribution], *, max_length: int | None) -> dict[str, Any]:
    """Per-sentence AOPC comprehensiveness and sufficiency of ``records``."""
    scores = faithfulness(classifier, records, max_length=max_length)
    return {
        "comprehensiveness": [s.aopc_comprehensiveness for s in scores],
        "sufficiency": [s.aopc_sufficiency for s in scores],
    }


def skeleton_records(
    classifier: Classifier, texts: Sequence[Text], *, batch_size: int = 16, max_length: int | None = None
) -> list[Attribution]:
    """Records of the predicted class whose scores the baselines replace (tokens, offsets, view)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return explain(classifier, texts, method="gradient_x_input", batch_size=batch_size, max_length=max_length)


def score_maps(
    classifier: Classifier, skeleton: Sequence[Attribution], maps: Sequence[np.ndarray], *, max_length: int | None
) -> dict[str, Any]:
    """Faithfulness of given per-token maps (one per sentence) on the skeleton records' tokens."""
    records = []
    for record, scores in zip(skeleton, maps):
        if len(scores) != len(record.tokens):
            raise InvalidInputError("a map does not fit its sentence's tokens; was the run made with another model?")
        records.append(dataclasses.replace(record, scores=np.asarray(scores, dtype=np.float32)[None, :]))
    return score_records(classifier, records, max_length=max_length)


def score_random(
    classifier: Classifier, skeleton: Sequence[Attribution], *, draws: int, seed: int, max_length: int | None
) -> dict[str, Any]:
    """Faithfulness of uniformly random maps: ``draws`` per sentence, averaged per sentence."""
    rng = np.random.default_rng(seed)
    comp = np.zeros(len(skeleton))
    suff = np.zeros(len(skeleton))
    for _ in range(draws):
        maps = [rng.random(len(r.tokens)) for r in skeleton]
        scores = score_maps(classifier, skeleton, maps, max_length=max_length)
        comp += np.asarray(scores["comprehensiveness"]) / draws
        suff += np.asarray(scores["sufficiency"]) / draws
    return {
        "summary": f"uniformly random maps, {draws} per sentence (seed {seed}), scores averaged per sentence",
        "comprehensiveness": comp.tolist(),
        "sufficiency": suff.tolist(),
    }

"""Soft faithfulness: erase parts of token vectors in proportion to their importance (Zhao & Aletras, ACL 2023).

Hard comprehensiveness and sufficiency (:mod:`attribkit.evaluation.erasure`) delete whole tokens and treat every
token of a rationale alike. The soft criterion keeps each element of a real token's word-embedding
vector with probability ``q`` (sufficiency) or ``1 - q`` (comprehensiveness), where ``q`` is the
token's score min-max normalised over the real tokens of the text (a flat map gives 0.5 everywhere),
and zeroes the rest; special tokens are never touched. With ``p`` the probability of the explained
class (the raw output for a regression head) on the full input, ``p'`` on a perturbed one and
``p0`` with every real token's vector zeroed:

- ``S(x, x') = 1 - max(0, p - p')`` and ``S0 = S(x, x0)``
- Soft-NC = mean over draws of ``max(0, p - p'_c)``, divided by ``1 - S0``   (higher = more faithful)
- Soft-NS = (mean over draws of ``S(x, x'_s)`` - S0) / (1 - S0)             (higher = more faithful)

When zeroing every real token does not lower ``p`` (``1 - S0 = 0``) both are 0, as in the reference code.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from attribkit.errors import InvalidInputError, OptionError
from attribkit.evaluation.erasure import check_same_length, unit_positions
from attribkit.model import Classifier
from attribkit.record import Attribution


@dataclass(frozen=True)
class SoftFaithfulnessScores:
    """Soft faithfulness of one record.

    Attributes:
        view: The class whose probability is tracked.
        probability: p(view | full input).
        null_probability: p(view | every real token's vector zeroed), the normaliser's reference.
        soft_comprehensiveness: Soft-NC (higher = more faithful).
        soft_sufficiency: Soft-NS (higher = more faithful).
        n_samples: Bernoulli draws averaged.
    """

    view: str
    probability: float
    null_probability: float
    soft_comprehensiveness: float
    soft_sufficiency: float
    n_samples: int

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return dataclasses.asdict(self)


def retention(record: Attribution, units: list[list[int]], length: int) -> tuple[Tensor, Tensor]:
    """``q`` per position (the unit's min-max normalised score) and the mask of real, scored positions.

    Shapes:
        both ``[length]``; ``q`` float64 in [0, 1], 1 where nothing is perturbed.
    """
    scores = record.scores[0]
    scored = [u for u, positions in enumerate(units) if positions]
    if not scored:
        raise InvalidInputError(f"record has no scored tokens to perturb: {record.text[:40]!r}")
    values = torch.tensor([float(scores[u]) for u in scored], dtype=torch.float64)
    low, high = values.min(), values.max()
    normalised = torch.full_like(values, 0.5) if float(high - low) < 1e-12 else (values - low) / (high - low)
    q = torch.ones(length, dtype=torch.float64)
    real = torch.zeros(length, dtype=torch.bool)
    for u, value in zip(scored, normalised):
        q[units[u]] = value
        real[units[u]] = True
    return q, real


def soft_faithfulness(
    classifier: Classifier,
    records: Sequence[Attribution],
    *,
    n_samples: int = 10,
    seed: int = 0,
    batch_size: int = 32,
    max_length: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[SoftFaithfulnessScores]:
    """Soft-NC and Soft-NS of each record under ``classifier``.

    Args:
        classifier: The model the records explain.
        records: From :func:`attribkit.explain` (any method; word-level records work too).
        n_samples: Bernoulli draws per record and criterion, averaged.
        seed: Seed of the draws; each record is drawn from its own generator seeded with it.
        batch_size: Perturbed inputs per forward pass.
        max_length: Truncate the inputs as they were when explained (default: the model's limit).
        progress: Called with the number of records finished.

    Returns:
        One :class:`SoftFaithfulnessScores` per record, in order.
    """
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
        raise OptionError(f"n_samples must be a positive integer; got {n_samples!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise OptionError(f"batch_size must be a positive integer; got {batch_size!r}")
    results = []
    for number, record in enumerate(records, start=1):
        results.append(_one(classifier, record, number, n_samples, seed, batch_size, max_length))
        if progress is not None:
            progress(number)
    return results


@torch.no_grad()
def _one(
    clf: Classifier,
    record: Attribution,
    number: int,
    n_samples: int,
    seed: int,
    batch_size: int,
    max_length: int | None,
) -> SoftFaithfulnessScores:
    item = clf.tokenize(record.text if record.pair is None else (record.text, record.pair), max_length=max_length)
    units = unit_positions(record, item)
    check_same_length(record, item, units, number)
    q, real = retention(record, units, len(item.input_ids))
    batch = clf.collate([item])
    x = clf.layer_output(batch, "word_embeddings").detach()  # [1, seq, hidden]
    generator = torch.Generator().manual_seed(seed)
    shape = (n_samples, x.shape[1], x.shape[2])
    keep_suff = torch.bernoulli(q.view(1, -1, 1).expand(shape), generator=generator)
    keep_comp = torch.bernoulli(torch.where(real, 1.0 - q, q).view(1, -1, 1).expand(shape), generator=generator)
    null = (~real).to(torch.float64).view(1, -1, 1).expand(1, *shape[1:])
    masks = torch.cat([torch.ones_like(null), null, keep_comp, keep_suff]).to(device=x.device, dtype=x.dtype)
    target = 0 if clf.is_regression else clf.label_index(record.views[0])
    probs = []
    for start in range(0, masks.shape[0], batch_size):
        chunk = masks[start : start + batch_size]
        rows = {k: v.expand(chunk.shape[0], -1) for k, v in batch.items()}
        logits = clf.forward_with_layer(rows, "word_embeddings", lambda _out, m=chunk: x * m).to(torch.float64)
        scores = logits if clf.is_regression else torch.softmax(logits, dim=-1)
        probs.append(scores[:, target])
    p_all = torch.cat(probs)
    p, p0 = float(p_all[0]), float(p_all[1])
    p_comp, p_suff = p_all[2 : 2 + n_samples], p_all[2 + n_samples :]
    s0 = 1.0 - max(0.0, p - p0)
    soft_c = float(torch.clamp(p - p_comp, min=0).mean())
    soft_s = float((1.0 - torch.clamp(p - p_suff, min=0)).mean())
    scale = 1.0 - s0
    nc, ns = (soft_c / scale, (soft_s - s0) / scale) if scale > 1e-12 else (0.0, 0.0)
    return SoftFaithfulnessScores(record.views[0], p, p0, nc, ns, n_samples)

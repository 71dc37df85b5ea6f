"""Score a classifier on a GLUE split, and a student's attribution gap to its teacher."""

from __future__ import annotations

import torch
from torch import nn

from attribkit import InvalidInputError
from attribkit_distill.cache import TeacherCache
from attribkit_distill.cross_data import CrossEncodedData
from attribkit_distill.cross_tokenizer import CrossTokenizerAttributionLoss
from attribkit_distill.data import EncodedData
from attribkit_distill.glue_metrics import task_metrics
from attribkit_distill.loss import AttributionLoss
from attribkit_distill.maps import model_inputs
from attribkit_distill.tasks import GlueTask


@torch.no_grad()
def predict(model: nn.Module, data: EncodedData, *, batch_size: int = 64) -> torch.Tensor:
    """Logits for every example, in data order (batches grouped by length). Shapes: ``[examples, labels]``."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    lengths = torch.tensor([len(r) for r in data.input_ids])
    order = torch.argsort(lengths, descending=True, stable=True).tolist()
    out: torch.Tensor | None = None
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        logits = model(**model_inputs(data.batch(chunk, device))).logits.float().cpu()
        if out is None:
            out = torch.empty(len(data), logits.shape[1])
        out[chunk] = logits
    model.train(was_training)
    if out is None:
        raise InvalidInputError("no examples to predict")
    return out


def evaluate(
    model: nn.Module, task: GlueTask, splits: dict[str, EncodedData], *, batch_size: int = 64
) -> dict[str, float]:
    """Metrics per split (``dev/accuracy``, ``dev_matched/accuracy`` ...) and ``score``: the mean main metric."""
    results: dict[str, float] = {}
    mains = []
    for name, data in splits.items():
        logits = predict(model, data, batch_size=batch_size)
        predictions = logits[:, 0].tolist() if task.is_regression else logits.argmax(dim=1).tolist()
        metrics = task_metrics(task, predictions, list(data.labels))
        results.update({f"{name}/{k}": round(v, 4) for k, v in metrics.items()})
        mains.append(metrics[task.main])
    results["score"] = round(sum(mains) / len(mains), 4)
    return results


def attribution_gap(
    student: nn.Module,
    teacher: nn.Module | TeacherCache,
    data: EncodedData | CrossEncodedData,
    *,
    loss_fn: AttributionLoss | None = None,
    batch_size: int = 64,
) -> float:
    """How far the student's maps are from the teacher's on ``data`` (lower = it explains more like the teacher).

    The AD-KD attribution loss of each batch (views summed, divided by the batch's tokens or units),
    averaged over batches weighted by their examples — the measure the studies report.

    Args:
        student: The student classifier (put in eval mode here).
        teacher: The teacher classifier, or a cache of its maps on ``data`` (built with ``loss_fn``'s options:
            the gap is then measured without the teacher).
        data: Encoded examples; for two tokenizers, :class:`CrossEncodedData` (maps compared on units).
        loss_fn: The loss that defines the maps; default ``AttributionLoss()`` (all dims), or its
            cross-tokenizer form for :class:`CrossEncodedData`.
        batch_size: Examples per pass.
    """
    if loss_fn is None:
        loss_fn = CrossTokenizerAttributionLoss() if isinstance(data, CrossEncodedData) else AttributionLoss()
    student.eval()
    if isinstance(teacher, TeacherCache):
        if teacher.maps is None:
            raise InvalidInputError("the teacher cache holds logits only; the attribution gap needs its maps")
        if teacher.key.get("options") != loss_fn.map_options():
            raise InvalidInputError("the teacher cache holds maps of other options than loss_fn's")
    else:
        teacher.eval()
    device = next(student.parameters()).device
    total = 0.0
    for start in range(0, len(data), batch_size):
        batch = data.batch(list(range(start, min(start + batch_size, len(data)))), device)
        source = teacher.outputs(batch).maps if isinstance(teacher, TeacherCache) else teacher
        assert source is not None  # a cache with maps (checked above)
        total += float(loss_fn.compute(student, source, batch).loss.detach()) * batch["input_ids"].shape[0]
    return total / len(data)

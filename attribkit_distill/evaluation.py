"""Score a classifier on a GLUE split."""

from __future__ import annotations

import torch
from torch import nn

from attribkit import InvalidInputError
from attribkit_distill.data import EncodedData
from attribkit_distill.glue_metrics import task_metrics
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

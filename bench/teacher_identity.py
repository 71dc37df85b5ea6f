"""Is a retrained study teacher the teacher a study's students learnt from?

A study's teacher is retrained in every session (``runs/`` does not outlive one). On one machine the same
recipe and seed give the same weights bit for bit; on a CPU with other vector kernels they do not: ATen's
AVX2 and AVX-512 kernels and MKL's code paths round differently (measured on CoLA, 804 steps: weights
within 2.1e-5, dev logits within 9.1e-6, every dev prediction and the dev MCC equal). A weight digest alone
would therefore end a study the first time a session lands on another CPU, while the teacher is the same
function to five decimals.

So a teacher is recorded with its *fingerprint*: its dev-set outputs (logits, or the score of a regression
head) computed at one thread. A retrained teacher is the same teacher when its weight digest is the
recorded one, or when its dev outputs are within :data:`LOGIT_TOLERANCE` of the recorded ones (and, for
classes, every dev prediction is the same). Teachers recorded before fingerprints existed (12-05, the
first two v3 teachers) are compared by their recorded dev metric (within :data:`METRIC_TOLERANCE` points):
a different seed moves it by points, a different CPU by at most 1e-4.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

LOGIT_TOLERANCE = 1e-3  # 100 x the largest difference one seed gave on two kernel sets; a logit is ~1
METRIC_TOLERANCE = 0.01  # points of the dev metric x 100, for records without dev outputs


def dev_outputs(model_dir: Path, task_directory: str, data_dir: Path) -> list[list[float]]:
    """The model's dev-set outputs ``[examples, labels]`` (one thread, eval mode), rounded to 1e-7."""
    import torch

    import attribkit as ak
    from attribkit_distill.data import encode_examples
    from attribkit_distill.tasks import get_task, load_examples, split_names

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        clf = ak.load_classifier(model_dir, device="cpu")
        spec = get_task(task_directory)
        dev = encode_examples(
            clf.tokenizer, load_examples(spec, split_names(spec, "dev")[0], data_dir=data_dir), max_length=128
        )
        model = clf.model.eval()
        rows: list[list[float]] = []
        with torch.no_grad():
            for start in range(0, len(dev), 64):
                batch = dev.batch(list(range(start, min(start + 64, len(dev)))))
                inputs = {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
                rows.extend([round(float(x), 7) for x in row] for row in model(**inputs).logits)
        return rows
    finally:
        torch.set_num_threads(threads)


def compare(recorded: dict[str, Any], retrained: dict[str, Any]) -> tuple[bool, str]:
    """Whether two teacher records (digest, final dev metric, optional dev outputs) are one teacher, and why.

    Args:
        recorded: A record with ``weights_sha256``, ``final`` and, since fingerprints exist, ``dev_outputs``.
        retrained: The same for the teacher on disk.

    Returns:
        ``(same, reason)``; the reason names the measured difference.
    """
    if recorded["weights_sha256"] == retrained["weights_sha256"]:
        return True, "the same weights bit for bit"
    a, b = recorded.get("dev_outputs"), retrained.get("dev_outputs")
    if a is not None and b is not None:
        if len(a) != len(b) or any(len(x) != len(y) for x, y in zip(a, b, strict=True)):
            return False, "dev outputs of another shape"
        gap = max(abs(x - y) for row_a, row_b in zip(a, b, strict=True) for x, y in zip(row_a, row_b, strict=True))
        if len(a[0]) > 1:
            flipped = sum(
                max(range(len(x)), key=x.__getitem__) != max(range(len(y)), key=y.__getitem__)
                for x, y in zip(a, b, strict=True)
            )
            if flipped:
                return False, f"{flipped} dev predictions differ (max |dev logit difference| {gap:.1e})"
        if gap <= LOGIT_TOLERANCE:
            return True, f"max |dev output difference| {gap:.1e} <= {LOGIT_TOLERANCE:g}"
        return False, f"max |dev output difference| {gap:.1e} > {LOGIT_TOLERANCE:g}"
    gap = abs(float(recorded["final"]) - float(retrained["final"]))
    if gap <= METRIC_TOLERANCE:
        return True, f"recorded without dev outputs; dev metric within {gap:.4f} <= {METRIC_TOLERANCE:g} points"
    return False, f"recorded without dev outputs; dev metric differs by {gap:.4f} > {METRIC_TOLERANCE:g} points"


def record_path(teacher_folder: Path, digest: str) -> Path:
    """Where a retrained teacher with weight digest ``digest`` is recorded (``accepted-<12 hex>.json``)."""
    return teacher_folder / f"accepted-{digest[:12]}.json"


def load_record(teacher_folder: Path, digest: str) -> dict[str, Any] | None:
    """The record of the teacher with weight digest ``digest``: an accepted retrain, or the study's own."""
    accepted = record_path(teacher_folder, digest)
    if accepted.is_file():
        return dict(json.loads(accepted.read_text()))
    for path in sorted(teacher_folder.glob("seed*.json")):
        record = json.loads(path.read_text())
        if record.get("weights_sha256") == digest:
            return dict(record)
    return None

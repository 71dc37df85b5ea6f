"""Per-task hyperparameters of the AD-KD paper (from the scripts of its reference code).

Wu et al., ACL 2023; github.com/brucewsy/AD-KD, ``script/student/*.sh``. ``top_k`` there counts
dims of a 768-wide BERT-base; :func:`scaled_top_k` keeps the same fraction for other widths.
"""

from __future__ import annotations

from dataclasses import dataclass

PAPER_HIDDEN = 768


@dataclass(frozen=True)
class DistillPreset:
    """The paper's student settings for one task."""

    batch_size: int
    epochs: float
    learning_rate: float
    alpha: float
    temperature: float
    beta: float
    top_k: int | None  # None = all dims
    anneal: bool


DISTILL_PRESETS: dict[str, DistillPreset] = {
    "cola": DistillPreset(32, 10, 4e-5, 0.9, 1.0, 1.0, None, False),
    "sst2": DistillPreset(32, 6, 5e-5, 0.8, 2.0, 1.0, None, False),
    "mrpc": DistillPreset(16, 10, 3e-5, 0.9, 4.0, 10.0, None, True),
    "qqp": DistillPreset(32, 8, 4e-5, 1.0, 4.0, 50.0, 734, True),
    "stsb": DistillPreset(16, 8, 5e-5, 0.8, 3.0, 1.0, 640, False),
    "mnli": DistillPreset(64, 6, 4e-5, 0.8, 3.0, 10.0, None, True),
    "qnli": DistillPreset(32, 6, 4e-5, 0.9, 3.0, 100.0, None, False),
    "rte": DistillPreset(16, 12, 2e-5, 0.9, 2.0, 10.0, 700, False),
}

# teacher fine-tuning: the reference script's SST-2 setting (batch 32, lr 2e-5, 5 epochs); 3 epochs elsewhere
FINETUNE_DEFAULTS = {"batch_size": 32, "learning_rate": 2e-5, "epochs": 3.0}


def scaled_top_k(top_k: int | None, hidden: int) -> int | None:
    """The paper's K (of 768 dims) as the same fraction of ``hidden`` dims; None stays None."""
    if top_k is None:
        return None
    return max(1, min(hidden, round(top_k * hidden / PAPER_HIDDEN)))

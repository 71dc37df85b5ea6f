"""Training checkpoints that survive SIGKILL: written to a temporary folder, then swapped in.

A checkpoint holds the model weights, optimizer and scheduler state, the torch RNG states and a
JSON training state, so a resumed run continues exactly where the checkpoint was taken.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

from attribkit import InvalidInputError, save_model_files

CHECKPOINT = "checkpoint"


def save_checkpoint(
    out_dir: Path, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, state: dict[str, Any]
) -> None:
    """Write ``out_dir/checkpoint`` atomically (a kill at any moment leaves the previous one usable)."""
    final = out_dir / CHECKPOINT
    partial = out_dir / (CHECKPOINT + ".partial")
    old = out_dir / (CHECKPOINT + ".old")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    save_model_files(model, partial)
    rng: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    torch.save(
        {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng}, partial / "training.pt"
    )
    (partial / "state.json").write_text(json.dumps(state, indent=1))
    _fsync_dir(partial)
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    os.replace(partial, final)
    shutil.rmtree(old, ignore_errors=True)


def find_checkpoint(out_dir: Path) -> Path | None:
    """The newest complete checkpoint (``checkpoint``, or ``checkpoint.old`` if a swap was cut short)."""
    for name in (CHECKPOINT, CHECKPOINT + ".old"):
        path = out_dir / name
        if (path / "state.json").is_file() and (path / "training.pt").is_file():
            return path
    return None


def load_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any) -> dict[str, Any]:
    """Restore weights, optimizer, scheduler and RNG from ``path``; returns the training state."""
    from safetensors.torch import load_file

    weights = load_file(str(path / "model.safetensors"), device=str(next(model.parameters()).device))
    _load_weights_exactly(model, weights, path)
    blob = torch.load(path / "training.pt", map_location="cpu", weights_only=True)
    optimizer.load_state_dict(blob["optimizer"])
    scheduler.load_state_dict(blob["scheduler"])
    torch.set_rng_state(blob["rng"]["cpu"])
    if "cuda" in blob["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(blob["rng"]["cuda"])
    return json.loads((path / "state.json").read_text())


def _load_weights_exactly(model: nn.Module, weights: dict[str, torch.Tensor], path: Path) -> None:
    """Load every weight of a checkpoint into ``model``, refusing a checkpoint that does not fit it.

    ``save_pretrained`` stores a tied parameter once, so a key missing from the file is fine when it is
    the same tensor as one that was loaded; any other missing key, an unexpected key or another shape
    means the checkpoint belongs to another model, and resuming from it would train a different run.

    Raises:
        InvalidInputError: the checkpoint does not fit (names what differs).
    """
    try:
        result = model.load_state_dict(weights, strict=False)
    except RuntimeError as exc:  # shapes differ
        first = str(exc).strip().splitlines()[-1].strip()
        raise InvalidInputError(
            f"the checkpoint in {path} does not fit this model ({first}); start without --resume"
        ) from None
    state = model.state_dict()
    loaded = {state[name].data_ptr() for name in weights if name in state}
    missing = [name for name in result.missing_keys if state[name].data_ptr() not in loaded]
    if missing or result.unexpected_keys:
        what = [
            f"missing {missing[0]}" if missing else "",
            f"unexpected {result.unexpected_keys[0]}" if result.unexpected_keys else "",
        ]
        count = len(missing) + len(result.unexpected_keys)
        raise InvalidInputError(
            f"the checkpoint in {path} does not fit this model ({', '.join(w for w in what if w)}; {count} key(s) differ); "
            "start without --resume"
        )


def save_model_atomically(model: nn.Module, out_dir: Path) -> None:
    """Save the model's files into ``out_dir``, each replaced atomically."""
    partial = out_dir / ".model.partial"
    shutil.rmtree(partial, ignore_errors=True)
    save_model_files(model, partial)  # quietly, and readable like the other files (not 0600)
    for item in partial.iterdir():
        os.replace(item, out_dir / item.name)
    partial.rmdir()


def _fsync_dir(path: Path) -> None:
    for item in path.iterdir():
        with open(item, "rb") as f:
            os.fsync(f.fileno())

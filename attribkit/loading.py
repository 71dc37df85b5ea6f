"""Loading checkpoints: hub names or local directories, with clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from attribkit.errors import ModelLoadError, OptionError, first_line
from attribkit.model import Classifier
from attribkit.quiet import quiet_transformers

_TOKENIZER_FILES = (
    "tokenizer.json",
    "vocab.txt",
    "vocab.json",
    "spm.model",
    "tokenizer.model",
    "sentencepiece.bpe.model",
)


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` -> CUDA when available, else CPU; anything else as given."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        target = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise OptionError(f"unknown device {device!r}; use 'cpu', 'cuda' or 'cuda:N'") from exc
    if target.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (target.index is not None and target.index >= count):
            available = ", ".join(["cpu"] + [f"cuda:{i}" for i in range(count)])
            raise OptionError(f"device {device!r} is not available on this machine; available: {available}")
    return target


def load_classifier(
    path_or_name: str | Path,
    *,
    device: str | torch.device | None = None,
    num_labels: int | None = None,
    dtype: torch.dtype | None = None,
) -> Classifier:
    """Load a sequence-classification checkpoint and its tokenizer.

    Args:
        path_or_name: Local directory or Hugging Face hub name.
        device: ``"cpu"``, ``"cuda"``, ... ; None picks CUDA when available.
        num_labels: Attach a fresh, randomly initialised head with this many outputs to a
            checkpoint that has none (e.g. a plain encoder). Leave None for classifiers.
        dtype: Load the weights in this dtype (default: as stored, except that half-precision
            weights are upcast to float32 on CPU, where half-precision maths is slow and imprecise).

    Returns:
        The model in eval mode, on ``device``, with its tokenizer.

    Raises:
        ModelLoadError: not found, not a sequence classifier, or no tokenizer.
    """
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    name = str(path_or_name)
    target = resolve_device(device)
    looks_like_path = name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name
    # "runs/techer2" where ./runs exists is a mistyped local path, not a hub name
    parent = Path(name).expanduser().parent
    if not Path(name).expanduser().exists() and (looks_like_path or (name.count("/") == 1 and parent.is_dir())):
        raise ModelLoadError(f"no such checkpoint directory: {name}{_siblings(parent, Path(name).name)}")
    if not Path(name).expanduser().exists():
        _check_hub_reachable(name)
    if Path(name).expanduser().exists():
        name = str(Path(name).expanduser())
        if not (Path(name) / "config.json").is_file():
            raise ModelLoadError(f"{name} has no config.json: it is not a Hugging Face checkpoint directory")
    try:
        config = AutoConfig.from_pretrained(name)
    except Exception as exc:  # transformers raises OSError/ValueError variants
        raise ModelLoadError(f"cannot load a model config from {name!r}: {first_line(exc)}") from exc
    architectures = list(getattr(config, "architectures", None) or [])
    is_classifier = any(a.endswith("ForSequenceClassification") for a in architectures)
    if not is_classifier and num_labels is None:
        raise ModelLoadError(
            f"{name} is not a sequence-classification checkpoint (architectures: "
            f"{', '.join(architectures) or 'none'}); fine-tune it first (attribkit finetune), or attach a fresh "
            "random head (num_labels=N in Python, --num-labels N with attribkit explain)"
        )
    kwargs: dict[str, Any] = {}
    if num_labels is not None and not is_classifier:
        kwargs["num_labels"] = num_labels
    if dtype is not None:
        kwargs["dtype"] = dtype
    try:
        with quiet_transformers():
            model = AutoModelForSequenceClassification.from_pretrained(name, **kwargs)
    except Exception as exc:
        raise ModelLoadError(f"cannot load {name!r} as a sequence classifier: {first_line(exc)}") from exc
    if Path(name).is_dir() and not any((Path(name) / f).is_file() for f in _TOKENIZER_FILES):
        raise ModelLoadError(
            f"{name} has no tokenizer files ({', '.join(_TOKENIZER_FILES)}); save the tokenizer next to the model"
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(name)
    except Exception as exc:
        raise ModelLoadError(f"{name!r} has no usable tokenizer: {first_line(exc)}") from exc
    if tokenizer is not None and len(tokenizer) <= len(getattr(tokenizer, "all_special_ids", [])):
        # transformers >= 5 builds an empty tokenizer instead of failing when files are missing
        raise ModelLoadError(f"{name!r} has an empty tokenizer vocabulary; save the tokenizer next to the model")
    if tokenizer is None or not getattr(tokenizer, "is_fast", False):
        raise ModelLoadError(f"{name!r} needs a fast tokenizer (tokenizer.json) for character offsets")
    rows = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > rows:
        raise ModelLoadError(
            f"{name!r}: the tokenizer has {len(tokenizer)} tokens but the model embeds only {rows}; "
            "ids past that would fail mid-run. Save the model's own tokenizer next to it"
        )
    if dtype is None and target.type == "cpu" and next(model.parameters()).dtype in (torch.float16, torch.bfloat16):
        model = model.float()
    model.eval().to(target)
    return Classifier(model, tokenizer)


def _siblings(parent: Path, name: str) -> str:
    """`` (did you mean ...?)`` with the closest checkpoint folders next to a mistyped one."""
    import difflib

    try:
        folders = [p.name for p in parent.iterdir() if (p / "config.json").is_file()]
    except OSError:
        return ""
    close = difflib.get_close_matches(name, folders, n=3, cutoff=0.5)
    return f" (did you mean {' or '.join(str(parent / c) for c in close)}?)" if close else ""


def _check_hub_reachable(name: str) -> None:
    """Fail at once, not after ~26 s of retries, when a hub name cannot be fetched.

    Offline mode (``HF_HUB_OFFLINE``) may still find the name in the local cache, so it is left
    to transformers; otherwise a name that is not in the cache needs the hub, probed once.
    """
    from attribkit.hub import hub_host, hub_reachable, offline_requested

    if offline_requested() or _in_hub_cache(name) or hub_reachable():
        return
    raise ModelLoadError(
        f"{name!r} is not a local directory, and the Hugging Face Hub ({hub_host()}) cannot be "
        "reached to download it; check the path, or the network"
    )


def _in_hub_cache(name: str) -> bool:
    """True when a hub model is already in the local Hugging Face cache."""
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(name, "config.json"), str)
    except Exception:  # an invalid repo id, an old huggingface_hub: not cached
        return False

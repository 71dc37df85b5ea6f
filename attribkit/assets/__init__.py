"""Packaged assets: the small default sentiment classifier that makes ``attribkit explain`` work offline."""

from __future__ import annotations

from pathlib import Path

from attribkit.errors import ModelLoadError

#: Folder of the default model (a normal Hugging Face checkpoint directory with a model card).
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "default-sst2"


def default_model_path() -> Path:
    """Path of the packaged default model: an English sentiment classifier (SST-2, negative/positive).

    See ``attribkit/assets/default-sst2/README.md`` for how it was made and how well it does.

    Raises:
        ModelLoadError: the package was installed without its assets.
    """
    if not (DEFAULT_MODEL_DIR / "config.json").is_file():
        raise ModelLoadError(
            f"the default model is missing from {DEFAULT_MODEL_DIR}; reinstall attribkit or pass --model"
        )
    return DEFAULT_MODEL_DIR

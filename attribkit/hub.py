"""Is the Hugging Face Hub reachable? One quick probe, so that offline runs fail (or fall back) at once.

Without it, a name that is neither a local path nor cached costs ~25 s of retries before its error.
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

from attribkit.errors import InvalidInputError, first_line


def hub_host() -> str:
    """The hub's host name (``HF_ENDPOINT`` or huggingface.co)."""
    return urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"


def offline_requested() -> bool:
    """True when the user asked for offline mode (``HF_HUB_OFFLINE`` or ``HF_DATASETS_OFFLINE``)."""
    return any(
        os.environ.get(v, "").lower() in ("1", "true", "yes", "on") for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    )


@functools.lru_cache(maxsize=1)
def hub_reachable(timeout: float = 3.0) -> bool:
    """One TCP connection attempt to the hub (cached for the process)."""
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        socket.create_connection((endpoint.hostname or "huggingface.co", endpoint.port or 443), timeout=timeout).close()
    except OSError:
        return False
    return True


@contextlib.contextmanager
def offline_datasets() -> Iterator[None]:
    """``datasets`` in offline mode for the block: cached datasets load, others fail at once."""
    patched = []
    for module_name, attribute in (
        ("datasets.config", "HF_HUB_OFFLINE"),
        ("huggingface_hub.constants", "HF_HUB_OFFLINE"),
        ("datasets.config", "HF_DATASETS_OFFLINE"),
    ):
        try:
            module = __import__(module_name, fromlist=[attribute])
        except ImportError:
            continue
        if hasattr(module, attribute):
            patched.append((module, attribute, getattr(module, attribute)))
            setattr(module, attribute, True)
    try:
        yield
    finally:
        for module, attribute, value in patched:
            setattr(module, attribute, value)


def load_dataset_split(name: str, config: str | None = None, *, split: str, hint: str = "") -> Any:
    """``datasets.load_dataset(name, config, split=split)`` that fails in seconds, in one line, when offline.

    A local folder, offline mode, or a reachable hub load as usual; when the hub cannot be reached
    (one quick probe) only the local cache is tried, instead of ~30 s of retries before the error.

    Args:
        name: A hub dataset name or a local folder.
        config: The dataset's configuration (``sst2`` of ``nyu-mll/glue``), or None.
        split: The split to read.
        hint: What to do instead, appended to the error (e.g. ``pass --data-dir with a local copy``).

    Returns:
        The ``datasets.Dataset`` of that split.

    Raises:
        InvalidInputError: it cannot be loaded (not local, not cached and the hub unreachable, or
            any error of ``datasets``), with one line that says why.
    """
    from pathlib import Path

    from datasets import load_dataset

    what = f"dataset {name + (':' + config if config else '')!r} split {split!r}"
    tail = f"; {hint}" if hint else ""
    try:
        if Path(name).exists() or offline_requested() or hub_reachable():
            return load_dataset(name, config or None, split=split)
        try:  # only the local cache can have it: look there at once instead of retrying the network
            with offline_datasets():
                return load_dataset(name, config or None, split=split)
        except Exception:
            raise InvalidInputError(
                f"cannot load {what}: it is not a local folder, not in the local cache, and the Hugging Face Hub "
                f"({hub_host()}) cannot be reached{tail}"
            ) from None
    except InvalidInputError:
        raise
    except Exception as exc:  # datasets raises many types (FileNotFoundError, ValueError, DatasetNotFoundError ...)
        first = first_line(exc)
        raise InvalidInputError(f"cannot load {what}: {first}{tail}") from None

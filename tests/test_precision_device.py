"""Reduced precision for inference-only methods, and devices that do not exist."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

import attribkit as ak

TEXTS = ["the movie was really good", "an awful boring plot", "i like it very much and so do you"]


def test_occlusion_in_bfloat16_is_close_to_float32_and_says_so(tiny):
    clf = tiny("bert", 2, dtype=torch.float32)
    full = ak.explain(clf, TEXTS, method="occlusion")
    half = ak.explain(clf, TEXTS, method="occlusion", dtype="bfloat16")
    for a, b in zip(full, half):
        assert b.options["dtype"] == "bfloat16" and "dtype" not in a.options
        assert a.prediction == b.prediction
        # scores are differences of logits of size ~1, which bfloat16 (8 mantissa bits) holds to ~0.004 each
        np.testing.assert_allclose(b.scores, a.scores, atol=0.03)
        np.testing.assert_allclose(b.probs, a.probs, atol=0.01)
        assert not np.array_equal(b.scores, a.scores)  # it really ran in reduced precision


@pytest.mark.parametrize("method", ["fast_ig", "integrated_gradients", "gradient_x_input"])
def test_gradient_methods_refuse_reduced_precision(tiny, method):
    with pytest.raises(ak.OptionError, match="inference-only methods \\(.*occlusion"):
        ak.explain(tiny("bert", 2), "good", method=method, dtype="float16")


def test_unknown_dtype(tiny):
    with pytest.raises(ak.OptionError, match="unknown dtype 'int8'"):
        ak.explain(tiny("bert", 2), "good", method="occlusion", dtype="int8")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:3"])
def test_missing_cuda_device_is_one_line_naming_what_exists(checkpoint_dir, device):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "attribkit",
            "explain",
            "--model",
            str(checkpoint_dir("bert", 2)),
            "--text",
            "good",
            "--device",
            device,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: device {device!r} is not available on this machine; available: cpu"


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_occlusion_in_reduced_precision_on_cuda(checkpoint_dir, dtype):
    clf = ak.load_classifier(checkpoint_dir("bert", 2), device="cuda")
    full = ak.explain(clf, TEXTS, method="occlusion")
    half = ak.explain(clf, TEXTS, method="occlusion", dtype=dtype)
    for a, b in zip(full, half):
        assert b.options["dtype"] == dtype
        np.testing.assert_allclose(b.scores, a.scores, atol=0.03)

"""The two models of the lxt fixture, built bit for bit alike under any transformers version.

Hugging Face's random initialisation differs between transformers versions, so the weights here come
from a seeded generator in sorted parameter-name order: a tiny BERT (every weight seeded) and the
packaged MiniLM with a seeded pooler and 2-class head (the checkpoint has neither). Imported by
``make_fixture.py`` (in lxt's environment) and by ``tests/test_attnlrp_reference.py`` (in ours).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tiny_models import tiny_config, write_tokenizer  # noqa: E402  (tests/ is not a package)

TEXTS = ["the movie was really good", "boring and bad , i hate this film", "a fine story but never again"]
MINILM_TEXTS = ["A gripping, beautifully acted film.", "The plot was thin and the jokes fell flat."]


def seed_weights(model: torch.nn.Module, *, seed: int, only: tuple[str, ...] | None = None, scale: float = 0.3) -> None:
    """Overwrite parameters from a seeded generator, in sorted name order (``only``: name prefixes)."""
    generator = torch.Generator().manual_seed(seed)
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name in sorted(params):
            if only is not None and not name.startswith(only):
                continue
            p = params[name]
            noise = torch.randn(p.shape, generator=generator, dtype=torch.float64)
            if p.dim() >= 2:
                value = scale * noise
            elif name.endswith("bias"):
                value = 0.1 * noise
            else:  # LayerNorm scales
                value = 1.0 + 0.1 * noise
            p.copy_(value.to(p.dtype))


def tiny_bert(folder: Path) -> Path:
    """A tiny 2-class BERT with seeded weights and the tests' WordPiece tokenizer, saved to ``folder``."""
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_config(tiny_config("bert", num_labels=2))
    seed_weights(model, seed=11)
    model.save_pretrained(folder)
    write_tokenizer(folder)
    return folder


def minilm_head(model: torch.nn.Module) -> None:
    """Seed the packaged MiniLM's pooler and classifier (absent from its checkpoint)."""
    seed_weights(model, seed=12, only=("bert.pooler", "classifier"), scale=0.05)

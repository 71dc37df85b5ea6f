"""A fresh head is seeded: one seed, one model (a teacher retrained from a bare encoder is the same bit for bit)."""

from __future__ import annotations

import shutil

import pytest
import torch
from transformers import AutoModel

from attribkit_distill.pairing import load_for_task
from attribkit_distill.tasks import get_task


@pytest.fixture(scope="module")
def bare_encoder(checkpoint_dir, tmp_path_factory):
    """A tiny BERT encoder without a classification head, as a pre-trained hub checkpoint is."""
    source = checkpoint_dir("bert", 2)
    out = tmp_path_factory.mktemp("bare")
    AutoModel.from_pretrained(source).save_pretrained(out)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        if (source / name).is_file():
            shutil.copy(source / name, out / name)
    return out


def test_the_fresh_head_depends_on_the_seed_only(bare_encoder):
    task = get_task("mnli")
    first = load_for_task(str(bare_encoder), task, "cpu", seed=5).model
    torch.rand(7)  # whatever the global generator did in between
    again = load_for_task(str(bare_encoder), task, "cpu", seed=5).model
    other = load_for_task(str(bare_encoder), task, "cpu", seed=6).model
    assert first.classifier.weight.shape == (3, first.config.hidden_size)
    torch.testing.assert_close(again.classifier.weight, first.classifier.weight, rtol=0, atol=0)
    assert not torch.equal(other.classifier.weight, first.classifier.weight)
    encoder = dict(first.bert.named_parameters())  # the pre-trained weights are not touched by the seed
    for name, value in other.bert.named_parameters():
        torch.testing.assert_close(value, encoder[name], rtol=0, atol=0)

"""A toy classifier whose attributions have closed forms.

``logit_c = sum_t mask_t * phi(w_c . x_t)`` over word embeddings ``x_t`` (no positions, no
attention), with ``phi(u) = u`` (linear) or ``phi(u) = u**2`` (quadratic). It follows the
Hugging Face interface attribkit uses: ``config``, ``get_input_embeddings``,
``base_model.embeddings`` and ``forward(...).logits``.
"""

from __future__ import annotations

from types import SimpleNamespace

import torch
from tiny_models import VOCAB
from torch import nn


class ToyConfig(SimpleNamespace):
    pass


class ToyEmbeddings(nn.Module):
    def __init__(self, vocab: int, hidden: int) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, hidden, padding_idx=0)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.word_embeddings(input_ids)


class ToyClassifier(nn.Module):
    def __init__(self, *, hidden: int = 6, num_labels: int = 2, power: int = 1, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.config = ToyConfig(
            num_labels=num_labels,
            id2label={i: f"c{i}" for i in range(num_labels)},
            hidden_size=hidden,
            num_hidden_layers=1,
            num_attention_heads=1,
            pad_token_id=0,
            model_type="toy",
            max_position_embeddings=64,
            _attn_implementation="eager",
        )
        self.embeddings = ToyEmbeddings(len(VOCAB), hidden)
        self.head = nn.Parameter(torch.randn(num_labels, hidden))
        self.power = power
        self.double()

    @property
    def base_model(self) -> ToyClassifier:
        return self

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.word_embeddings

    def forward(self, input_ids, attention_mask=None, token_type_ids=None) -> SimpleNamespace:
        x = self.embeddings(input_ids)
        u = (x @ self.head.T) ** self.power  # [B, T, C]
        if attention_mask is not None:
            u = u * attention_mask.unsqueeze(-1).to(u.dtype)
        return SimpleNamespace(logits=u.sum(dim=1))

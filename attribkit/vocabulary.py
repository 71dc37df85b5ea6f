"""Shrink a WordPiece classifier's vocabulary to the tokens a corpus uses (smaller embeddings for shipping).

The embedding table dominates a small BERT's size (30,522 x 384 values for MiniLM: 23 MB in float16).
A classifier for one kind of text needs far fewer rows: this keeps the ``size`` tokens the corpus uses
most, every special token, and the single-character pieces (``a``, ``##a`` ...) of the characters the
corpus contains, so any word of such text still tokenizes (into smaller pieces) instead of becoming
``[UNK]``. Kept tokens keep their embedding rows and their relative order; a text all of whose tokens
are kept gets exactly the same logits as before. WordPiece's greedy longest-match splits a word whose
whole-word token was dropped into the longest kept pieces.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from attribkit.errors import OptionError
from attribkit.model import Classifier


def shrink_vocabulary(classifier: Classifier, corpus: Iterable[str], size: int) -> Classifier:
    """A copy of ``classifier`` whose tokenizer and embedding table keep only ``size`` corpus tokens (+ pieces).

    Args:
        classifier: A classifier with a WordPiece tokenizer (BERT, MiniLM, ELECTRA, DistilBERT ...).
        corpus: Texts representative of what the model will read (e.g. its training sentences).
        size: How many of the corpus's most frequent tokens to keep (specials and the corpus's
            single-character pieces come on top).

    Returns:
        A new :class:`Classifier` (model and fast tokenizer) on the same device.

    Raises:
        OptionError: not a WordPiece tokenizer, a size < 1, or an empty corpus.
    """
    tokenizer = classifier.tokenizer
    backend = getattr(getattr(tokenizer, "backend_tokenizer", None), "model", None)
    if type(backend).__name__ != "WordPiece":
        raise OptionError(
            f"shrinking the vocabulary needs a WordPiece tokenizer (BERT-style); this one is {type(backend).__name__}"
        )
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise OptionError(f"the vocabulary size must be a positive integer; got {size!r}")
    texts = [t for t in corpus if t and t.strip()]
    if not texts:
        raise OptionError("the corpus holds no text")
    counts: Counter[int] = Counter()
    characters: set[str] = set()
    for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]:
        counts.update(ids)
    normalizer = tokenizer.backend_tokenizer.normalizer
    for text in texts:
        characters.update(normalizer.normalize_str(text) if normalizer is not None else text)
    vocab = tokenizer.get_vocab()
    prefix = getattr(backend, "continuing_subword_prefix", "##")
    keep = {i for i, _ in counts.most_common(size)}
    keep |= {int(i) for i in tokenizer.all_special_ids}
    keep |= {vocab[p] for c in characters if not c.isspace() for p in (c, prefix + c) if p in vocab}
    kept = sorted(keep)  # original order: [PAD] stays first, specials keep their places relative to the rest
    return _select(classifier, kept)


def unchanged_share(original: Classifier, shrunk: Classifier, texts: Iterable[str]) -> float:
    """The share of ``texts`` that the shrunk tokenizer splits exactly as the original did (same tokens)."""
    texts = list(texts)
    before = original.tokenizer(texts, add_special_tokens=False)["input_ids"]
    after = shrunk.tokenizer(texts, add_special_tokens=False)["input_ids"]
    to_old, to_new = original.tokenizer.convert_ids_to_tokens, shrunk.tokenizer.convert_ids_to_tokens
    same = sum(to_old(a) == to_new(b) for a, b in zip(before, after))
    return same / max(len(texts), 1)


def _select(classifier: Classifier, kept: list[int]) -> Classifier:
    from transformers import BertTokenizer

    tokenizer, model = classifier.tokenizer, classifier.model
    inverse = {i: t for t, i in tokenizer.get_vocab().items()}
    tokens = [inverse[i] for i in kept]
    new_tokenizer = BertTokenizer(
        vocab={t: i for i, t in enumerate(tokens)},
        do_lower_case=bool(tokenizer.init_kwargs.get("do_lower_case", True)),
        strip_accents=tokenizer.init_kwargs.get("strip_accents"),
        tokenize_chinese_chars=bool(tokenizer.init_kwargs.get("tokenize_chinese_chars", True)),
        model_max_length=tokenizer.model_max_length,
        **{
            name: getattr(tokenizer, name)
            for name in ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
        },
    )
    new_model: Any = copy.deepcopy(model)
    old = model.get_input_embeddings()
    table = nn.Embedding(len(kept), old.embedding_dim, padding_idx=None).to(old.weight.device, old.weight.dtype)
    with torch.no_grad():
        table.weight.copy_(old.weight[torch.tensor(kept, device=old.weight.device)])
    new_model.set_input_embeddings(table)
    config = new_model.config
    config.vocab_size = len(kept)
    position = {old_id: new_id for new_id, old_id in enumerate(kept)}
    for name in ("pad_token_id", "bos_token_id", "eos_token_id", "sep_token_id", "cls_token_id"):
        value = getattr(config, name, None)
        if isinstance(value, int):
            setattr(config, name, position.get(value))
    if isinstance(getattr(config, "pad_token_id", None), int):
        table.padding_idx = config.pad_token_id
    new_model.to(classifier.device).train(model.training)
    return Classifier(new_model, new_tokenizer)

"""Tiny random Hugging Face classifiers built offline, for tests.

Every architecture shares one small WordPiece vocabulary, so the same texts tokenize the same
way for BERT, RoBERTa, DistilBERT, ELECTRA and DeBERTa-v2 models.
"""

from __future__ import annotations

from pathlib import Path

import torch

WORDS = (
    "the a an this that it is was be not no very really so good great fine bad awful terrible "
    "movie film story plot actor acting fun boring love hate like dislike and but or of to in "
    "on with for at by from i you he she we they my your his her our their what why how "
    "hello world yes maybe never always one two three cat dog sat mat run ran"
).split()
SUBWORDS = ["##s", "##ing", "##ed", "##ly", "##er", "##y", "##n", "##t"]
LETTERS = list("abcdefghijklmnopqrstuvwxyz") + ["##" + c for c in "abcdefghijklmnopqrstuvwxyz"]
PUNCT = list(".,!?'\"<>&;:()-/")
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
VOCAB = SPECIALS + WORDS + SUBWORDS + LETTERS + PUNCT

ARCHITECTURES = ("bert", "roberta", "distilbert", "electra", "deberta-v2")


def write_tokenizer(directory: Path, *, max_length: int = 64) -> None:
    """Save a WordPiece tokenizer over :data:`VOCAB` into ``directory``."""
    from transformers import BertTokenizerFast

    directory.mkdir(parents=True, exist_ok=True)
    vocab = directory / "vocab.txt"
    vocab.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    import inspect

    takes_dict = "vocab" in inspect.signature(BertTokenizerFast.__init__).parameters  # transformers >= 5
    source = {"vocab": {tok: i for i, tok in enumerate(VOCAB)}} if takes_dict else {"vocab_file": str(vocab)}
    BertTokenizerFast(**source, do_lower_case=True, model_max_length=max_length).save_pretrained(directory)


def tiny_config(arch: str = "bert", *, num_labels: int = 2, hidden: int = 16, layers: int = 2, max_positions: int = 64):
    """A small random config of ``arch`` over the shared vocabulary."""
    from transformers import AutoConfig

    common = {"vocab_size": len(VOCAB), "num_labels": num_labels, "pad_token_id": 0}
    if arch == "distilbert":
        cfg = AutoConfig.for_model(
            "distilbert",
            dim=hidden,
            n_layers=layers,
            n_heads=2,
            hidden_dim=2 * hidden,
            max_position_embeddings=max_positions,
            **common,
        )
    else:
        extra = {"embedding_size": hidden // 2} if arch == "electra" else {}
        if arch == "roberta":
            max_positions += 2
            extra["type_vocab_size"] = 1
        if arch == "deberta-v2":
            extra.update(relative_attention=True, position_buckets=8, pos_att_type=["p2c", "c2p"], type_vocab_size=2)
        cfg = AutoConfig.for_model(
            arch,
            hidden_size=hidden,
            num_hidden_layers=layers,
            num_attention_heads=2,
            intermediate_size=2 * hidden,
            max_position_embeddings=max_positions,
            **common,
            **extra,
        )
    if num_labels == 1:
        cfg.problem_type = "regression"
    cfg.id2label = dict(enumerate(label_names(num_labels)))
    cfg.label2id = {name: i for i, name in cfg.id2label.items()}
    return cfg


def label_names(num_labels: int) -> list[str]:
    return {1: ["score"], 2: ["negative", "positive"], 3: ["entailment", "neutral", "contradiction"]}.get(
        num_labels, [f"class_{i}" for i in range(num_labels)]
    )


def build_checkpoint(directory: Path, arch: str = "bert", *, num_labels: int = 2, seed: int = 0, **config) -> Path:
    """Write a random tiny classifier + tokenizer checkpoint to ``directory``."""
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_config(tiny_config(arch, num_labels=num_labels, **config))
    _spread_weights(model)
    model.save_pretrained(directory)
    write_tokenizer(directory)
    return directory


def _spread_weights(model: torch.nn.Module) -> None:
    """Larger random weights than HF's init (std 0.02), so outputs vary visibly with the input."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 0.3)
            elif "bias" in name:
                p.normal_(0.0, 0.1)

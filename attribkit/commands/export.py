"""``attribkit export``: save a classifier compactly (half precision, minimal tokenizer files) for shipping."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import typer

DTYPES = ("float32", "float16", "bfloat16")


def export(
    model: str = typer.Option(..., "--model", help="Classifier checkpoint to export."),
    out: Path = typer.Option(..., "--out", help="New folder for the exported checkpoint."),
    dtype: str = typer.Option("float16", "--dtype", help="Weight dtype on disk: float32, float16 or bfloat16."),
    card: Path | None = typer.Option(None, "--card", help="A model card (markdown) to copy in as README.md."),
    vocab_from: Path | None = typer.Option(
        None,
        "--vocab-from",
        help="Shrink the vocabulary to the tokens this text file (one text per line) uses most (WordPiece models).",
    ),
    vocab_size: int = typer.Option(
        8000, "--vocab-size", help="With --vocab-from: corpus tokens to keep (+ specials, characters)."
    ),
) -> None:
    """Write a checkpoint in a smaller dtype with only the tokenizer files it needs (loads back in float32 on CPU)."""
    import torch

    import attribkit as ak

    if dtype not in DTYPES:
        raise ak.OptionError(f"unknown --dtype {dtype!r}; choose one of: {', '.join(DTYPES)}")
    if out.exists() and any(out.iterdir()):
        raise ak.OptionError(f"{out} exists and is not empty; choose a new folder")
    if card is not None and not card.is_file():
        raise ak.InvalidInputError(f"no such model card: {card}")
    if vocab_from is not None and not vocab_from.is_file():
        raise ak.InvalidInputError(f"no such corpus file: {vocab_from}")
    clf = ak.load_classifier(model, device="cpu")
    if vocab_from is not None:
        from attribkit.vocabulary import unchanged_share

        corpus = vocab_from.read_text(encoding="utf-8").splitlines()
        original, clf = clf, ak.shrink_vocabulary(clf, corpus, vocab_size)
        typer.echo(
            f"vocabulary {len(original.tokenizer)} -> {len(clf.tokenizer)} tokens; "
            f"{unchanged_share(original, clf, corpus):.1%} of the corpus lines tokenize as before"
        )
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    converted: Any = clf.model.to(getattr(torch, dtype))
    ak.save_model_files(converted, staging)  # no "Writing model shards" bar; 0644, not safetensors' 0600
    ak.save_model_files(clf.tokenizer, staging)
    _slim_tokenizer(clf.tokenizer, staging)
    if card is not None:
        shutil.copyfile(card, staging / "README.md")
    if out.exists():
        out.rmdir()
    staging.replace(out)
    size = sum(f.stat().st_size for f in out.iterdir() if f.is_file())
    typer.echo(f"wrote {out} ({size / 1e6:.2f} MB, {dtype})")


PROBES = (
    "Hello, World! It's a gripping, beautifully-acted film.",
    "naïve café ünïcödé 123 ##x [MASK] <b>",
    "unbelievably",
)


def _slim_tokenizer(tokenizer: Any, folder: Path) -> None:
    """Replace tokenizer.json (~0.7 MB for BERT) by vocab.txt when that rebuilds the same tokenizer.

    Only for WordPiece tokenizers, and only if the rebuilt tokenizer gives the same ids on probe texts.
    """
    from transformers import AutoTokenizer

    backend = getattr(getattr(tokenizer, "backend_tokenizer", None), "model", None)
    if type(backend).__name__ != "WordPiece" or not (folder / "tokenizer.json").is_file():
        return
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])
    if [i for _, i in vocab] != list(range(len(vocab))):
        return
    (folder / "vocab.txt").write_text("".join(token + "\n" for token, _ in vocab), encoding="utf-8")
    full = folder / "tokenizer.json"
    aside = full.rename(folder.parent / (folder.name + ".tokenizer.json"))
    try:
        rebuilt = AutoTokenizer.from_pretrained(folder)
        same = all(rebuilt(p)["input_ids"] == tokenizer(p)["input_ids"] for p in PROBES) and len(rebuilt) == len(
            tokenizer
        )
    except Exception:  # any failure to rebuild: keep the full file
        same = False
    if same:
        aside.unlink()
    else:
        aside.rename(full)
        (folder / "vocab.txt").unlink()


def register(app: typer.Typer) -> None:
    """Add ``export`` to the app."""
    app.command("export")(export)

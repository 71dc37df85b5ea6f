"""Shrinking a WordPiece classifier's vocabulary to a corpus: same logits where nothing changed, pieces not [UNK]."""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

import attribkit as ak
from attribkit.cli import app
from attribkit.vocabulary import unchanged_share

CORPUS = ["the movie was good", "the film was really good", "a boring plot", "the story was bad"] * 3


def logits(clf, text):
    with torch.no_grad():
        return clf.model(**clf.tokenizer(text, return_tensors="pt")).logits


def test_kept_texts_keep_their_logits_and_dropped_words_become_pieces(tiny):
    clf = tiny("bert", 2)
    clf.model.eval()
    small = ak.shrink_vocabulary(clf, CORPUS, 5)  # the 5 most frequent corpus tokens, + specials, + letters
    vocab = small.tokenizer.get_vocab()
    assert set(clf.tokenizer.all_special_tokens) <= set(vocab)
    assert {"the", "was", "good", "movie"} <= set(vocab) and "boring" not in vocab  # 'boring' is used once per copy
    assert small.model.get_input_embeddings().num_embeddings == len(vocab) == small.model.config.vocab_size
    assert small.model.config.pad_token_id == vocab["[PAD]"] == 0
    for token, new_id in vocab.items():  # every kept row is the original row of that token
        old_id = clf.tokenizer.get_vocab()[token]
        assert torch.equal(
            small.model.get_input_embeddings().weight[new_id], clf.model.get_input_embeddings().weight[old_id]
        )
    # a text whose tokens are all kept: the very same logits
    torch.testing.assert_close(logits(small, "the movie was good"), logits(clf, "the movie was good"), rtol=0, atol=0)
    # a dropped word is spelled with kept pieces, never [UNK]
    pieces = small.tokenizer.tokenize("a boring plot")
    assert "[UNK]" not in pieces and "".join(p.removeprefix("##") for p in pieces) == "aboringplot"
    assert unchanged_share(clf, small, ["the movie was good", "a boring plot"]) == 0.5


def test_bad_requests_are_one_clear_error(tiny):
    from test_decoders import decoder

    with pytest.raises(ak.OptionError, match="needs a WordPiece tokenizer"):
        ak.shrink_vocabulary(decoder("gpt2"), CORPUS, 10)
    with pytest.raises(ak.OptionError, match="positive integer"):
        ak.shrink_vocabulary(tiny("bert", 2), CORPUS, 0)
    with pytest.raises(ak.OptionError, match="no text"):
        ak.shrink_vocabulary(tiny("bert", 2), ["", "  "], 10)


def test_export_with_a_smaller_vocabulary(checkpoint_dir, tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(CORPUS) + "\n")
    out = tmp_path / "small"
    result = CliRunner().invoke(
        app,
        ["export", "--model", str(checkpoint_dir("bert", 2)), "--out", str(out), "--dtype", "float32",
         "--vocab-from", str(corpus), "--vocab-size", "5"],
    )  # fmt: skip
    assert result.exit_code == 0, (result.output, result.exception)
    assert "tokens;" in result.output and "of the corpus lines tokenize as before" in result.output
    small, full = ak.load_classifier(out, device="cpu"), ak.load_classifier(checkpoint_dir("bert", 2), device="cpu")
    assert len(small.tokenizer) < len(full.tokenizer) and (out / "vocab.txt").is_file()
    torch.testing.assert_close(logits(small, "the movie was good"), logits(full, "the movie was good"))
    missing = CliRunner().invoke(
        app,
        ["export", "--model", str(checkpoint_dir("bert", 2)), "--out", str(tmp_path / "x"), "--vocab-from", "nope.txt"],
    )
    assert isinstance(missing.exception, ak.InvalidInputError) and "no such corpus file" in str(missing.exception)

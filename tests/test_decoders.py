"""Decoder classifiers (GPT-2, Llama, Qwen2) with their own BPE tokenizer and no padding token."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import attribkit as ak

SENTENCES = [
    "the movie was really good",
    "an awful plot and boring actors",
    "i like it very much and so do you",
    "bad",
    "a cat sat on the mat",
]
DECODERS = {
    "gpt2": {"n_embd": 16, "n_layer": 2, "n_head": 2, "n_positions": 64},
    "llama": {
        "hidden_size": 16,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "intermediate_size": 32,
        "max_position_embeddings": 64,
    },
    "qwen2": {
        "hidden_size": 16,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "intermediate_size": 32,
        "max_position_embeddings": 64,
    },
}


def bpe_tokenizer(padding_side: str = "right"):
    """A byte-level BPE trained on a few sentences, GPT-2 style: an end-of-text token and no padding token."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<|endoftext|>"],
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(SENTENCES * 3, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", padding_side=padding_side)
    assert fast.pad_token is None
    return fast


def decoder(arch: str, padding_side: str = "right") -> ak.Classifier:
    from transformers import AutoConfig, AutoModelForSequenceClassification

    tokenizer = bpe_tokenizer(padding_side)
    config = AutoConfig.for_model(arch, vocab_size=len(tokenizer), num_labels=2, **DECODERS[arch])
    config.pad_token_id = None
    config.eos_token_id = config.bos_token_id = tokenizer.eos_token_id
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(config).double().eval()
    return ak.Classifier(model, tokenizer)


@pytest.mark.parametrize("arch", list(DECODERS))
def test_padding_falls_back_to_end_of_text_and_batches_equal_single_texts(arch):
    clf = decoder(arch)
    assert clf.model.config.pad_token_id == clf.tokenizer.eos_token_id == clf.pad_token_id
    assert_every_method_batches_like_single_texts(clf)


def assert_every_method_batches_like_single_texts(clf: ak.Classifier) -> None:
    """Every method but attnlrp, at both layers where it takes one: a text's map alone == in a padded batch."""
    for method in ak.list_methods():
        if method == "attnlrp":
            continue
        layers = (
            ["word_embeddings", "embeddings"]
            if "layer" in ak.get_method(method).__init__.__code__.co_varnames
            else [None]
        )
        for layer in layers:
            options = {} if layer is None else {"layer": layer}
            options.update({"steps": 4} if method in ("fast_ig", "integrated_gradients") else {})
            alone = ak.explain(clf, ["bad"], method=method, **options)[0]
            batched = ak.explain(clf, [SENTENCES[2], "bad"], method=method, batch_size=2, **options)[1]
            np.testing.assert_allclose(batched.scores, alone.scores, rtol=1e-6, atol=1e-9, err_msg=f"{method} {layer}")
            assert np.abs(alone.scores).sum() > 0


@pytest.mark.parametrize("arch", list(DECODERS))
def test_a_left_padding_tokenizer_gives_the_same_maps(arch):
    right = ak.explain(decoder(arch, "right"), SENTENCES, method="fast_ig", steps=4, batch_size=5)
    left = ak.explain(decoder(arch, "left"), SENTENCES, method="fast_ig", steps=4, batch_size=5)
    for a, b in zip(right, left):
        np.testing.assert_allclose(a.scores, b.scores, rtol=1e-9)


def test_embeddings_is_the_first_blocks_input():
    gpt2 = decoder("gpt2")
    batch = gpt2.encode(["the movie was good"])
    ids = batch["input_ids"]
    base = gpt2.model.transformer
    expected = base.wte(ids) + base.wpe(torch.arange(ids.shape[1]))[None]  # token + position embeddings
    torch.testing.assert_close(gpt2.layer_output(batch, "embeddings"), expected)
    llama = decoder("llama")
    batch = llama.encode(["the movie was good"])
    torch.testing.assert_close(
        llama.layer_output(batch, "embeddings"), llama.model.model.embed_tokens(batch["input_ids"])
    )


@pytest.mark.parametrize("arch", list(DECODERS))
def test_captum_at_the_first_blocks_input_equals_fast_ig(arch):
    # Captum's LayerIntegratedGradients reads the block input (attribute_to_layer_input); fast_ig replaces it
    clf = decoder(arch)
    for baseline in ("pad", "zero"):
        a = ak.explain(
            clf, SENTENCES[:3], method="integrated_gradients", layer="embeddings", baseline=baseline, steps=8
        )
        b = ak.explain(clf, SENTENCES[:3], method="fast_ig", layer="embeddings", baseline=baseline, steps=8)
        for x, y in zip(a, b):
            np.testing.assert_allclose(x.scores, y.scores, rtol=1e-6, atol=1e-10)


def test_attnlrp_refuses_what_its_rules_do_not_cover():
    with pytest.raises(ak.OptionError, match="attnlrp supports bert.*llama"):
        ak.explain(decoder("llama"), ["bad"], method="attnlrp")


@pytest.mark.parametrize("num_labels", [1, 2])
def test_asking_whether_a_decoder_is_a_regression_model_leaves_its_config_alone(num_labels):
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from attribkit_distill.maps import is_regression

    config = AutoConfig.for_model("gpt2", vocab_size=64, n_layer=1, n_head=2, n_embd=8, num_labels=num_labels)
    config.pad_token_id = None
    model = AutoModelForSequenceClassification.from_config(config)
    assert is_regression(model) is (num_labels == 1)
    assert model.config.pad_token_id is None  # building a Classifier would have set it to end-of-text
    assert ak.Classifier(model).is_regression is (num_labels == 1)  # the same rule as the core's

"""`attribkit distill` with a student that has its own tokenizer: encoders and decoders, cache, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_decoders import DECODERS, assert_every_method_batches_like_single_texts
from tiny_glue import FILLER, NEGATIVE, POSITIVE, write_tiny_glue
from typer.testing import CliRunner

import attribkit as ak
from attribkit.cli import _load_plugins, app
from attribkit_distill import (
    CrossTokenizerAttributionLoss,
    DistillationObjective,
    KDLoss,
    TeacherCache,
    encode_cross_examples,
)
from attribkit_distill.cross_data import covered_units, token_spans
from attribkit_distill.students import student_from_pretrained
from attribkit_distill.tasks import Example, get_task, load_examples

_load_plugins()
runner = CliRunner()
CORPUS = [" ".join(FILLER + POSITIVE + NEGATIVE)] * 4 + ["the movie was really good", "an awful plot"]
ENCODERS = {
    "modernbert": {
        "hidden_size": 16,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 32,
        "max_position_embeddings": 64,
        "global_attn_every_n_layers": 2,
        "local_attention": 16,
    },
    "deberta-v2": {
        "hidden_size": 16,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 32,
        "max_position_embeddings": 64,
    },
}
STUDENTS = [*ENCODERS, *DECODERS]


def bpe(arch: str):
    """A BPE tokenizer trained here: byte-level without padding for decoders, [CLS]/[SEP]/[PAD] for encoders."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None if arch in DECODERS else "[UNK]"))
    if arch in DECODERS:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        specials, alphabet = ["<|endoftext|>"], pre_tokenizers.ByteLevel.alphabet()
    else:
        tok.pre_tokenizer = pre_tokenizers.Whitespace()
        specials, alphabet = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], list("abcdefghijklmnopqrstuvwxyz.,!?'")
    trainer = trainers.BpeTrainer(
        vocab_size=120, special_tokens=specials, show_progress=False, initial_alphabet=alphabet
    )
    tok.train_from_iterator(CORPUS, trainer)
    if arch in DECODERS:
        return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>")
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """Factory: a saved tiny *pre-trained* model (no task head) of ``arch`` with its own BPE tokenizer."""
    from transformers import AutoConfig, AutoModel

    made: dict[str, Path] = {}

    def make(arch: str) -> Path:
        if arch not in made:
            tokenizer = bpe(arch)
            options = {**ENCODERS, **DECODERS}[arch]
            if arch in DECODERS:
                ids = {
                    "pad_token_id": None,
                    "eos_token_id": tokenizer.eos_token_id,
                    "bos_token_id": tokenizer.eos_token_id,
                }
            else:
                cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
                ids = {"pad_token_id": tokenizer.pad_token_id, "bos_token_id": cls, "cls_token_id": cls}
                ids.update(eos_token_id=sep, sep_token_id=sep)
            config = AutoConfig.for_model(arch, vocab_size=len(tokenizer), **options, **ids)
            torch.manual_seed(3)
            directory = tmp_path_factory.mktemp(arch)
            AutoModel.from_config(config).save_pretrained(directory)
            tokenizer.save_pretrained(directory)
            made[arch] = directory
        return made[arch]

    return make


@pytest.fixture(scope="module")
def glue(tmp_path_factory) -> Path:
    return write_tiny_glue(tmp_path_factory.mktemp("glue"))


def distill(*args: object) -> object:
    return runner.invoke(app, ["distill", *map(str, args), "--no-progress"])


@pytest.mark.parametrize("arch", STUDENTS)
@pytest.mark.parametrize("objective", ["kd", "adkd"])
def test_distill_into_a_student_with_its_own_tokenizer(checkpoint_dir, pretrained, glue, tmp_path, arch, objective):
    out = tmp_path / "student"
    result = distill(
        "--teacher",
        checkpoint_dir("bert", 2),
        "--student-from",
        pretrained(arch),
        "--student-layers",
        "0",
        "--task",
        "SST-2",
        "--data-dir",
        glue,
        "--out",
        out,
        "--objective",
        objective,
        "--max-steps",
        "3",
        "--batch-size",
        "8",
        "--train-limit",
        "16",
        "--diagnose-every",
        "1",
    )
    assert result.exit_code == 0, (result.output, result.exception)
    run = json.loads((out / "run.json").read_text())
    assert run["cross_tokenizer"] is True and run["loss"]["beta"] == (0.0 if objective == "kd" else 1.0)
    # the student is saved with *its* tokenizer and explains text with it
    student = ak.load_classifier(out, device="cpu")
    assert student.tokenizer.get_vocab() == bpe(arch).get_vocab()
    assert student.model.config.model_type == arch
    (record,) = ak.explain(student, "the movie was really good", method="gradient_x_input")
    assert list(record.tokens) == student.tokenizer.convert_ids_to_tokens(
        student.tokenizer("the movie was really good")["input_ids"]
    )
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    gradients = [r["gradients"] for r in rows if r.get("kind") == "gradients"]
    assert len(gradients) == 3 and all(g["kd"] > 0 for g in gradients)
    if objective == "adkd":  # the attribution term pushes the student's weights
        assert all(g["attr"] > 0 for g in gradients)


def test_interchange_intervention_across_tokenizers_is_one_clear_error(checkpoint_dir, pretrained, glue, tmp_path):
    result = distill(
        "--teacher",
        checkpoint_dir("bert", 2),
        "--student-from",
        pretrained("gpt2"),
        "--student-layers",
        "0",
        "--task",
        "SST-2",
        "--data-dir",
        glue,
        "--out",
        tmp_path / "x",
        "--objective",
        "iit",
        "--max-steps",
        "1",
    )
    assert isinstance(result.exception, ak.OptionError) and not (tmp_path / "x").exists()
    assert "needs one tokenizer" in str(result.exception)  # the entry point prints it as one line, exit 2


def _cross_data(teacher, student_tokenizer, glue, n=12):
    examples = load_examples(get_task("SST-2"), "train", data_dir=glue)[:n]
    return encode_cross_examples(student_tokenizer, teacher.tokenizer, examples, max_length=32)


def test_cached_unit_maps_equal_live_ones_and_other_units_are_refused(tiny, pretrained, glue, tmp_path):
    teacher = tiny("bert", 2)
    tokenizer = bpe("llama")
    data = _cross_data(teacher, tokenizer, glue)
    loss_fn = CrossTokenizerAttributionLoss(top_k=4)
    cache = TeacherCache.build(tmp_path / "cache.pt", teacher.model, data, loss_fn)
    batch = data.batch([3, 0, 7, 5])
    live, logits = loss_fn.teacher_maps(teacher.model, batch)
    cached = cache.outputs(batch)
    assert cached.maps is not None and cached.maps.shape == live.shape == (4, 1, batch["unit_mask"].shape[1])
    torch.testing.assert_close(cached.maps, live.float(), rtol=1e-6, atol=1e-7)
    want = teacher.model(
        input_ids=batch["teacher_input_ids"],
        attention_mask=batch["teacher_attention_mask"],
        token_type_ids=batch["teacher_token_type_ids"],
    ).logits
    torch.testing.assert_close(cached.logits, want.float(), rtol=1e-6, atol=1e-7)
    # the student's objective from the cache equals the one with the live teacher
    student = student_from_pretrained(str(pretrained("llama")), [0], num_labels=2).double()
    ak.Classifier(student, tokenizer)  # pad with end-of-text
    objective = DistillationObjective(alpha=0.5, beta=2.0, kd=KDLoss(2.0), attribution=loss_fn)
    with_cache = objective(student, None, batch, teacher_outputs=cached)
    with_teacher = objective(student, teacher.model, batch)
    assert float(with_cache.total) == pytest.approx(float(with_teacher.total), rel=1e-5)
    # a student tokenizer that cuts the text into other units cannot use these unit maps
    other = _cross_data(teacher, bpe("modernbert"), glue)
    assert other.units != data.units
    with pytest.raises(ak.InvalidInputError, match="units"):
        TeacherCache.load(tmp_path / "cache.pt", teacher=teacher.model, data=other, loss_fn=loss_fn)


def test_truncation_keeps_only_the_text_both_models_saw(tiny):
    teacher = tiny("bert", 2)
    student = bpe("gpt2")
    text = "the movie was really good"
    # the teacher keeps "[CLS] the movie [SEP]" (4 tokens); this BPE has no merges: one token per byte
    t = token_spans(teacher.tokenizer, text, 4)
    s7 = token_spans(student, text, 7)  # "t h e Ġ m o v": "movie" only in part
    s11 = token_spans(student, text, 11)  # "... m o v i e Ġ w": all of "movie", part of "was"
    assert [text[a:b] for _seg, a, b in covered_units(s7, t)] == ["the"]
    assert [text[a:b] for _seg, a, b in covered_units(s11, t)] == ["the", "movie"]
    units = covered_units(token_spans(student, text, 4), t)
    data = encode_cross_examples(student, teacher.tokenizer, [Example(text, None, 1)], max_length=4)
    assert data.units == (tuple(units),) and data.map_lengths() == [1]


def test_a_decoder_student_learns_the_teachers_map_in_100_steps(tiny, pretrained, glue):
    teacher = tiny("bert", 2)
    tokenizer = bpe("gpt2")
    data = _cross_data(teacher, tokenizer, glue, n=8)
    torch.manual_seed(0)
    student = student_from_pretrained(str(pretrained("gpt2")), [0, 1], num_labels=2).double().train()
    ak.Classifier(student, tokenizer)
    loss_fn = CrossTokenizerAttributionLoss()
    objective = DistillationObjective(alpha=1.0, beta=1.0, kd=KDLoss(1.0), attribution=loss_fn)
    optimizer = torch.optim.Adam(student.parameters(), lr=3e-3)
    batch = data.batch(range(8))
    attr, kd = [], []
    for _ in range(100):
        out = objective(student, teacher.model, batch)
        optimizer.zero_grad()
        out.total.backward()
        optimizer.step()
        attr.append(float(out.terms["attr"]))
        kd.append(float(out.terms["kd"]))
    assert attr[-1] < 0.5 * attr[0] and kd[-1] < kd[0]
    assert all(p.grad is None for p in teacher.model.parameters())


def test_narrowing_is_refused_where_the_weight_layout_is_not_bert_like():
    from test_decoders import decoder

    from attribkit_distill import narrow_student

    with pytest.raises(ak.OptionError, match="narrows BERT-style encoders .* a gpt2 keeps its width"):
        narrow_student(decoder("gpt2").model, [0], 8)


def test_a_saved_copy_of_the_same_tokenizer_is_the_same_tokenizer(checkpoint_dir, tmp_path):
    """A fine-tuned teacher's saved tokenizer may carry other padding/truncation settings: still the same ids."""
    from transformers import AutoTokenizer

    from attribkit_distill.pairing import same_tokenizer

    original = AutoTokenizer.from_pretrained(checkpoint_dir("bert", 2))
    padded = AutoTokenizer.from_pretrained(checkpoint_dir("bert", 2))
    padded.backend_tokenizer.enable_padding(length=128)
    padded.backend_tokenizer.enable_truncation(max_length=64)
    assert same_tokenizer(original, padded)
    assert not same_tokenizer(original, bpe("gpt2")) and not same_tokenizer(original, bpe("modernbert"))
    lower = AutoTokenizer.from_pretrained(checkpoint_dir("bert", 2), do_lower_case=False)
    assert not same_tokenizer(original, lower)  # another normaliser: other ids for "The"


def test_a_modernbert_student_is_explained_like_any_encoder(pretrained):
    """Every method but attnlrp at both layers on a ModernBERT classifier with its own BPE: batch == alone."""
    tokenizer = bpe("modernbert")
    torch.manual_seed(0)
    clf = ak.Classifier(
        student_from_pretrained(str(pretrained("modernbert")), [0, 1], num_labels=2).double(), tokenizer
    )
    assert_every_method_batches_like_single_texts(clf)

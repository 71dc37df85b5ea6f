"""Distilling from a saved teacher cache alone (``--teacher-cache``): the same student as with the teacher.

A cache records its teacher's config; a run from the cache never loads the teacher and trains the
student bit for bit as the run with the teacher and its cache did. What the cache cannot stand in for
(another data set or map options, a term that runs the teacher, a cache of a shorter run) is refused
in one line.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tiny_glue import write_tiny_glue
from typer.testing import CliRunner

import attribkit as ak
from attribkit.cli import _load_plugins, app
from attribkit_distill import AttributionLoss
from attribkit_distill.cache import TeacherCache
from attribkit_distill.cache_key import model_fingerprint, teacher_config
from attribkit_distill.data import encode_examples
from attribkit_distill.evaluation import attribution_gap
from attribkit_distill.tasks import get_task, load_examples

_load_plugins()
runner = CliRunner()


@pytest.fixture(scope="module")
def glue(tmp_path_factory) -> Path:
    return write_tiny_glue(tmp_path_factory.mktemp("glue"))


def distill(*args: object) -> tuple[int, str]:
    result = runner.invoke(app, ["distill", *map(str, args), "--no-progress"])
    message = result.output if result.exception is None or isinstance(result.exception, SystemExit) else ""
    return result.exit_code, message + ("" if result.exception is None else str(result.exception))


def student_args(checkpoint_dir, glue: Path, out: Path, *extra: object) -> list[object]:
    """A student from a pre-trained tiny model (one layer), 6 steps of SST-2."""
    return [
        "--student-from",
        checkpoint_dir("bert", 2, seed=5),
        "--student-layers",
        "1",
        "--task",
        "SST-2",
        "--data-dir",
        glue,
        "--out",
        out,
        "--epochs",
        "1",
        "--batch-size",
        "8",
        *extra,
    ]


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return ak.load_classifier(folder, device="cpu").model.state_dict()


def metrics(folder: Path) -> list[dict]:
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


@pytest.mark.parametrize("objective", ["kd", "adkd"])
def test_a_run_from_the_cache_alone_trains_the_student_the_teacher_run_trained(
    checkpoint_dir, glue, tmp_path, objective
):
    teacher = checkpoint_dir("bert", 2)
    live, cached = tmp_path / "live", tmp_path / "cached"
    code, output = distill("--teacher", teacher, "--objective", objective, *student_args(checkpoint_dir, glue, live))
    assert code == 0, output
    cache_file = tmp_path / "kept.pt"
    (live / "teacher_cache.pt").rename(cache_file)  # the teacher is not needed from here on
    code, output = distill(
        "--teacher-cache", cache_file, "--objective", objective, *student_args(checkpoint_dir, glue, cached)
    )
    assert code == 0, output
    assert metrics(cached) == metrics(live) and len(metrics(live)) >= 2
    one, two = weights(live), weights(cached)
    assert all(torch.equal(one[name], two[name]) for name in one)
    run = json.loads((cached / "run.json").read_text())
    fingerprint = model_fingerprint(ak.load_classifier(teacher, device="cpu").model)
    assert run["teacher"] is None and run["teacher_fingerprint"] == fingerprint
    assert run["teacher_cache"] == str(cache_file.resolve())
    assert not (cached / "teacher_cache.pt").exists()  # read where it is, not copied


def test_the_cache_records_its_teachers_config(checkpoint_dir, glue, tmp_path):
    teacher = ak.load_classifier(checkpoint_dir("bert", 2), device="cpu")
    data = encode_examples(teacher.tokenizer, load_examples(get_task("sst2"), "train", data_dir=glue))
    cache = TeacherCache.build(tmp_path / "c.pt", teacher.model, data, None)
    config = teacher.model.config
    expected = {
        "model_type": "bert",
        "hidden_size": config.hidden_size,
        "num_labels": 2,
        "vocab_size": config.vocab_size,
        "pad_token_id": config.pad_token_id,
    }
    assert cache.teacher_config == expected == teacher_config(teacher.model)
    assert TeacherCache.read(tmp_path / "c.pt").teacher_config == expected


def test_a_cache_written_before_configs_gains_one_from_its_teacher_without_recomputing(
    checkpoint_dir, glue, tmp_path, monkeypatch
):
    teacher = ak.load_classifier(checkpoint_dir("bert", 2), device="cpu")
    data = encode_examples(teacher.tokenizer, load_examples(get_task("sst2"), "train", data_dir=glue))
    path = tmp_path / "old.pt"
    TeacherCache.build(path, teacher.model, data, AttributionLoss())
    blob = torch.load(path, weights_only=True)
    del blob["teacher_config"]  # as caches were written before
    torch.save(blob, path)
    with pytest.raises(ak.InvalidInputError, match="does not record its teacher's config"):
        TeacherCache.open(path, data=data, loss_fn=AttributionLoss())
    code, output = distill("--teacher-cache", path, *student_args(checkpoint_dir, glue, tmp_path / "s"))
    assert code != 0 and "run once with --teacher to add it" in output and len(output.strip().splitlines()) == 1
    calls = []
    monkeypatch.setattr(AttributionLoss, "teacher_maps", lambda *a: calls.append(a))
    upgraded = TeacherCache.build(path, teacher.model, data, AttributionLoss())
    assert calls == [] and upgraded.teacher_config == teacher_config(teacher.model)
    assert torch.equal(TeacherCache.open(path, data=data, loss_fn=AttributionLoss()).maps, blob["maps"])


def test_shuffled_maps_read_from_an_unshuffled_cache_are_the_shuffled_cache(checkpoint_dir, glue, tmp_path):
    """The same permutation of the same values; a live shuffle normalises after permuting, so the L2 norm's sum
    runs in another order and may differ in its last bit."""
    teacher = ak.load_classifier(checkpoint_dir("bert", 2), device="cpu")
    data = encode_examples(teacher.tokenizer, load_examples(get_task("sst2"), "train", data_dir=glue))
    TeacherCache.build(tmp_path / "plain.pt", teacher.model, data, AttributionLoss(), batch_size=7)
    shuffled_loss = AttributionLoss(teacher_shuffle=3)
    built = TeacherCache.build(tmp_path / "shuffled.pt", teacher.model, data, shuffled_loss, batch_size=7)
    read = TeacherCache.open(tmp_path / "plain.pt", data=data, loss_fn=shuffled_loss)
    unshuffled = TeacherCache.open(tmp_path / "plain.pt", data=data, loss_fn=AttributionLoss())
    assert read.shuffle == 3 and built.shuffle is None
    moved = 0
    for start in range(0, len(data), 8):
        batch = data.batch(list(range(start, min(start + 8, len(data)))))
        expected, got = built.outputs(batch).maps, read.outputs(batch).maps
        torch.testing.assert_close(got, expected, rtol=1e-6, atol=0)
        assert torch.equal(got.argsort(dim=-1, stable=True), expected.argsort(dim=-1, stable=True))
        moved += int((got != unshuffled.outputs(batch).maps).any(dim=(1, 2)).sum())
    assert moved > len(data) // 2  # the control really permutes
    with pytest.raises(ak.InvalidInputError, match="different options"):  # another seed's shuffled cache
        TeacherCache.open(tmp_path / "shuffled.pt", data=data, loss_fn=AttributionLoss(teacher_shuffle=4))


def test_one_cache_of_teacher_maps_serves_every_distance(student_teacher, checkpoint_dir, glue, tmp_path, monkeypatch):
    """The distance compares maps and never changes them: a cosine run reuses the reference (MSE) cache, and a
    cache built when the distance was part of its key still serves."""
    student, teacher = student_teacher(2)
    tokenizer = ak.load_classifier(checkpoint_dir("bert", 2), device="cpu").tokenizer
    data = encode_examples(tokenizer, load_examples(get_task("sst2"), "train", data_dir=glue))
    path = tmp_path / "maps.pt"
    built = TeacherCache.build(path, teacher, data, AttributionLoss(), batch_size=5)
    cosine = AttributionLoss(distance="cosine")
    calls = []
    monkeypatch.setattr(AttributionLoss, "teacher_maps", lambda *a: calls.append(a))
    again = TeacherCache.build(path, teacher, data, cosine, batch_size=5)
    assert calls == [] and torch.equal(again.maps, built.maps)  # reused, not recomputed
    assert torch.equal(TeacherCache.open(path, data=data, loss_fn=cosine).maps, built.maps)
    monkeypatch.undo()
    live = attribution_gap(student, teacher, data, loss_fn=cosine)
    assert 0.01 < live < 2.0  # 1 - cos per view, summed over the two views at most
    assert attribution_gap(student, again, data, loss_fn=cosine) == pytest.approx(live, rel=1e-5)
    blob = torch.load(path, weights_only=True)
    blob["key"] = json.dumps({**json.loads(blob["key"]), "options": {**cosine.map_options(), "distance": "cosine"}})
    torch.save(blob, tmp_path / "old.pt")  # as a cosine build keyed it before
    assert torch.equal(TeacherCache.open(tmp_path / "old.pt", data=data, loss_fn=AttributionLoss()).maps, built.maps)
    with pytest.raises(ak.InvalidInputError, match="different options"):  # the maps' own options still count
        TeacherCache.open(path, data=data, loss_fn=AttributionLoss(distance="cosine", top_k=3))


def test_the_attribution_gap_from_a_cache_is_the_gap_from_the_teacher(student_teacher, checkpoint_dir, glue, tmp_path):
    student, teacher = student_teacher(2)
    tokenizer = ak.load_classifier(checkpoint_dir("bert", 2), device="cpu").tokenizer
    dev = encode_examples(tokenizer, load_examples(get_task("sst2"), "dev", data_dir=glue))
    loss_fn = AttributionLoss(teacher_options={"steps": 4})
    cache = TeacherCache.build(tmp_path / "dev.pt", teacher, dev, loss_fn, batch_size=5)
    live = attribution_gap(student, teacher, dev, loss_fn=loss_fn)
    assert live > 0.01
    # the cache stores float32 maps of this float64 teacher
    assert attribution_gap(student, cache, dev, loss_fn=loss_fn) == pytest.approx(live, rel=1e-6)
    with pytest.raises(ak.InvalidInputError, match="other options"):
        attribution_gap(student, cache, dev, loss_fn=AttributionLoss())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--teacher", "T", "--teacher-cache", "C"], "give exactly one of --teacher CKPT or --teacher-cache FILE"),
        ([], "give exactly one of --teacher CKPT or --teacher-cache FILE"),
        (["--teacher-cache", "C", "--objective", "kd+iit"], "iit runs the teacher on every step"),
        (["--teacher-cache", "C", "--no-cache"], "--no-cache with --teacher-cache"),
        (["--teacher-cache", "C", "--ig-steps", "2"], "computed for a different options"),
        (["--teacher-cache", "C", "--max-length", "8"], "computed for a different data"),
        (["--teacher-cache", "LOGITS"], "holds logits only"),
        (["--teacher-cache", "SHORT"], "holds only the examples of a shorter run"),
        (["--teacher-cache", "missing.pt"], "no teacher cache at"),
    ],
)
def test_what_a_cache_cannot_stand_in_for_is_one_clear_error(checkpoint_dir, glue, tmp_path_factory, args, message):
    teacher = ak.load_classifier(checkpoint_dir("bert", 2), device="cpu")
    data = encode_examples(teacher.tokenizer, load_examples(get_task("sst2"), "train", data_dir=glue))
    folder = tmp_path_factory.mktemp("caches")
    files = {
        "T": checkpoint_dir("bert", 2),
        "C": folder / "maps.pt",
        "LOGITS": folder / "logits.pt",
        "SHORT": folder / "short.pt",
        "missing.pt": folder / "missing.pt",
    }
    TeacherCache.build(files["C"], teacher.model, data, AttributionLoss())
    TeacherCache.build(files["LOGITS"], teacher.model, data, None)
    TeacherCache.build(files["SHORT"], teacher.model, data, AttributionLoss(), examples=range(8))
    out = folder / "out"
    code, output = distill(*[files.get(a, a) for a in args], *student_args(checkpoint_dir, glue, out))
    assert code != 0 and message in output, output
    assert "Traceback" not in output and not out.exists()


def test_a_student_copied_from_the_teachers_layers_needs_the_teacher(checkpoint_dir, glue, tmp_path):
    teacher = ak.load_classifier(checkpoint_dir("bert", 2), device="cpu")
    data = encode_examples(teacher.tokenizer, load_examples(get_task("sst2"), "train", data_dir=glue))
    TeacherCache.build(tmp_path / "c.pt", teacher.model, data, AttributionLoss())
    args = ["--teacher-cache", tmp_path / "c.pt", "--student-layers", "0", "--task", "SST-2"]
    code, output = distill(*args, "--data-dir", glue, "--out", tmp_path / "o", "--max-steps", "1")
    assert code != 0 and "copies the teacher's layers: give --teacher" in output


def test_a_resumed_cache_run_refuses_the_teacher_in_its_place(checkpoint_dir, glue, tmp_path):
    teacher = ak.load_classifier(checkpoint_dir("bert", 2), device="cpu")
    data = encode_examples(teacher.tokenizer, load_examples(get_task("sst2"), "train", data_dir=glue))
    TeacherCache.build(tmp_path / "c.pt", teacher.model, data, AttributionLoss())
    out = tmp_path / "run"
    code, output = distill("--teacher-cache", tmp_path / "c.pt", *student_args(checkpoint_dir, glue, out))
    assert code == 0, output
    code, output = distill("--teacher", checkpoint_dir("bert", 2), *student_args(checkpoint_dir, glue, out), "--resume")
    assert code != 0 and "--resume with different settings" in output


def test_a_run_from_another_glue_copy_or_tokenizer_is_refused_by_the_key(checkpoint_dir, tmp_path):
    glue = write_tiny_glue(tmp_path / "glue")
    teacher = ak.load_classifier(checkpoint_dir("bert", 2), device="cpu")
    data = encode_examples(teacher.tokenizer, load_examples(get_task("sst2"), "train", data_dir=glue))
    TeacherCache.build(tmp_path / "c.pt", teacher.model, data, AttributionLoss())
    rows = (glue / "SST-2" / "train.tsv").read_text().splitlines()
    (glue / "SST-2" / "train.tsv").write_text("\n".join([rows[0], *rows[2:]]) + "\n")  # one sentence fewer
    code, output = distill("--teacher-cache", tmp_path / "c.pt", *student_args(checkpoint_dir, glue, tmp_path / "o"))
    assert code != 0 and "computed for a different data" in output

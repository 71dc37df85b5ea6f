"""finetune / distill / evaluate commands, exact resume after SIGKILL, the teacher cache, learning."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from tiny_glue import write_tiny_glue
from typer.testing import CliRunner

import attribkit as ak
from attribkit.cli import _load_plugins, app
from attribkit_distill import AttributionLoss, DistillationObjective, KDLoss
from attribkit_distill.cache import TeacherCache
from attribkit_distill.data import encode_examples, epoch_batches
from attribkit_distill.tasks import get_task, load_examples

_load_plugins()
runner = CliRunner()


@pytest.fixture(scope="module")
def glue(tmp_path_factory) -> Path:
    return write_tiny_glue(tmp_path_factory.mktemp("glue"))


def invoke(*args: str) -> str:
    result = runner.invoke(app, [*map(str, args)])
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def log(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]
    for row in rows:
        row.pop("seconds", None)
    return rows


def test_finetune_then_evaluate(checkpoint_dir, glue, tmp_path):
    out = tmp_path / "teacher"
    invoke(
        "finetune",
        "--model",
        checkpoint_dir("bert", 2),
        "--task",
        "SST-2",
        "--data-dir",
        glue,
        "--out",
        out,
        "--max-steps",
        8,
        "--batch-size",
        8,
        "--eval-every",
        4,
        "--lr",
        1e-3,
        "--no-progress",
    )
    results = json.loads((out / "results.json").read_text())
    assert results["step"] == 8 and [r["step"] for r in log(out)] == [4, 8]
    assert not (out / "checkpoint").exists()  # finished runs drop their checkpoint
    clf = ak.load_classifier(out, device="cpu")
    assert clf.labels == ("negative", "positive")
    output = invoke("evaluate", "--model", out, "--task", "sst2", "--data-dir", glue, "--json", tmp_path / "m.json")
    best = results["best"]["dev/accuracy"]
    assert f"dev/accuracy\t{best:.2f}" in output
    assert json.loads((tmp_path / "m.json").read_text())["dev/accuracy"] == pytest.approx(best, abs=1e-3)


@pytest.mark.parametrize(
    ("task", "labels", "objective"),
    [("SST-2", 2, "adkd"), ("MNLI", 3, "adkd"), ("STS-B", 1, "adkd"), ("SST-2", 2, "kd")],
)
def test_distill_runs_for_every_kind_of_task(checkpoint_dir, glue, tmp_path, task, labels, objective):
    out = tmp_path / "student"
    invoke(
        "distill",
        "--teacher",
        checkpoint_dir("bert", labels),
        "--task",
        task,
        "--data-dir",
        glue,
        "--out",
        out,
        "--student-layers",
        "1",
        "--objective",
        objective,
        "--max-steps",
        4,
        "--batch-size",
        8,
        "--no-progress",
    )
    run = json.loads((out / "run.json").read_text())
    results = json.loads((out / "results.json").read_text())
    student = ak.load_classifier(out, device="cpu").model
    assert student.config.num_hidden_layers == 1 and student.config.num_labels == labels
    terms = set(log(out)[-1]["train"])
    assert terms == (
        {"total", "kd", "attr"} | ({"ce"} if run["loss"]["alpha"] < 1 else set())
        if objective == "adkd"
        else {"total", "kd", "ce"}
    )
    if task == "MNLI":
        assert {"dev_matched/accuracy", "dev_mismatched/accuracy", "score"} == set(results["best"])
    if task == "STS-B":  # the paper's preset: K = 640 of 768 dims, scaled to the tiny width of 16
        assert run["loss"]["attribution"]["top_k"] == 13 and run["loss"]["alpha"] == 0.8


def test_distill_from_a_student_checkpoint_without_cache(checkpoint_dir, glue, tmp_path):
    out = tmp_path / "s"
    invoke(
        "distill",
        "--teacher",
        checkpoint_dir("bert", 2),
        "--student-init",
        checkpoint_dir("bert", 2, seed=1, layers=1),
        "--task",
        "sst2",
        "--data-dir",
        glue,
        "--out",
        out,
        "--max-steps",
        3,
        "--no-cache",
        "--alpha",
        0.5,
        "--beta",
        3,
        "--temperature",
        2,
        "--no-progress",
    )
    assert not (out / "teacher_cache.pt").exists()
    assert json.loads((out / "run.json").read_text())["loss"]["beta"] == 3.0


def _train_args(checkpoint_dir, glue, out: Path) -> list[str]:
    return [
        "distill",
        "--teacher",
        str(checkpoint_dir("bert", 2)),
        "--student-layers",
        "0",
        "--task",
        "SST-2",
        "--data-dir",
        str(glue),
        "--out",
        str(out),
        "--max-steps",
        "12",
        "--batch-size",
        "8",
        "--save-every",
        "3",
        "--eval-every",
        "2",
        "--no-progress",
    ]


KILLER = """
import os, signal, sys
import attribkit_distill.training_loop as train
step, done = train._step, []
def killing_step(*args, **kwargs):
    result = step(*args, **kwargs)
    done.append(1)
    if len(done) == 7:
        os.kill(os.getpid(), signal.SIGKILL)  # after step 7; the last checkpoint is step 6
    return result
train._step = killing_step
sys.argv = ["attribkit", *sys.argv[1:]]
from attribkit.cli import main
main()
"""


def test_a_run_killed_with_sigkill_resumes_exactly(checkpoint_dir, glue, tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    invoke(*_train_args(checkpoint_dir, glue, whole))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run(
        [sys.executable, "-c", KILLER, *_train_args(checkpoint_dir, glue, killed)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -9, proc.stderr
    state = json.loads((killed / "checkpoint" / "state.json").read_text())
    assert state["step"] == 6 and not (killed / "results.json").exists()
    assert [r["step"] for r in log(killed) if "dev" in r] == [2, 4, 6]  # step 7 was lost, nothing after it written
    with pytest.raises(AssertionError):  # without --resume the folder is refused
        invoke(*_train_args(checkpoint_dir, glue, killed))
    invoke(*_train_args(checkpoint_dir, glue, killed), "--resume")
    assert log(killed) == log(whole)
    a, b = load_file(str(whole / "model.safetensors")), load_file(str(killed / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_resume_with_other_settings_is_refused(checkpoint_dir, glue, tmp_path):
    out = tmp_path / "r"
    invoke(*_train_args(checkpoint_dir, glue, out))
    result = runner.invoke(app, [*_train_args(checkpoint_dir, glue, out)[:-1], "--lr", "0.1", "--resume"])
    assert result.exit_code != 0 and "different settings" in str(result.exception)


def test_teacher_cache_gives_the_same_loss_and_refuses_other_teachers(student_teacher, checkpoint_dir, glue, tmp_path):
    student, teacher = student_teacher(2)
    tokenizer = ak.load_classifier(checkpoint_dir("bert", 2), device="cpu").tokenizer
    data = encode_examples(tokenizer, load_examples(get_task("sst2"), "train", data_dir=glue))
    loss_fn = AttributionLoss(top_k=9)
    path = tmp_path / "cache.pt"
    cache = TeacherCache.build(path, teacher, data, loss_fn, batch_size=5)
    objective = DistillationObjective(alpha=0.6, beta=2.0, kd=KDLoss(2.0), attribution=loss_fn)
    batch = dict(data.batch([3, 10, 0, 7]).items())
    on_the_fly = objective(student, teacher, batch)
    from_cache = objective(student, None, batch, teacher_outputs=cache.outputs(batch))
    for name in ("kd", "ce", "attr"):
        assert from_cache.terms[name].item() == pytest.approx(on_the_fly.terms[name].item(), rel=1e-6), name
    assert TeacherCache.load(path, teacher=teacher, data=data, loss_fn=AttributionLoss(top_k=9)).views == 1
    with pytest.raises(ak.InvalidInputError, match="different options"):
        TeacherCache.load(path, teacher=teacher, data=data, loss_fn=AttributionLoss(top_k=8))
    with pytest.raises(ak.InvalidInputError, match="different teacher"):
        TeacherCache.load(path, teacher=student_teacher(2)[0], data=data, loss_fn=loss_fn)
    other = encode_examples(tokenizer, load_examples(get_task("sst2"), "dev", data_dir=glue))
    with pytest.raises(ak.InvalidInputError, match="different data"):
        TeacherCache.load(path, teacher=teacher, data=other, loss_fn=loss_fn)
    mtime = path.stat().st_mtime_ns
    TeacherCache.build(path, teacher, data, loss_fn)  # same key: reused, not recomputed
    assert path.stat().st_mtime_ns == mtime


def test_a_teacher_cache_is_reused_for_the_same_teacher_in_another_folder(checkpoint_dir, glue, tmp_path):
    from attribkit_distill.cache_key import model_fingerprint

    source = checkpoint_dir("bert", 2)
    copy = tmp_path / "moved" / "teacher"
    shutil.copytree(source, copy)
    teacher, moved = (ak.load_classifier(p, device="cpu") for p in (source, copy))
    assert moved.model.config._name_or_path != teacher.model.config._name_or_path
    assert model_fingerprint(moved.model) == model_fingerprint(teacher.model)
    data = encode_examples(teacher.tokenizer, load_examples(get_task("sst2"), "train", data_dir=glue))
    path = tmp_path / "cache.pt"
    TeacherCache.build(path, teacher.model, data, AttributionLoss())
    mtime = path.stat().st_mtime_ns
    TeacherCache.build(path, moved.model, data, AttributionLoss())  # the same weights: reused
    assert path.stat().st_mtime_ns == mtime
    with torch.no_grad():
        moved.model.classifier.bias.add_(1e-6)  # other weights: recomputed
    TeacherCache.build(path, moved.model, data, AttributionLoss())
    assert path.stat().st_mtime_ns != mtime


def test_a_short_run_caches_only_the_examples_it_visits(student_teacher, checkpoint_dir, glue, tmp_path):
    out = tmp_path / "short"
    invoke(*_train_args(checkpoint_dir, glue, out)[:-9], "--max-steps", 2, "--batch-size", 8, "--no-progress")
    blob = torch.load(out / "teacher_cache.pt", weights_only=True)
    visited = sorted(i for batch in epoch_batches(48, 8, seed=42, epoch=0)[:2] for i in batch)  # 48 train sentences
    assert blob["covered"].nonzero().flatten().tolist() == visited and len(visited) == 16
    assert blob["logits"][blob["covered"]].isfinite().all() and blob["logits"][~blob["covered"]].isnan().all()
    # the subset cache gives exactly what the whole cache gives on its examples, and refuses the others
    _, teacher = student_teacher(2)
    tokenizer = ak.load_classifier(checkpoint_dir("bert", 2), device="cpu").tokenizer
    data = encode_examples(tokenizer, load_examples(get_task("sst2"), "train", data_dir=glue))
    loss_fn = AttributionLoss(top_k=9)
    whole = TeacherCache.build(tmp_path / "whole.pt", teacher, data, loss_fn, batch_size=5)
    part = TeacherCache.build(tmp_path / "part.pt", teacher, data, loss_fn, batch_size=5, examples=visited)
    batch = dict(data.batch(visited[:5]).items())
    torch.testing.assert_close(part.outputs(batch).logits, whole.outputs(batch).logits, rtol=0, atol=0)
    torch.testing.assert_close(part.outputs(batch).maps, whole.outputs(batch).maps, rtol=0, atol=0)
    unvisited = next(i for i in range(48) if i not in visited)
    with pytest.raises(ak.InvalidInputError, match="shorter run"):
        part.outputs(dict(data.batch([visited[0], unvisited]).items()))
    with pytest.raises(ak.InvalidInputError, match="different examples"):
        TeacherCache.load(tmp_path / "part.pt", teacher=teacher, data=data, loss_fn=loss_fn)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-steps", "0"], "max_steps (--max-steps) must be at least 1; got 0"),
        (["--epochs", "0"], "epochs (--epochs) must be a positive number; got 0.0"),
        (["--batch-size", "0"], "batch_size (--batch-size) must be at least 1; got 0"),
    ],
)
def test_a_run_of_no_steps_is_refused_before_any_work(checkpoint_dir, glue, tmp_path, args, message):
    result = runner.invoke(app, [*_train_args(checkpoint_dir, glue, tmp_path / "o")[:-9], *args, "--no-progress"])
    assert isinstance(result.exception, ak.OptionError) and str(result.exception) == message
    assert not (tmp_path / "o").exists()


def test_two_hundred_steps_of_adkd_lower_the_attribution_and_kd_losses(student_teacher, checkpoint_dir, glue):
    student, teacher = student_teacher(2)
    student.train()
    tokenizer = ak.load_classifier(checkpoint_dir("bert", 2), device="cpu").tokenizer
    data = encode_examples(tokenizer, load_examples(get_task("sst2"), "train", data_dir=glue))
    objective = DistillationObjective(alpha=1.0, beta=10.0, kd=KDLoss(2.0), attribution=AttributionLoss(top_k=12))
    optimizer = torch.optim.AdamW(student.parameters(), lr=3e-4)
    probe = data.batch(list(range(len(data))))

    def measure() -> tuple[float, float]:
        student.eval()
        terms = objective(student, teacher, probe).terms
        student.train()
        return terms["attr"].item(), terms["kd"].item()

    torch.manual_seed(0)
    attr_before, kd_before = measure()
    for step in range(200):
        batch = data.batch([(step * 8 + i) % len(data) for i in range(8)])
        objective(student, teacher, batch).total.backward()
        optimizer.step()
        optimizer.zero_grad()
    attr_after, kd_after = measure()
    assert attr_after < 0.5 * attr_before, (attr_before, attr_after)
    assert kd_after < kd_before, (kd_before, kd_after)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--task", "SST-5"], "unknown task"),
        (["--objective", "xkd"], "unknown --objective"),
        (["--student-init", "x"], "exactly one of --student-init"),
        (["--student-layers", "0,9"], "--student-layers must be distinct indices in 0..1"),
        (["--data-dir", "/nonexistent"], "does not exist"),
    ],
)
def test_bad_distill_input_is_one_clear_error(checkpoint_dir, glue, tmp_path, args, message):
    base = {
        "--teacher": str(checkpoint_dir("bert", 2)),
        "--task": "SST-2",
        "--data-dir": str(glue),
        "--out": str(tmp_path / "o"),
        "--student-layers": "0",
    }
    for flag, value in zip(args[::2], args[1::2]):
        base[flag] = value
    result = runner.invoke(
        app, ["distill", *[x for kv in base.items() for x in kv], "--max-steps", "1", "--no-progress"]
    )
    assert isinstance(result.exception, ak.AttribkitError) and message in str(result.exception)
    assert not (tmp_path / "o" / "results.json").exists()


def test_command_line_errors_exit_2_with_one_line(checkpoint_dir, tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "attribkit.cli",
            "evaluate",
            "--model",
            str(checkpoint_dir("bert", 2)),
            "--task",
            "MNLI",
            "--data-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("error: ") and "needs 3" in proc.stderr


@pytest.mark.parametrize(("task", "labels", "objective"), [("SST-2", 2, "iit"), ("STS-B", 1, "adkd+iit")])
def test_distill_with_interchange_intervention(checkpoint_dir, glue, tmp_path, task, labels, objective):
    out = tmp_path / "student"
    invoke(
        "distill",
        "--teacher",
        checkpoint_dir("bert", labels, layers=4),
        "--task",
        task,
        "--data-dir",
        glue,
        "--out",
        out,
        "--student-layers",
        "0,2",
        "--objective",
        objective,
        "--iit-weight",
        0.5,
        "--iit-span",
        0.4,
        "--max-steps",
        4,
        "--batch-size",
        8,
        "--no-progress",
    )
    run = json.loads((out / "run.json").read_text())
    assert run["loss"]["iit_weight"] == 0.5 and run["loss"]["iit"]["span_fraction"] == 0.4
    terms = set(log(out)[-1]["train"])
    assert "iit" in terms and ("attr" in terms) == objective.startswith("adkd")
    assert log(out)[-1]["train"]["iit"] >= 0


def test_unknown_objective_lists_the_choices(checkpoint_dir, glue, tmp_path):
    result = runner.invoke(
        app,
        [
            "distill",
            "--teacher",
            str(checkpoint_dir("bert", 2)),
            "--task",
            "SST-2",
            "--data-dir",
            str(glue),
            "--out",
            str(tmp_path / "s"),
            "--student-layers",
            "0",
            "--objective",
            "causal",
        ],
    )
    assert result.exit_code != 0 and str(result.exception) == (
        "unknown --objective 'causal': 'causal' is not a term; join registered terms with '+' (adkd, iit, kd), "
        "e.g. kd+adkd+iit"
    )


def test_resume_ignores_display_options_and_path_spellings_but_names_a_real_difference(
    checkpoint_dir, glue, tmp_path, monkeypatch
):
    out = tmp_path / "r"
    invoke(*_train_args(checkpoint_dir, glue, out))
    monkeypatch.chdir(glue.parent)
    same = [a if a != str(glue) else f"./{glue.name}" for a in _train_args(checkpoint_dir, glue, out)]
    same.remove("--no-progress")  # a display option: not a different run
    invoke(*same, "--resume")
    result = runner.invoke(app, [*_train_args(checkpoint_dir, glue, out), "--lr", "0.1", "--resume"])
    assert result.exit_code != 0
    assert "config.learning_rate was" in str(result.exception) and "now 0.1" in str(result.exception)


def test_a_run_that_dies_before_its_first_checkpoint_leaves_no_folder(checkpoint_dir, glue, tmp_path):
    """The folder would otherwise block the rerun with 'already holds a run'."""
    from attribkit_distill.run_folder import clean_failed_start, prepare_out

    clf = ak.load_classifier(checkpoint_dir("bert", 2), device="cpu")
    out = tmp_path / "new"
    assert prepare_out(out, clf.tokenizer, {"command": "finetune"}, resume=False) is True
    clean_failed_start(out, created=True)
    assert not out.exists()
    kept = tmp_path / "kept"  # a folder the user made keeps existing
    kept.mkdir()
    assert prepare_out(kept, clf.tokenizer, {"command": "finetune"}, resume=False) is False
    clean_failed_start(kept, created=False)
    assert (kept / "run.json").is_file()


def test_distill_a_student_made_from_a_pretrained_model(checkpoint_dir, glue, tmp_path):
    out = tmp_path / "pre"
    pretrained = checkpoint_dir("bert", 2, seed=5, layers=2)
    invoke(
        "distill",
        "--teacher",
        checkpoint_dir("bert", 2),
        "--student-from",
        pretrained,
        "--student-layers",
        "1",
        "--task",
        "SST-2",
        "--data-dir",
        glue,
        "--out",
        out,
        "--max-steps",
        "4",
        "--batch-size",
        "8",
        "--no-progress",
    )
    run = json.loads((out / "run.json").read_text())
    assert run["student_from"] == str(pretrained.resolve()) and run["student_layers"] == "1"
    student = ak.load_classifier(out, device="cpu").model
    source = ak.load_classifier(pretrained, device="cpu").model
    assert student.config.num_hidden_layers == 1
    assert not torch.equal(student.classifier.weight, source.classifier.weight)  # a fresh head, then trained
    result = runner.invoke(
        app,
        [
            "distill",
            "--teacher",
            str(checkpoint_dir("bert", 2)),
            "--student-from",
            str(pretrained),
            "--task",
            "SST-2",
            "--data-dir",
            str(glue),
            "--out",
            str(tmp_path / "x"),
        ],
    )
    assert result.exit_code != 0 and "--student-from PRETRAINED takes its layers from --student-layers" in str(
        result.exception
    )


def test_gradient_diagnostics_log_each_terms_push_and_evaluate_reports_the_share(checkpoint_dir, glue, tmp_path):
    out = tmp_path / "diag"
    invoke(*_train_args(checkpoint_dir, glue, out)[:-1], "--diagnose-every", "5", "--no-progress")
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    grads = [r for r in rows if r.get("kind") == "gradients"]
    assert [r["step"] for r in grads] == [1, 5, 10]
    for row in grads:
        g = row["gradients"]
        assert set(g) == {"kd", "ce", "attr", "total", "attr_share"} and all(v >= 0 for v in g.values())
        assert g["attr_share"] == pytest.approx(g["attr"] / (g["kd"] + g["ce"] + g["attr"]), rel=1e-5)
        assert g["total"] <= g["kd"] + g["ce"] + g["attr"] + 1e-6  # the triangle inequality
    results = json.loads((out / "results.json").read_text())
    assert results["best"] and results["last"]  # evaluation rows, not diagnostic rows
    shown = invoke("evaluate", "--model", out, "--task", "SST-2", "--data-dir", glue)
    median = sorted(r["gradients"]["attr_share"] for r in grads)[1]
    assert (
        f"attribution term's share of the gradient norm in training: median {median:.3f} over 3 diagnosed steps"
        in shown
    )


def test_term_gradient_norms_match_a_hand_computed_case():
    from attribkit_distill.training_loop import term_gradient_norms

    model = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 2.0]]))
    x = torch.tensor([[3.0, 4.0]])
    y = model(x).sum()  # 11; d/dw = x = (3, 4): norm 5
    norms = term_gradient_norms(model, {"a": 2 * y, "b": y * y})  # grads (6, 8) -> 10; 2*11*(3, 4) -> 110
    assert norms == pytest.approx({"a": 10.0, "b": 110.0})


def test_a_fixed_subset_seed_trains_every_seed_on_the_same_examples(checkpoint_dir, glue, tmp_path):
    from attribkit_distill.command_setup import load_data as _data
    from attribkit_distill.tasks import get_task

    tokenizer = ak.load_classifier(checkpoint_dir("bert", 2), device="cpu").tokenizer
    spec = get_task("SST-2")
    a, _ = _data(spec, tokenizer, glue, 64, 20, 0)
    b, _ = _data(spec, tokenizer, glue, 64, 20, 0)
    c, _ = _data(spec, tokenizer, glue, 64, 20, 1)
    rows = lambda d: [tuple(x) for x in d.batch(list(range(len(d))))["input_ids"].tolist()]  # noqa: E731
    assert rows(a) == rows(b) and rows(a) != rows(c)
    out = tmp_path / "fixed"
    invoke(
        *_train_args(checkpoint_dir, glue, out)[:-1],
        "--train-limit",
        "20",
        "--subset-seed",
        "0",
        "--seed",
        "3",
        "--no-progress",
    )
    run = json.loads((out / "run.json").read_text())
    assert run["subset_seed"] == 0 and run["train_examples"] == 20 and run["config"]["seed"] == 3


def test_an_unusable_out_is_refused_before_any_model_is_loaded(monkeypatch, checkpoint_dir, glue, tmp_path):
    def no_loading(*args, **kwargs):
        raise AssertionError("a model was loaded before --out was checked")

    monkeypatch.setattr(ak, "load_classifier", no_loading)
    (tmp_path / "file").write_text("not a folder")
    finished = tmp_path / "finished"
    finished.mkdir()
    (finished / "run.json").write_text("{}")
    cases = [
        (tmp_path / "file", f"--out {tmp_path / 'file'} is a file; a run writes a folder there"),
        (finished, f"{finished} already holds a run; pass --resume to continue it or choose another --out"),
    ]
    for out, message in cases:
        for command in (
            _train_args(checkpoint_dir, glue, out),
            ["finetune", "--model", "m", "--task", "SST-2", "--out", str(out)],
        ):
            result = runner.invoke(app, command)
            assert isinstance(result.exception, ak.OptionError) and str(result.exception).startswith(message), (
                result.exception
            )
    assert (tmp_path / "file").read_text() == "not a folder"


@pytest.mark.parametrize(
    ("limit", "expected", "epochs"),
    [
        # 48 examples, batch 8: 6 steps an epoch. 2.5 epochs = 15 steps in 3 epochs: T 4, 2.5, then 1
        (["--epochs", "2.5"], [4.0] * 6 + [2.5] * 6 + [1.0] * 3, 3),
        # a step limit of 9 trains in 2 epochs (not the preset's 6): T 4 for the first, 1 for the second
        (["--max-steps", "9"], [4.0] * 6 + [1.0] * 3, 2),
    ],
)
def test_per_epoch_annealing_steps_at_real_epoch_boundaries(
    monkeypatch, checkpoint_dir, glue, tmp_path, limit, expected, epochs
):
    from attribkit_distill.objective import KDLoss

    used: list[float] = []
    original = KDLoss.temperature_at

    def recording(self, progress, epoch=None):
        used.append(original(self, progress, epoch))
        return used[-1]

    monkeypatch.setattr(KDLoss, "temperature_at", recording)
    args = _train_args(checkpoint_dir, glue, tmp_path / "run")[:-9]
    args += [
        *limit,
        "--batch-size",
        "8",
        "--objective",
        "kd",
        "--temperature",
        "4",
        "--anneal",
        "--anneal-every",
        "epoch",
    ]
    invoke(*args, "--diagnose-every", "0", "--no-progress")
    assert used == expected
    assert json.loads((tmp_path / "run" / "run.json").read_text())["loss"]["epochs"] == epochs


def test_distill_with_another_explanation_signal_records_it_and_caches_it(checkpoint_dir, glue, tmp_path):
    out = tmp_path / "signal"
    args = _train_args(checkpoint_dir, glue, out)[:-9] + ["--max-steps", "2", "--batch-size", "8"]
    signal = ["--teacher-attribution-method", "fast_ig", "--teacher-attribution-option", "steps=4"]
    signal += ["--teacher-attribution-option", "rule=gausslegendre", "--attribution-method", "gradient_x_input"]
    signal += ["--attribution-distance", "cosine", "--teacher-shuffle", "5"]
    invoke(*args, *signal, "--no-progress")
    recorded = json.loads((out / "run.json").read_text())["loss"]["attribution"]
    assert recorded["method"] == "gradient_x_input" and "teacher_method" not in recorded  # fast_ig: the paper's
    assert recorded["teacher_options"] == {"steps": 4, "rule": "gausslegendre"}
    assert recorded["distance"] == "cosine" and recorded["teacher_shuffle"] == 5
    key = json.loads(torch.load(out / "teacher_cache.pt", weights_only=True)["key"])
    # the cache is keyed by the maps' signal (another one recomputes it), not by the distance that compares them
    assert key["options"] == {name: value for name, value in recorded.items() if name != "distance"}


def test_distill_with_attnlrp_maps_on_both_sides_trains_the_student(checkpoint_dir, glue, tmp_path):
    # the student's AttnLRP map in train mode (dropout) through its twin graph, from the command line
    out = tmp_path / "attnlrp"
    args = _train_args(checkpoint_dir, glue, out)[:-9] + ["--max-steps", "2", "--batch-size", "8"]
    invoke(*args, "--attribution-method", "attnlrp", "--teacher-attribution-method", "attnlrp", "--no-progress")
    recorded = json.loads((out / "run.json").read_text())["loss"]["attribution"]
    assert recorded["method"] == "attnlrp" and recorded["teacher_method"] == "attnlrp"
    results = json.loads((out / "results.json").read_text())
    assert results["step"] == 2 and math.isfinite(results["last"]["score"])


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--objective", "kd", "--teacher-shuffle", "1"],
            "--objective kd has no attribution term, so --teacher-shuffle",
        ),
        (["--attribution-method", "occlusion"], "the student's map method 'occlusion' is not differentiable"),
        (["--teacher-attribution-option", "stepz=5"], "teacher_options: fast_ig has no option 'stepz'"),
        (["--teacher-attribution-option", "steps"], "--teacher-attribution-option takes KEY=VALUE"),
        (["--attribution-distance", "kl"], "unknown distance 'kl'"),
    ],
)
def test_bad_signal_flags_are_one_clear_error(checkpoint_dir, glue, tmp_path, extra, message):
    result = runner.invoke(app, [*_train_args(checkpoint_dir, glue, tmp_path / "o")[:-9], *extra, "--no-progress"])
    assert isinstance(result.exception, ak.OptionError) and str(result.exception).startswith(message), result.exception
    assert not (tmp_path / "o").exists()


def test_a_checkpoint_that_does_not_fit_the_model_is_refused(student_teacher, tmp_path):
    from attribkit_distill.checkpoint import load_checkpoint, save_checkpoint

    student, teacher = student_teacher(2)  # 1 layer and 2 layers, same vocabulary
    optimizer = torch.optim.AdamW(student.parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
    save_checkpoint(tmp_path, student, optimizer, scheduler, {"step": 3})
    other_optimizer = torch.optim.AdamW(teacher.parameters())
    other_scheduler = torch.optim.lr_scheduler.LambdaLR(other_optimizer, lambda s: 1.0)
    with pytest.raises(ak.InvalidInputError, match=r"does not fit this model \(missing bert\.encoder\.layer\.1\."):
        load_checkpoint(tmp_path / "checkpoint", teacher, other_optimizer, other_scheduler)
    assert load_checkpoint(tmp_path / "checkpoint", student, optimizer, scheduler)["step"] == 3  # its own model fits

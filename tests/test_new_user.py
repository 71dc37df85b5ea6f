"""What a new user hit in one afternoon, each run as a command in a subprocess (issue 19)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import attribkit as ak

SENTENCES = ["the movie was good", "awful plot", "i love this film", "boring and bad", "a fine story", "never again"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def cli(
    *args: str, cwd: Path | None = None, env: dict | None = None, timeout: int = 180
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "attribkit", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=env or ENV,
    )


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


# ---------------------------------------------------------------- defaults that give faithful maps


def test_fast_ig_without_steps_is_faithful_and_says_what_ran():
    """The shipped model, `--method fast_ig` with no --steps: steps=auto (50 Gauss-Legendre here), complete to 1 %."""
    out = Path(tempfile.mkdtemp()) / "one.jsonl"
    proc = cli(
        "explain",
        "--text",
        "a charming , funny and moving film",
        "--method",
        "fast_ig",
        "--json",
        out,
        env={**ENV, "COLUMNS": "200"},
    )
    assert proc.returncode == 0, proc.stderr
    assert (
        "fast_ig: auto steps (gausslegendre, to 1 % completeness, at most 400; took 50), baseline pad, "
        "layer word_embeddings" in proc.stdout
    )
    assert "warning" not in proc.stderr
    [record] = ak.load(out)
    change = float(record.scores.sum()) - float(record.delta[0])  # F(x) - F(x')
    assert abs(float(record.delta[0])) < 0.01 * abs(change) and record.steps_taken == 50


def test_a_large_completeness_error_warns_once_per_run(checkpoint_dir, tmp_path):
    (tmp_path / "in.txt").write_text("\n".join(f"{SENTENCES[i % 6]} {i}" for i in range(140)) + "\n")
    proc = cli(
        "explain",
        "--model",
        checkpoint_dir("bert", 2),
        "--input",
        tmp_path / "in.txt",
        "--out",
        tmp_path / "o.jsonl",
        "--method",
        "fast_ig",
        "--steps",
        "1",
        "--no-progress",
    )
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if "completeness error" in line]
    assert len(warnings) == 1 and warnings[0].startswith("warning: completeness error above 10%")
    assert "of 140 input(s) (fast_ig, 1 step); worst: input " in warnings[0]  # one warning for all the chunks
    assert warnings[0].endswith(
        "those maps do not add up to the output change: try steps=50 (--steps 50) or steps='auto' (--steps auto)"
    )


# ---------------------------------------------------------------- resume never mixes runs


@pytest.mark.slow
def test_resume_refuses_another_method_model_or_input_and_accepts_the_same_run(checkpoint_dir, tmp_path):
    slow_model = str(checkpoint_dir("bert", 2, layers=4))
    texts = [f"{SENTENCES[i % 6]} {'very ' * (i % 5)}{i % 7}" for i in range(300)]
    (tmp_path / "in.txt").write_text("\n".join(texts) + "\n")
    (tmp_path / "other.txt").write_text("\n".join(reversed(texts)) + "\n")  # same length, other inputs
    out = tmp_path / "maps.jsonl"
    common = ["--out", out, "--method", "integrated_gradients", "--steps", "512", "--batch-size", "4", "--no-progress"]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "attribkit",
            "explain",
            "--model",
            slow_model,
            "--input",
            str(tmp_path / "in.txt"),
            *map(str, common),
        ],
        env=ENV,
        stderr=subprocess.DEVNULL,
    )
    partial = tmp_path / "maps.jsonl.partial"
    deadline = time.time() + 120
    while time.time() < deadline and (not partial.exists() or partial.stat().st_size == 0):
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    done = partial.read_text().count("\n")
    assert 0 < done < len(texts)
    cases = [
        (["--model", slow_model, "--input", tmp_path / "in.txt", *common[:3], "fast_ig", *common[4:]], "method="),
        (["--model", checkpoint_dir("bert", 2), "--input", tmp_path / "in.txt", *common], "model."),
        (["--model", slow_model, "--input", tmp_path / "other.txt", *common], "inputs.sha256="),
        (["--model", slow_model, "--input", tmp_path / "in.txt", *common, "--target", "all"], "targets="),
    ]
    for args, key in cases:
        line = one_error_line(cli("explain", *args, "--resume"))
        assert f"cannot --resume {partial}: it was made with {key}" in line, line
        assert partial.read_text().count("\n") == done  # nothing appended
    # the same run (another batch size changes speed, not results) continues
    resumed = cli(
        "explain",
        "--model",
        slow_model,
        "--input",
        tmp_path / "in.txt",
        *common[:-2],
        "8",
        "--no-progress",
        "--resume",
        timeout=400,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert [r.text for r in ak.load(out)] == texts and not (tmp_path / "maps.jsonl.partial.run.json").exists()


# ---------------------------------------------------------------- errors, not tracebacks


def test_unwritable_outputs_fail_before_any_work(checkpoint_dir, tmp_path, cli_main):
    model = checkpoint_dir("bert", 2)
    (tmp_path / "in.txt").write_text("good\nbad\n")
    for args in (
        ["explain", "--model", model, "--text", "good", "--html", "/proc/attribkit-test.html"],
        ["explain", "--model", model, "--text", "good", "--json", "/proc/attribkit-test.jsonl"],
        ["explain", "--model", model, "--text", "good", "--plot", "/proc/attribkit-test.html"],
        ["explain", "--model", model, "--input", tmp_path / "in.txt", "--out", "/proc/attribkit-test.jsonl"],
        ["faithfulness", "--model", model, "--text", "good", "--json", "/proc/attribkit-test.json"],
        ["compare", "--teacher", model, "--student", model, "--text", "good", "--html", "/proc/attribkit-test.html"],
    ):
        code, _, stderr = cli_main(*args)  # the console entry point, in this process
        assert code == 2 and stderr.count("\n") == 1 and stderr.startswith("error: "), stderr
        assert "/proc/attribkit-test" in stderr and "cannot write there" in stderr, stderr


def test_a_write_that_fails_anyway_leaves_nothing_behind(tmp_path, monkeypatch):
    from attribkit.files import atomic_write_text

    target = tmp_path / "page.html"

    def full_disk(self, *args, **kwargs):
        raise OSError(28, "No space left on device", str(self))

    monkeypatch.setattr(Path, "replace", full_disk)
    with pytest.raises(OSError, match="No space left"):
        atomic_write_text(target, "<html>" * 1000)
    assert list(tmp_path.iterdir()) == []


def test_mistyped_local_checkpoint_fails_fast_with_close_matches(checkpoint_dir, tmp_path):
    import shutil

    (tmp_path / "runs").mkdir()
    shutil.copytree(checkpoint_dir("bert", 2), tmp_path / "runs" / "teacher2")
    # one line and no hub round trip: a mistyped local path never reaches the network (no timing asserted)
    line = one_error_line(cli("explain", "--model", "runs/techer2", "--text", "good", cwd=tmp_path))
    assert line == "error: no such checkpoint directory: runs/techer2 (did you mean runs/teacher2?)"


@pytest.mark.slow
def test_an_unreachable_hub_fails_fast(checkpoint_dir, tmp_path):
    offline = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")  # CI sets them; here the probe decides
    env = {**{k: v for k, v in ENV.items() if k not in offline}, "HF_ENDPOINT": "http://127.0.0.1:9"}  # nothing listens
    # "fast" is checked as behaviour, not by a clock: exactly one stderr line each, so no retry messages
    line = one_error_line(cli("explain", "--model", "someone/no-such-model", "--text", "good", env=env))
    assert "not a local directory, and the Hugging Face Hub (127.0.0.1) cannot be reached" in line
    line = one_error_line(cli("explain", "--dataset", "someone/no-such-data", "--out", "/tmp/x.jsonl", env=env))
    assert "cannot load dataset 'someone/no-such-data'" in line and "cannot be reached" in line
    # the GLUE commands without --data-dir: one line naming the way out, not a dozen "Retrying" lines
    model = checkpoint_dir("bert", 2)
    for command in (["evaluate", "--model", model], ["finetune", "--model", model, "--out", tmp_path / "ft"]):
        line = one_error_line(cli(*command, "--task", "SST-2", env=env))
        assert line.startswith("error: cannot load dataset 'nyu-mll/glue:sst2' split ")
        assert "nyu-mll/glue:sst2" in line and "Hugging Face Hub (127.0.0.1) cannot be reached" in line
        assert line.endswith("; offline, pass --data-dir with a local GLUE copy")
    # with offline mode asked for, the libraries' own offline errors are just as quick
    line = one_error_line(
        cli("explain", "--model", "someone/no-such-model", "--text", "good", env={**env, "HF_HUB_OFFLINE": "1"})
    )
    assert "someone/no-such-model" in line


def test_a_tokenizer_larger_than_the_model_is_refused_at_load(checkpoint_dir, tmp_path):
    import shutil

    from transformers import AutoTokenizer

    folder = tmp_path / "mismatch"
    shutil.copytree(checkpoint_dir("bert", 2), folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.add_tokens([f"newword{i}" for i in range(20)])  # past the model's embedding rows
    tokenizer.save_pretrained(folder)
    line = one_error_line(cli("explain", "--model", folder, "--text", "newword19"))
    assert "the tokenizer has" in line and "embeds only" in line


@pytest.mark.slow
def test_labels_that_are_not_the_models_classes(checkpoint_dir, tmp_path):
    model = checkpoint_dir("bert", 2)  # classes: negative, positive
    (tmp_path / "rte.tsv").write_text(
        "sentence\tlabel\n"
        + "".join(f"{s}\t{'not_entailment' if i % 2 else 'entailment'}\n" for i, s in enumerate(SENTENCES))
    )
    proc = cli(
        "explain",
        "--model",
        model,
        "--input",
        tmp_path / "rte.tsv",
        "--out",
        tmp_path / "a.jsonl",
        "--method",
        "gradient_x_input",
        "--no-progress",
    )
    assert proc.returncode == 0, proc.stderr
    [warning] = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert "6 of 6 gold labels (e.g. 'entailment') are not the model's classes" in warning
    assert all(r.gold is None for r in ak.load(tmp_path / "a.jsonl"))
    line = one_error_line(
        cli(
            "explain",
            "--model",
            model,
            "--input",
            tmp_path / "rte.tsv",
            "--out",
            tmp_path / "b.jsonl",
            "--target",
            "gold",
            "--no-progress",
        )
    )
    assert "label 'entailment', which is not one of the model's classes (negative, positive)" in line
    off = cli(
        "explain",
        "--model",
        model,
        "--input",
        tmp_path / "rte.tsv",
        "--out",
        tmp_path / "c.jsonl",
        "--method",
        "gradient_x_input",
        "--label-column",
        "",
        "--no-progress",
    )
    assert off.returncode == 0 and "warning" not in off.stderr


def test_some_rows_without_a_label_warn_once(checkpoint_dir, tmp_path):
    rows = [{"text": s, **({"label": "positive"} if i % 2 else {})} for i, s in enumerate(SENTENCES)]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    proc = cli(
        "explain",
        "--model",
        checkpoint_dir("bert", 2),
        "--input",
        tmp_path / "in.jsonl",
        "--out",
        tmp_path / "o.jsonl",
        "--method",
        "gradient_x_input",
        "--no-progress",
    )
    assert proc.returncode == 0, proc.stderr
    assert [line for line in proc.stderr.splitlines() if line.startswith("warning:")] == [
        "warning: 3 of 6 inputs have no gold label; the records carry none (--label-column '' turns labels off)"
    ]


def test_warnings_are_one_plain_line(checkpoint_dir):
    proc = cli("explain", "--model", checkpoint_dir("bert", 2), "--text", "good " * 100, "--method", "gradient_x_input")
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("warning: input of 102 tokens truncated to 64"), proc.stderr
    assert ".py" not in proc.stderr


# ---------------------------------------------------------------- what a person reads


def test_terminal_summary_help_and_counts(checkpoint_dir, tmp_path):
    model = checkpoint_dir("bert", 2)
    proc = cli(
        "explain",
        "--model",
        model,
        "--text",
        "the movie was good",
        "--method",
        "gradient_x_input",
        env={**ENV, "COLUMNS": "200"},
    )
    table = proc.stdout.split("top 5 tokens")[1]
    assert "[CLS]" not in table and "[SEP]" not in table and "movie" in table
    assert "method: gradient_x_input: layer word_embeddings, target logit" in proc.stdout
    help_text = cli("explain", "--help", env={**ENV, "COLUMNS": "120"}).stdout
    assert "--resume" in help_text and "<bool>" not in help_text
    (tmp_path / "one.txt").write_text("good\n")
    one = cli(
        "explain",
        "--model",
        model,
        "--input",
        tmp_path / "one.txt",
        "--out",
        tmp_path / "o.jsonl",
        "--method",
        "gradient_x_input",
        "--no-progress",
    )
    assert one.stdout.startswith(f"wrote 1 record to {tmp_path / 'o.jsonl'}")


def test_missing_plotly_js_file_warns(checkpoint_dir, tmp_path):
    model = checkpoint_dir("bert", 2)
    proc = cli(
        "compare",
        "--teacher",
        model,
        "--student",
        model,
        "--text",
        "good",
        "--method",
        "gradient_x_input",
        "--html",
        tmp_path / "r.html",
        "--plotly-js",
        "plotly.min.js",
        "--no-progress",
    )
    assert proc.returncode == 0, proc.stderr
    assert "warning: --plotly-js plotly.min.js: no such file next to" in proc.stderr
    data_proc = cli(
        "compare",
        "--teacher",
        model,
        "--student",
        model,
        "--text",
        "good",
        "--method",
        "gradient_x_input",
        "--json",
        tmp_path / "r.json",
        "--no-progress",
    )
    data = json.loads((tmp_path / "r.json").read_text())
    assert data_proc.returncode == 0 and data["teacher"] == str(model) and data["method"] == "gradient_x_input"
    assert data["options"]["teacher"]["layer"] == "word_embeddings"


def test_training_outputs_that_cannot_be_written_fail_before_any_work(checkpoint_dir, cli_main):
    model = checkpoint_dir("bert", 2)
    for args in (
        ["finetune", "--model", model, "--task", "SST-2", "--out", "/proc/attribkit-test/run"],
        ["distill", "--teacher", model, "--student-layers", "0", "--task", "SST-2", "--out", "/proc/attribkit-test/s"],
        ["evaluate", "--model", model, "--task", "SST-2", "--json", "/proc/attribkit-test.json"],
    ):
        code, _, stderr = cli_main(*args)  # the console entry point, in this process
        assert code == 2 and stderr.count("\n") == 1 and stderr.startswith("error: "), stderr
        assert "/proc/attribkit-test" in stderr and "cannot write there" in stderr, stderr

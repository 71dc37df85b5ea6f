"""Batch explain, compare and faithfulness commands: files in, files out, resume, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from typer.testing import CliRunner

import attribkit as ak
from attribkit.cli import app

runner = CliRunner()
SENTENCES = ["the movie was good", "awful plot", "i love this film", "boring and bad", "a fine story", "never again"]


def run_cli(*args: str, timeout: int = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "attribkit.cli", *args], capture_output=True, text=True, timeout=timeout
    )


def write_inputs(tmp_path):
    files = {
        "in.txt": "\n".join(SENTENCES) + "\n\n",
        "in.tsv": "id\tsentence\tlabel\n" + "".join(f"{i}\t{s}\t{i % 2}\n" for i, s in enumerate(SENTENCES)),
        "in.csv": "review,score\n" + "".join(f'"{s}, really",{i % 2}\n' for i, s in enumerate(SENTENCES)),
        "in.jsonl": "".join(
            json.dumps({"premise": s, "hypothesis": "a film", "label": "positive"}) + "\n" for s in SENTENCES
        ),
    }
    for name, content in files.items():
        (tmp_path / name).write_text(content, encoding="utf-8")
    return tmp_path


def test_batch_formats_columns_and_outputs(checkpoint_dir, tmp_path):
    model = str(checkpoint_dir("bert", 2))
    d = write_inputs(tmp_path)
    cases = [
        ("in.txt", [], "a.jsonl"),
        ("in.tsv", ["--target", "gold"], "b.jsonl"),
        ("in.csv", ["--text-column", "review"], "c.parquet"),
        ("in.jsonl", [], "d.jsonl"),
    ]
    for name, extra, out in cases:
        result = runner.invoke(
            app,
            [
                "explain",
                "--model",
                model,
                "--input",
                str(d / name),
                "--out",
                str(d / out),
                "--method",
                "gradient_x_input",
                "--no-progress",
                *extra,
            ],
        )
        assert result.exit_code == 0, (name, result.output)
        records = ak.load(d / out)
        assert len(records) == len(SENTENCES) and not (d / (out + ".partial")).exists()
    gold = ak.load(d / "b.jsonl")
    assert [r.gold for r in gold] == ["negative", "positive"] * 3 and [r.views[0] for r in gold] == [
        r.gold for r in gold
    ]
    assert ak.load(d / "c.parquet")[0].text == "the movie was good, really"
    pairs = ak.load(d / "d.jsonl")
    assert pairs[0].pair == "a film" and pairs[0].text == SENTENCES[0]  # premise/hypothesis picked up as a pair
    # the same records as the Python API
    direct = ak.explain(ak.load_classifier(model, device="cpu"), SENTENCES, method="gradient_x_input")
    for got, want in zip(ak.load(d / "a.jsonl"), direct):
        assert got.tokens == want.tokens and (abs(got.scores - want.scores) < 1e-6).all()


def test_limit_dataset_and_html(checkpoint_dir, tmp_path):
    model = str(checkpoint_dir("bert", 2))
    d = write_inputs(tmp_path)
    result = runner.invoke(
        app,
        [
            "explain",
            "--model",
            model,
            "--dataset",
            str(d / "in.tsv"),
            "--split",
            "train",
            "--limit",
            "4",
            "--out",
            str(d / "x.jsonl"),
            "--html",
            str(d / "x.html"),
            "--method",
            "occlusion",
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    assert len(ak.load(d / "x.jsonl")) == 4
    assert (d / "x.html").read_text().count("<section") == 4


def _slow_run(model, d, out, *extra):
    return [
        sys.executable,
        "-m",
        "attribkit.cli",
        "explain",
        "--model",
        model,
        "--input",
        str(d / "many.txt"),
        "--out",
        str(out),
        "--method",
        "integrated_gradients",
        "--steps",
        "64",
        "--no-progress",
        *extra,
    ]


@pytest.mark.slow
def test_killed_run_resumes_without_duplicates(checkpoint_dir, tmp_path):
    model = str(checkpoint_dir("bert", 2, layers=4))
    d = tmp_path
    texts = [f"{SENTENCES[i % 6]} {'very ' * (i % 5)}{i % 7}" for i in range(400)]
    (d / "many.txt").write_text("\n".join(texts) + "\n")
    out = d / "many.jsonl"
    proc = subprocess.Popen(_slow_run(model, d, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    partial = d / "many.jsonl.partial"
    deadline = time.time() + 120
    while time.time() < deadline and (not partial.exists() or partial.stat().st_size == 0):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = partial.read_text().count("\n")
    assert 0 < done < len(texts) and not out.exists()  # kept finished work, nothing presented as complete
    with partial.open("a") as fh:
        fh.write('{"schema": 1, "text": "half a li')  # a record cut mid-write
    again = run_cli(
        "explain",
        "--model",
        model,
        "--input",
        str(d / "many.txt"),
        "--out",
        str(out),
        "--method",
        "integrated_gradients",
        "--steps",
        "64",
        "--no-progress",
    )
    assert again.returncode == 2 and "--resume" in again.stderr
    resumed = subprocess.run(_slow_run(model, d, out, "--resume"), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"({done} from the interrupted run)" in resumed.stdout
    records = ak.load(out)
    assert [r.text for r in records] == texts
    clf = ak.load_classifier(model, device="cpu")
    check = ak.explain(clf, [texts[done - 1], texts[done]], method="integrated_gradients", steps=64)
    for got, want in zip(records[done - 1 : done + 1], check):
        assert (abs(got.scores - want.scores) < 1e-5).all()


def test_compare_and_faithfulness_commands(checkpoint_dir, tmp_path):
    d = write_inputs(tmp_path)
    teacher, student = str(checkpoint_dir("bert", 2)), str(checkpoint_dir("bert", 2, seed=1, layers=1))
    result = runner.invoke(
        app,
        [
            "compare",
            "--teacher",
            teacher,
            "--student",
            student,
            "--input",
            str(d / "in.tsv"),
            "--html",
            str(d / "r.html"),
            "--json",
            str(d / "r.json"),
            "--no-figure",
            "--no-progress",
            "--method",
            "gradient_x_input",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "spearman" in result.output and "same prediction" in result.output
    report = json.loads((d / "r.json").read_text())
    assert len(report["examples"]) == 6 and report["examples"][1]["gold"] == "positive"
    assert set(report["summary"]) == {"spearman", "kendall", "top5_overlap", "cosine"}
    assert (d / "r.html").read_text().count('class="ak-record ak-example"') == 6
    result = runner.invoke(
        app,
        [
            "faithfulness",
            "--model",
            teacher,
            "--input",
            str(d / "in.txt"),
            "--method",
            "occlusion",
            "--fractions",
            "0.25,0.5",
            "--json",
            str(d / "f.json"),
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "AOPC" in result.output
    data = json.loads((d / "f.json").read_text())
    assert data["fractions"] == [0.25, 0.5] and len(data["examples"]) == 6
    first = data["examples"][0]
    assert first["aopc_comprehensiveness"] == pytest.approx(sum(first["comprehensiveness"]) / 2)


def test_compare_max_length_explains_what_the_models_see_at_that_length(checkpoint_dir, tmp_path):
    """Students trained at 128 tokens must be compared at 128: predictions and maps follow --max-length."""
    teacher, student = str(checkpoint_dir("bert", 2)), str(checkpoint_dir("bert", 2, seed=1, layers=1))
    text = "the movie was good but " * 6 + "the ending was awful and boring"
    result = runner.invoke(
        app,
        [
            "compare",
            "--teacher",
            teacher,
            "--student",
            student,
            "--text",
            text,
            "--max-length",
            "12",
            "--json",
            str(tmp_path / "c.json"),
            "--no-progress",
            "--method",
            "gradient_x_input",
        ],
    )
    assert result.exit_code == 0, result.output
    example = json.loads((tmp_path / "c.json").read_text())["examples"][0]
    assert len(example["units"]) == 12 and example["units"][-1] == "[SEP]"  # cut to 12 tokens, specials kept
    clf = ak.load_classifier(student, device="cpu")
    want = clf.labels[int(clf.logits(clf.encode([text], max_length=12)).argmax())]
    assert example["student"] == want
    result = runner.invoke(
        app,
        [
            "explain",
            "--model",
            teacher,
            "--text",
            text,
            "--max-length",
            "12",
            "--json",
            str(tmp_path / "e.jsonl"),
            "--method",
            "gradient_x_input",
        ],
    )
    assert result.exit_code == 0, result.output
    assert len(json.loads((tmp_path / "e.jsonl").read_text().splitlines()[0])["tokens"]) == 12
    result = runner.invoke(
        app,
        [
            "faithfulness",
            "--model",
            teacher,
            "--text",
            text,
            "--max-length",
            "12",
            "--json",
            str(tmp_path / "f.json"),
            "--method",
            "gradient_x_input",
            "--fractions",
            "1",
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    [example] = json.loads((tmp_path / "f.json").read_text())["examples"]
    clf = ak.load_classifier(teacher, device="cpu")
    with torch.no_grad():
        probs = torch.softmax(clf.logits(clf.encode([text], max_length=12)).double(), dim=-1)[0]
    assert example["probability"] == pytest.approx(float(probs.max()), abs=1e-6)  # the 12-token input's prediction


def test_single_text_writes_html_json_and_plot(checkpoint_dir, tmp_path):
    result = runner.invoke(
        app,
        [
            "explain",
            "--model",
            str(checkpoint_dir("bert", 2)),
            "--text",
            "a <b>bold</b> film",
            "--method",
            "gradient_x_input",
            "--html",
            str(tmp_path / "e.html"),
            "--json",
            str(tmp_path / "e.jsonl"),
            "--plot",
            str(tmp_path / "e-plot.html"),
        ],
    )
    assert result.exit_code == 0, result.output
    page = (tmp_path / "e.html").read_text()
    assert "&lt;" in page and "<b>bold" not in page
    assert "plotly" in (tmp_path / "e-plot.html").read_text()[:200000].lower()


BAD = [
    (["explain", "--input", "{d}/missing.txt", "--out", "{d}/o.jsonl"], "no such input file"),
    (
        ["explain", "--input", "{d}/empty.txt", "--out", "{d}/o.jsonl"],
        "empty.txt is empty: give a file with one or more inputs",
    ),
    (["explain", "--input", "{d}/in.tsv", "--text-column", "nope", "--out", "{d}/o.jsonl"], "no column 'nope'"),
    (["explain", "--input", "{d}/in.txt", "--out", "{d}/o.csv"], "--out"),
    (["explain", "--input", "{d}/in.txt"], "give --out"),
    (["explain", "--input", "{d}/in.txt", "--text", "hi", "--out", "{d}/o.jsonl"], "exactly one of"),
    (["explain", "--input", "{d}/in.txt", "--target", "gold", "--out", "{d}/o.jsonl"], "needs a label"),
    (["explain", "--input", "{d}/bad.jsonl", "--out", "{d}/o.jsonl"], "not valid JSON"),
    (["explain", "--input", "{d}/in.txt", "--out", "{d}/o.jsonl", "--method", "gradcam"], "unknown method 'gradcam'"),
    (["explain", "--input", "{d}/in.txt", "--out", "{d}/o.jsonl", "--normalize", "zscore"], "unknown normalize"),
    (["explain", "--model", "{d}", "--text", "hi"], "config.json"),
    (["explain", "--dataset", "{d}/nothing-here", "--out", "{d}/o.jsonl"], "cannot load dataset"),
    (["compare", "--teacher", "{m}", "--student", "{m}", "--input", "{d}/in.txt", "--html", "{d}/r.pdf"], "--html"),
    (
        ["compare", "--teacher", "{m}", "--student", "{m}", "--input", "{d}/in.txt", "--plotly-js", "local"],
        "--plotly-js",
    ),
    (["faithfulness", "--input", "{d}/in.txt", "--fractions", "0,2"], "(0, 1]"),
    (["explain", "--text", "hi", "--max-length", "0"], "max_length must be a positive"),
    (
        ["compare", "--teacher", "{m}", "--student", "{m}", "--text", "hi", "--pair", "yo", "--max-length", "4"],
        "needs at least 5 tokens",
    ),
    (["explain", "--text", "hi", "--html", "{d}/no/such/dir/x.html"], "does not exist"),
]


def test_bad_input_is_one_line_exit_2_and_no_output(checkpoint_dir, tmp_path, cli_main):
    """Through the console entry point in-process (the first case also as a real process)."""
    d = write_inputs(tmp_path)
    (d / "empty.txt").write_text("\n  \n")
    (d / "bad.jsonl").write_text('{"text": "ok"}\n{oops\n')
    model = str(checkpoint_dir("bert", 2))
    for number, (args, message) in enumerate(BAD):
        argv = [a.format(d=d, m=model) for a in args]
        if argv[0] != "compare" and "--model" not in argv:
            argv += ["--model", model]
        if number == 0:
            proc = run_cli(*argv)
            code, stderr = proc.returncode, proc.stderr
        else:
            code, _, stderr = cli_main(*argv)
        assert code == 2, (argv, stderr)
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0] and "Traceback" not in stderr, (argv, stderr)
        assert lines[0].startswith("error: ")
        assert not (d / "o.jsonl").exists() and not (d / "o.jsonl.partial").exists()

"""The attribkit command, through typer's runner and as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from attribkit.cli import app

runner = CliRunner()


def test_explain_prints_prediction_and_writes_json(checkpoint_dir, tmp_path):
    out = tmp_path / "r.jsonl"
    result = runner.invoke(
        app,
        [
            "explain",
            "--model",
            str(checkpoint_dir("bert", 2)),
            "--text",
            "the movie was good",
            "--method",
            "fast_ig",
            "--steps",
            "4",
            "--json",
            str(out),
            "--html",
            str(tmp_path / "page.html"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "prediction:" in result.output and "top 5 tokens" in result.output
    record = json.loads(out.read_text().splitlines()[0])
    assert record["tokens"] == ["[CLS]", "the", "movie", "was", "good", "[SEP]"] and record["options"]["steps"] == 4
    # the record and the page name the model that produced them, as the user gave it
    assert record["model"] == str(checkpoint_dir("bert", 2))
    page = (tmp_path / "page.html").read_text()
    assert f'<p class="ak-meta ak-model">model: {checkpoint_dir("bert", 2)}</p>' in page


def test_methods_lists_every_method():
    result = runner.invoke(app, ["methods"])
    assert result.exit_code == 0
    for name in ("fast_ig", "integrated_gradients", "occlusion", "gradient_x_input"):
        assert f"{name}:" in result.output


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "attribkit.cli", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_subprocess_bad_input_is_one_line_exit_2(checkpoint_dir, tmp_path):
    model = str(checkpoint_dir("bert", 2))
    cases = [
        (["explain", "--model", str(tmp_path / "missing"), "--text", "hi"], "no such checkpoint directory"),
        (["explain", "--model", model, "--text", "   "], "empty or whitespace"),
        (["explain", "--model", model, "--text", "good", "--method", "gradcam"], "unknown method 'gradcam'"),
        (["explain", "--model", model, "--text", "good", "--target", "7"], "out of range"),
        (["explain", "--bogus"], "No such option"),
    ]
    for args, message in cases:
        proc = run_cli(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert message in proc.stderr and "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1


def test_subprocess_pair_input(checkpoint_dir):
    proc = run_cli(
        "explain",
        "--model",
        str(checkpoint_dir("bert", 3)),
        "--text",
        "a cat sat",
        "--pair",
        "on the mat",
        "--method",
        "occlusion",
        "--target",
        "all",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("explaining:") == 3


def test_method_options_pass_through_with_o(checkpoint_dir, tmp_path):
    import numpy as np

    import attribkit as ak

    model = str(checkpoint_dir("bert", 2))
    out = tmp_path / "r.jsonl"
    result = runner.invoke(
        app,
        ["explain", "--model", model, "--text", "the movie was good", "--method", "kernel_shap",
         "-o", "n_samples=30", "--option", "seed=3", "-o", "replacement=pad", "--json", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (record,) = ak.load(out)
    assert record.options["n_samples"] == 30 and record.options["seed"] == 3 and record.options["replacement"] == "pad"
    clf = ak.load_classifier(model, device="cpu")
    (want,) = ak.explain(clf, ["the movie was good"], method="kernel_shap", n_samples=30, seed=3, replacement="pad")
    np.testing.assert_allclose(record.scores, want.scores, rtol=1e-6)
    for args, message in (
        (["-o", "bogus=1"], "kernel_shap has no option 'bogus'; it takes: n_samples, seed"),
        (["-o", "n_samples"], "-o/--option takes KEY=VALUE"),
        (["-o", "steps=3"], "give steps with --steps, not -o"),
        (["-o", "n_samples=0"], "n_samples must be a positive integer"),
    ):
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "attribkit",
                "explain",
                "--model",
                model,
                "--text",
                "good",
                "--method",
                "kernel_shap",
                *args,
            ],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_the_command_line_takes_a_methods_own_defaults(monkeypatch, checkpoint_dir, tmp_path):
    """A plugin whose target_fn defaults to prob gets prob from the CLI too, as from the Python API."""
    from types import SimpleNamespace

    import attribkit as ak
    from attribkit.methods.base import METHODS
    from attribkit.methods.gradient import GradientXInput

    class ProbabilityGradient(GradientXInput):
        name = "prob_gradient"

        def __init__(self, classifier, *, layer: str = "embeddings", target_fn: str = "prob") -> None:
            super().__init__(classifier, layer=layer, target_fn=target_fn)

    fake = SimpleNamespace(name="prob_gradient", load=lambda: ProbabilityGradient)
    monkeypatch.setattr("attribkit.registry.entry_points", lambda group: [fake] if group == "attribkit.methods" else [])
    monkeypatch.setattr(METHODS, "_plugins_loaded", False)
    monkeypatch.setattr(METHODS, "_entries", dict(METHODS._entries))
    model = str(checkpoint_dir("bert", 2))
    out = tmp_path / "r.jsonl"
    args = ["explain", "--model", model, "--text", "the movie was good", "--method", "prob_gradient", "--json", out]
    result = runner.invoke(app, [*map(str, args)])
    assert result.exit_code == 0, result.output
    [cli] = ak.load(out)
    [api] = ak.explain(ak.load_classifier(model, device="cpu"), "the movie was good", method="prob_gradient")
    assert cli.options["target_fn"] == api.options["target_fn"] == "prob"
    assert cli.options["layer"] == api.options["layer"] == "embeddings"
    assert abs(cli.scores - api.scores).max() < 1e-6


def test_step_options_answer_in_command_line_terms(checkpoint_dir, tmp_path, cli_main):
    model = str(checkpoint_dir("bert", 2))
    cases = [
        (["--steps", "0"], "error: --steps must be at least 1 (or auto); got 0"),
        (["--method", "fast_ig", "--steps", "-3"], "error: --steps must be at least 1 (or auto); got -3"),
        (["--steps", "1"], "error: --steps 1 needs --method fast_ig (Captum's integrated_gradients takes 2 or more)"),
        (
            ["--method", "occlusion", "--steps", "10"],
            "error: --steps does not apply to occlusion: it takes no integration steps",
        ),
        (
            ["--method", "occlusion", "--layer", "embeddings"],
            "error: --layer does not apply to occlusion: it perturbs tokens, not a layer's output",
        ),
        (
            ["--html", str(tmp_path / "x.html"), "--plot", str(tmp_path / "x.html")],
            "error: --html and --plot both name",
        ),
    ]
    for args, message in cases:
        code, _, stderr = cli_main("explain", "--model", model, "--text", "good", *args)
        assert code == 2 and stderr.startswith(message) and stderr.count("\n") == 1, (args, stderr)
    assert not (tmp_path / "x.html").exists()


def test_a_model_without_a_classification_head_says_what_to_do_on_the_command_line(minilm_path):
    proc = run_cli("compare", "--teacher", str(minilm_path), "--student", str(minilm_path), "--text", "good")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "is not a sequence-classification checkpoint (architectures: BertModel)" in proc.stderr
    assert proc.stderr.rstrip().endswith(
        "fine-tune it first (attribkit finetune), or attach a fresh random head "
        "(num_labels=N in Python, --num-labels N with attribkit explain)"
    )

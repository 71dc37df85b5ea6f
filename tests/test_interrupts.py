"""Ctrl-C (a real SIGINT) stops a command with the "interrupted" line and exit 130, never a silent 0."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from tiny_glue import write_tiny_glue

ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "HF_HUB_OFFLINE": "1"}

INTERRUPT_AT_STEP_7 = """
import os, signal, sys
import attribkit_distill.training_loop as train
step, done = train._step, []
def interrupted_step(*args, **kwargs):
    result = step(*args, **kwargs)
    done.append(1)
    if len(done) == 7:
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C after step 7; the last checkpoint is step 6
    return result
train._step = interrupted_step
sys.argv = ["attribkit", *sys.argv[1:]]
from attribkit.cli import main
main()
"""


def test_sigint_during_batch_explain_says_interrupted_and_exits_130(checkpoint_dir, tmp_path):
    model = str(checkpoint_dir("bert", 2, layers=4))
    texts = [f"the movie was {'very ' * (i % 5)}good {i}" for i in range(300)]
    (tmp_path / "in.txt").write_text("\n".join(texts) + "\n")
    out = tmp_path / "maps.jsonl"
    command = [sys.executable, "-m", "attribkit", "explain", "--model", model, "--input", str(tmp_path / "in.txt")]
    options = ["--out", str(out), "--method", "integrated_gradients", "--steps", "512", "--batch-size", "4"]
    proc = subprocess.Popen([*command, *options, "--no-progress"], env=ENV, stderr=subprocess.PIPE, text=True)
    partial = tmp_path / "maps.jsonl.partial"
    deadline = time.time() + 120
    while time.time() < deadline and (not partial.exists() or partial.stat().st_size == 0):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1].startswith("interrupted: "), stderr
    assert "Traceback" not in stderr
    done = partial.read_text().count("\n")
    assert 0 < done < len(texts) and not out.exists()  # finished work kept, nothing presented as complete


def test_sigint_during_distill_training_says_interrupted_and_exits_130(checkpoint_dir, tmp_path):
    glue = write_tiny_glue(tmp_path / "glue")
    out = tmp_path / "run"
    args = ["distill", "--teacher", str(checkpoint_dir("bert", 2)), "--student-layers", "0", "--task", "SST-2"]
    args += ["--data-dir", str(glue), "--out", str(out), "--max-steps", "12", "--batch-size", "8"]
    args += ["--save-every", "3", "--eval-every", "2", "--no-progress"]
    proc = subprocess.run(
        [sys.executable, "-c", INTERRUPT_AT_STEP_7, *args], env=ENV, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("interrupted: "), proc.stderr
    assert json.loads((out / "checkpoint" / "state.json").read_text())["step"] == 6
    assert not (out / "results.json").exists()


@pytest.mark.parametrize("code", [0, 3])
def test_a_command_exit_code_reaches_the_shell(code):
    """typer returns (not raises) the code of ``raise typer.Exit(code)`` without standalone mode."""
    script = f"""
import sys, typer
from attribkit import cli
@cli.app.command("exit-with")
def exit_with() -> None:
    raise typer.Exit({code})
sys.argv = ["attribkit", "exit-with"]
cli.main()
"""
    proc = subprocess.run([sys.executable, "-c", script], env=ENV, capture_output=True, text=True, timeout=120)
    assert proc.returncode == code, proc.stderr
    assert "interrupted" not in proc.stderr

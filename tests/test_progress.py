"""Progress where no terminal is: plain periodic lines on stderr (logs, CI, nohup), exact rate and ETA."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from tiny_glue import write_tiny_glue

from attribkit.progress import PlainProgress

ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "HF_HUB_OFFLINE": "1", "ATTRIBKIT_PROGRESS_EVERY": "0"}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_plain_lines_every_period_with_rate_and_eta_from_this_runs_work():
    clock, lines = Clock(), []
    plain = PlainProgress(400, "explaining", unit="texts", every=30.0, write=lines.append, clock=clock)
    plain.update(100)  # resumed: 100 done before this run, not counted in the rate; no line before 30 s
    clock.now += 30
    plain.update(100)  # 30 s: the first line
    clock.now += 10
    plain.update(200)  # 40 s, 100 texts in this run: 2.5 texts/s, 200 left: ETA 80 s; but 10 s after a line
    clock.now += 30
    plain.update(200)  # 70 s: 100 texts in 70 s
    clock.now += 5
    plain.update(400, "done")
    plain.finish()
    assert lines == [
        "explaining: 100/400 (25%)",
        "explaining: 200/400 (50%), 1.43 texts/s, ETA 2m 20s",
        "explaining: 400/400 (100%), 4.00 texts/s, done",
    ]


@pytest.mark.slow
def test_batch_explain_and_distill_report_progress_in_plain_lines_when_stderr_is_a_pipe(checkpoint_dir, tmp_path):
    texts = [f"the movie was {'very ' * (i % 4)}good {i}" for i in range(100)]
    (tmp_path / "in.txt").write_text("\n".join(texts) + "\n")
    model = str(checkpoint_dir("bert", 2))
    args = ["explain", "--model", model, "--input", tmp_path / "in.txt", "--out", tmp_path / "o.jsonl"]
    proc = subprocess.run(
        [sys.executable, "-m", "attribkit", *map(str, args), "--method", "gradient_x_input"],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("explaining")]
    assert lines[0] == "explaining o.jsonl: 0/100 (0%)" and lines[-1].startswith("explaining o.jsonl: 100/100 (100%), ")
    assert all(
        re.fullmatch(r"explaining o\.jsonl: \d+/100 \(\d+%\)(, [0-9.]+ texts/s(, ETA .*)?)?", line) for line in lines
    )
    assert "\x1b[" not in proc.stderr  # no terminal control codes in a log
    glue = write_tiny_glue(tmp_path / "glue")
    args = ["distill", "--teacher", model, "--student-layers", "0", "--task", "SST-2", "--data-dir", glue]
    args += ["--out", tmp_path / "run", "--max-steps", "6", "--batch-size", "8"]
    proc = subprocess.run(
        [sys.executable, "-m", "attribkit", *map(str, args)], env=ENV, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    cache = [line for line in proc.stderr.splitlines() if line.startswith("teacher cache: ")]
    steps = [line for line in proc.stderr.splitlines() if line.startswith("SST-2: ")]
    assert cache[-1].startswith("teacher cache: 48/48 (100%)")  # 6 steps of 8 visit all 48 examples once
    assert steps[-1].startswith("SST-2: 6/6 (100%), ") and re.search(r"steps/s, loss [0-9.]+$", steps[-1])

"""Batch explain and faithfulness in two CPU processes over gloo (torchrun), against one process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import attribkit as ak

pytestmark = pytest.mark.slow  # every test starts two processes

SENTENCES = ["the movie was good", "awful plot", "i love this film", "boring and bad", "a fine story", "never again"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def texts(n: int) -> list[str]:
    return [f"{SENTENCES[i % 6]} {'very ' * (i % 5)}{i % 7}" for i in range(n)]


def launch(nproc: int, *args: str, port: int, **popen) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        str(nproc),
        "--master_port",
        str(port),
        "-m",
        "attribkit",
        *args,
    ]
    return subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def kill_tree(pid: int) -> None:
    """SIGKILL a process and every descendant (torchrun's workers live in sessions of their own)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    todo, tree = [pid], []
    while todo:
        tree.append(todo.pop())
        todo.extend(children.get(tree[-1], []))
    for p in tree:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def run(nproc: int, *args: str, port: int, timeout: int = 240) -> subprocess.CompletedProcess:
    proc = launch(nproc, *args, port=port)
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def one_process(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "attribkit", *args], env=ENV, capture_output=True, text=True, timeout=240
    )


def test_two_processes_write_the_same_file_as_one(checkpoint_dir, tmp_path):
    model = str(checkpoint_dir("bert", 3))
    (tmp_path / "in.txt").write_text("\n".join(texts(150)) + "\n")
    common = [
        "explain",
        "--model",
        model,
        "--input",
        str(tmp_path / "in.txt"),
        "--method",
        "fast_ig",
        "--steps",
        "4",
        "--target",
        "all",
        "--no-progress",
    ]
    two = run(2, *common, "--out", str(tmp_path / "two.jsonl"), port=29541)
    assert two.returncode == 0, two.stderr[-3000:]
    assert "from 2 processes" in two.stdout
    one = one_process(*common, "--out", str(tmp_path / "one.jsonl"))
    assert one.returncode == 0, one.stderr
    # every text explained in the same batch as in one process: byte-identical output, in input order
    assert (tmp_path / "two.jsonl").read_bytes() == (tmp_path / "one.jsonl").read_bytes()
    assert [r.text for r in ak.load(tmp_path / "two.jsonl")] == texts(150)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt", "one.jsonl", "two.jsonl"]  # no shard left behind


def test_killed_two_process_run_resumes_every_shard(checkpoint_dir, tmp_path):
    model = str(checkpoint_dir("bert", 2, layers=4))
    (tmp_path / "in.txt").write_text("\n".join(texts(400)) + "\n")
    common = [
        "explain",
        "--model",
        model,
        "--input",
        str(tmp_path / "in.txt"),
        "--method",
        "integrated_gradients",
        "--steps",
        "512",
        "--no-progress",
        "--batch-size",
        "4",
    ]
    out = tmp_path / "maps.jsonl"
    proc = launch(2, *common, "--out", str(out), port=29542)
    shards = [tmp_path / f"maps.jsonl.shard-{r}-of-2.jsonl.partial" for r in (0, 1)]
    deadline = time.time() + 180
    while time.time() < deadline and not all(s.exists() and s.stat().st_size > 0 for s in shards):
        time.sleep(0.05)
    kill_tree(proc.pid)
    proc.communicate()
    done = [s.read_text().count("\n") for s in shards]
    assert all(d > 0 for d in done) and sum(done) < 400 and not out.exists()
    # another process count, or one process, must not touch these shards
    again = run(3, *common, "--out", str(out), "--resume", port=29543)
    assert again.returncode != 0 and "interrupted 2-process run" in again.stderr
    alone = one_process(*common, "--out", str(out), "--resume")
    assert alone.returncode == 2 and "interrupted 2-process run" in alone.stderr
    # the same processes with another method: refused, naming it
    other = run(
        2, *[a if a != "integrated_gradients" else "fast_ig" for a in common], "--out", str(out), "--resume", port=29544
    )
    assert (
        other.returncode != 0 and "method='integrated_gradients'" in other.stderr and "method='fast_ig'" in other.stderr
    )
    resumed = run(2, *common, "--out", str(out), "--resume", port=29545, timeout=400)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    records = ak.load(out)
    assert [r.text for r in records] == texts(400)
    clf = ak.load_classifier(model, device="cpu")
    check = ak.explain(clf, texts(400)[:3] + texts(400)[-3:], method="integrated_gradients", steps=512)
    for got, want in zip(records[:3] + records[-3:], check):
        assert abs(got.scores - want.scores).max() < 1e-5
    assert not list(tmp_path.glob("*.partial*"))


def test_more_processes_than_inputs_is_one_clear_error(checkpoint_dir, tmp_path):
    (tmp_path / "in.txt").write_text("good film\nbad film\n")
    result = run(
        3,
        "explain",
        "--model",
        str(checkpoint_dir("bert", 2)),
        "--input",
        str(tmp_path / "in.txt"),
        "--out",
        str(tmp_path / "o.jsonl"),
        "--no-progress",
        port=29546,
    )
    assert result.returncode != 0
    assert result.stderr.count("error: 3 processes for 2 input(s)") == 1  # said once, by the main process
    assert "attribkit/" not in result.stderr  # torchrun reports the failed workers; no traceback of ours
    assert not list(tmp_path.glob("o.jsonl*"))


def test_faithfulness_in_two_processes_equals_one(checkpoint_dir, tmp_path):
    model = str(checkpoint_dir("bert", 2))
    (tmp_path / "in.txt").write_text("\n".join(texts(30)) + "\n")
    common = [
        "faithfulness",
        "--model",
        model,
        "--input",
        str(tmp_path / "in.txt"),
        "--method",
        "occlusion",
        "--no-progress",
    ]
    two = run(2, *common, "--json", str(tmp_path / "two.json"), port=29547)
    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stdout.count("AOPC") == 1  # only the main process reports
    one = one_process(*common, "--json", str(tmp_path / "one.json"))
    assert one.returncode == 0, one.stderr
    a, b = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("one", "two"))
    assert [e["text"] for e in a["examples"]] == [e["text"] for e in b["examples"]] == texts(30)
    for key in ("aopc_comprehensiveness", "aopc_sufficiency"):
        assert b["summary"][key]["mean"] == pytest.approx(a["summary"][key]["mean"], abs=1e-6)
        assert b["summary"][key]["n"] == 30

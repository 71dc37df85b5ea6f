"""An interrupted teacher cache build continues where it stopped, and gives the uninterrupted cache bit for bit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tiny_glue import write_tiny_glue

import attribkit as ak
from attribkit_distill import AttributionLoss
from attribkit_distill.cache import TeacherCache, progress_path
from attribkit_distill.data import encode_examples
from attribkit_distill.tasks import get_task, load_examples


@pytest.fixture
def setting(checkpoint_dir, tmp_path):
    """A float64 teacher and 48 SST-2 training sentences (10 batches of 5)."""
    glue = write_tiny_glue(tmp_path / "glue")
    clf = ak.load_classifier(checkpoint_dir("bert", 2), device="cpu")
    data = encode_examples(clf.tokenizer, load_examples(get_task("sst2"), "train", data_dir=glue))
    return clf.model.double().eval(), data


class Calls:
    """Counts ``AttributionLoss.teacher_maps`` calls and raises ``error`` on call ``fail_at``."""

    def __init__(self, monkeypatch, fail_at: int | None = None, error: type[BaseException] = KeyboardInterrupt):
        self.count, original = 0, AttributionLoss.teacher_maps

        def counted(loss, teacher, batch):
            self.count += 1
            if self.count == fail_at:
                raise error("interrupted in the middle of the build")
            return original(loss, teacher, batch)

        monkeypatch.setattr(AttributionLoss, "teacher_maps", counted)


def assert_same_cache(a: TeacherCache, b: TeacherCache) -> None:
    assert a.key == b.key and a.views == b.views
    for name in ("logits", "lengths", "maps", "offsets"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name


def test_ctrl_c_saves_the_batches_done_and_the_next_build_computes_only_the_rest(setting, monkeypatch, tmp_path):
    teacher, data = setting
    loss_fn = AttributionLoss(teacher_options={"steps": 4})
    reference = TeacherCache.build(tmp_path / "whole.pt", teacher, data, loss_fn, batch_size=5, checkpoint_seconds=None)
    path = tmp_path / "cache.pt"
    calls = Calls(monkeypatch, fail_at=4)
    with pytest.raises(KeyboardInterrupt):
        TeacherCache.build(path, teacher, data, loss_fn, batch_size=5, checkpoint_seconds=3600)
    assert not path.exists()
    saved = torch.load(progress_path(path), weights_only=True)
    assert len(saved["examples"]) == 15 and saved["logits"].shape == (15, 2)  # batches 1-3 of 10
    calls = Calls(monkeypatch)
    resumed = TeacherCache.build(path, teacher, data, loss_fn, batch_size=5)
    assert calls.count == 7  # batches 4-10 only
    assert_same_cache(resumed, reference)
    assert_same_cache(TeacherCache._read(path), reference)
    assert not progress_path(path).exists()  # a finished build leaves no progress behind


def test_a_killed_build_resumes_from_its_last_periodic_save(setting, monkeypatch, tmp_path):
    teacher, data = setting
    loss_fn = AttributionLoss()
    reference = TeacherCache.build(tmp_path / "whole.pt", teacher, data, loss_fn, batch_size=5, checkpoint_seconds=None)
    path = tmp_path / "cache.pt"
    Calls(monkeypatch, fail_at=7, error=RuntimeError)  # not Ctrl-C: only the periodic saves survive
    with pytest.raises(RuntimeError):
        TeacherCache.build(path, teacher, data, loss_fn, batch_size=5, checkpoint_seconds=0)
    assert len(torch.load(progress_path(path), weights_only=True)["examples"]) == 30
    calls = Calls(monkeypatch)
    assert_same_cache(TeacherCache.build(path, teacher, data, loss_fn, batch_size=5), reference)
    assert calls.count == 4


@pytest.mark.parametrize(
    ("other_loss", "other_batch"),
    [(AttributionLoss(top_k=3), 5), (AttributionLoss(), 6)],
    ids=["another key", "another batch size"],
)
def test_progress_of_another_build_is_computed_over(setting, monkeypatch, tmp_path, other_loss, other_batch):
    teacher, data = setting
    path = tmp_path / "cache.pt"
    Calls(monkeypatch, fail_at=5)
    with pytest.raises(KeyboardInterrupt):
        TeacherCache.build(path, teacher, data, AttributionLoss(), batch_size=5)
    assert progress_path(path).is_file()
    calls = Calls(monkeypatch)
    built = TeacherCache.build(path, teacher, data, other_loss, batch_size=other_batch)
    assert calls.count == -(-48 // other_batch)  # every batch computed
    fresh = TeacherCache.build(tmp_path / "fresh.pt", teacher, data, other_loss, batch_size=other_batch)
    assert_same_cache(built, fresh)


def test_an_unreadable_progress_file_is_computed_over(setting, monkeypatch, tmp_path):
    teacher, data = setting
    path = tmp_path / "cache.pt"
    progress_path(path).write_bytes(b"torn copy")
    calls = Calls(monkeypatch)
    TeacherCache.build(path, teacher, data, AttributionLoss(), batch_size=5)
    assert calls.count == 10 and not progress_path(path).exists()


INTERRUPT_IN_THE_CACHE = """
import os, signal, sys
from attribkit_distill import AttributionLoss
original, calls = AttributionLoss.teacher_maps, []
def counted(loss, teacher, batch):
    calls.append(1)
    if len(calls) == int(os.environ["SIGINT_AT"]):
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while the teacher cache is being built
    return original(loss, teacher, batch)
AttributionLoss.teacher_maps = counted
import atexit
atexit.register(lambda: print(f"teacher batches: {len(calls)}", file=sys.stderr))
sys.argv = ["attribkit", *sys.argv[1:]]
from attribkit.cli import main
main()
"""


def test_ctrl_c_in_the_cache_build_of_distill_keeps_the_work_and_resume_continues_it(checkpoint_dir, tmp_path):
    glue = write_tiny_glue(tmp_path / "glue", train=200)  # 4 cache batches of 64
    args = ["distill", "--teacher", str(checkpoint_dir("bert", 2)), "--student-layers", "0", "--task", "SST-2"]
    args += ["--data-dir", str(glue), "--max-steps", "2", "--batch-size", "100", "--no-progress"]
    args += ["--teacher-attribution-option", "steps=4"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "HF_HUB_OFFLINE": "1"}

    def distill(out: Path, *extra: str, sigint_at: int = 0) -> subprocess.CompletedProcess:
        command = [sys.executable, "-c", INTERRUPT_IN_THE_CACHE, *args, "--out", str(out), *extra]
        run_env = {**env, "SIGINT_AT": str(sigint_at)}
        return subprocess.run(command, env=run_env, capture_output=True, text=True, timeout=300)

    whole = distill(tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr
    assert "teacher batches: 4" in whole.stderr
    out = tmp_path / "stopped"
    stopped = distill(out, sigint_at=3)
    assert stopped.returncode == 130, stopped.stderr
    assert "interrupted" in stopped.stderr and "--resume" in stopped.stderr
    assert len(torch.load(out / "teacher_cache.pt.progress", weights_only=True)["examples"]) == 128
    refused = distill(out)
    assert refused.returncode != 0 and "pass --resume" in refused.stderr
    resumed = distill(out, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "teacher batches: 2" in resumed.stderr  # the two batches the interruption left
    assert not (out / "teacher_cache.pt.progress").exists()
    a, b = (torch.load(p / "teacher_cache.pt", weights_only=True) for p in (tmp_path / "whole", out))
    assert a["key"] == b["key"]
    assert all(torch.equal(a[k], b[k]) for k in ("logits", "lengths", "maps", "offsets"))

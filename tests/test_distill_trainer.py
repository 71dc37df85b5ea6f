"""The Hugging Face Trainer integration, in two CPU processes with gloo (torchrun)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("accelerate")


@pytest.mark.parametrize("objective", ["adkd", "adkd+iit", "cross-tokenizer adkd"])
def test_two_process_gloo_training_keeps_replicas_in_sync(checkpoint_dir, tmp_path, objective):
    worker = Path(__file__).with_name("ddp_worker.py")
    iit = objective.endswith("iit")
    cross = objective.startswith("cross")
    student = checkpoint_dir("bert", 2, seed=1, layers=2 if iit else 1)  # IIT needs a layer below the last
    if cross:  # a GPT-2 student with its own byte-level BPE and no padding token
        from test_decoders import decoder

        student = tmp_path / "gpt2-student"
        clf = decoder("gpt2")
        clf.model.float().save_pretrained(student)
        clf.tokenizer.save_pretrained(student)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(sys.path),
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(29517 + iit + 2 * cross),
        str(worker),
        str(checkpoint_dir("bert", 2)),
        str(student),
        str(tmp_path),
        *(["iit"] if iit else ["cross"] if cross else []),
    ]
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["world"] == ranks[1]["world"] == 2
    # DDP averaged the (second-order) gradients: both replicas hold the same weights after 3 steps
    assert ranks[0]["params"] == pytest.approx(ranks[1]["params"], rel=1e-6, abs=1e-9)
    logs = ranks[0]["logs"]
    assert len(logs) == 3 and all(entry["attr"] > 0 and entry["kd"] > 0 and "ce" in entry for entry in logs)
    assert all(("iit" in entry) == iit for entry in logs)

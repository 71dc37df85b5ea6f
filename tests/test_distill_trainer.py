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


def test_gradient_accumulation_gives_the_gradient_of_the_whole_batch(checkpoint_dir, tmp_path):
    """Trainer divides a mean loss by the accumulation steps only when told the loss is not scaled already."""
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        TrainingArguments,
    )

    from attribkit_distill import AttributionDistillationTrainer, DistillationObjective, KDLoss

    tokenizer = AutoTokenizer.from_pretrained(checkpoint_dir("bert", 2))
    texts = ["the movie was good", "an awful plot", "great fun", "boring and bad"]
    features = [dict(tokenizer(t), labels=i % 2) for i, t in enumerate(texts)]

    def one_step(batch: int, accumulation: int) -> dict[str, torch.Tensor]:
        teacher = AutoModelForSequenceClassification.from_pretrained(checkpoint_dir("bert", 2))
        student = AutoModelForSequenceClassification.from_pretrained(checkpoint_dir("bert", 2, seed=1, layers=1))
        for module in student.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0  # the two runs differ only in how the batch is split
        args = TrainingArguments(
            output_dir=str(tmp_path / f"b{batch}"),
            per_device_train_batch_size=batch,
            gradient_accumulation_steps=accumulation,
            max_steps=1,
            learning_rate=0.5,
            optim="sgd",  # the update is the gradient itself (Adam's first step would hide its scale) ...
            max_grad_norm=0.0,  # ... and so would clipping it to norm 1
            lr_scheduler_type="constant",
            use_cpu=True,
            report_to=[],
            save_strategy="no",
            disable_tqdm=True,
            seed=0,
        )
        # KD and CE are means over examples: two halves average to the whole (the attribution term divides by
        # the tokens of its own micro-batch, so it would not, by its definition)
        objective = DistillationObjective(alpha=0.5, kd=KDLoss(2.0))
        trainer = AttributionDistillationTrainer(
            model=student,
            args=args,
            train_dataset=features,
            teacher=teacher,
            objective=objective,
            data_collator=DataCollatorWithPadding(tokenizer),
        )
        trainer.train()
        return {n: p.detach().clone() for n, p in trainer.model.named_parameters()}

    whole, accumulated = one_step(4, 1), one_step(2, 2)
    for name in whole:
        torch.testing.assert_close(accumulated[name], whole[name], rtol=1e-5, atol=1e-6)

"""Run by ``torchrun --nproc_per_node 2`` from test_distill_trainer.py: a few AD-KD steps with gloo.

Usage: ddp_worker.py TEACHER_DIR STUDENT_DIR OUT_DIR [iit|cross]
(iit: add the interchange intervention term; cross: the student has its own tokenizer, saved in STUDENT_DIR)
"""

from __future__ import annotations

import faulthandler
import json
import os
import sys

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, TrainingArguments

from attribkit_distill import (
    AttributionDistillationTrainer,
    AttributionLoss,
    CrossTokenizerAttributionLoss,
    CrossTokenizerCollator,
    DistillationObjective,
    InterchangeInterventionLoss,
    KDLoss,
)


def main() -> None:
    faulthandler.dump_traceback_later(120, exit=True)  # a hang prints every thread's stack and fails fast
    teacher_dir, student_dir, out = sys.argv[1:4]
    rank = int(os.environ["RANK"])
    tokenizer = AutoTokenizer.from_pretrained(teacher_dir)
    teacher = AutoModelForSequenceClassification.from_pretrained(teacher_dir)
    student = AutoModelForSequenceClassification.from_pretrained(student_dir)
    texts = ["the movie was good", "an awful plot", "great fun", "boring and bad", "i love it", "never again"] * 4
    cross = sys.argv[4:] == ["cross"]
    if cross:
        collator = CrossTokenizerCollator(AutoTokenizer.from_pretrained(student_dir), tokenizer)
        features = [{"text": t, "labels": i % 2} for i, t in enumerate(texts)]
    else:
        collator = DataCollatorWithPadding(tokenizer)
        features = [dict(tokenizer(t), labels=i % 2) for i, t in enumerate(texts)]
    args = TrainingArguments(
        output_dir=out,
        per_device_train_batch_size=3,
        max_steps=3,
        learning_rate=1e-3,
        use_cpu=True,
        ddp_backend="gloo",
        report_to=[],
        save_strategy="no",
        logging_steps=1,
        disable_tqdm=True,
        seed=0,
        remove_unused_columns=not cross,  # the cross collator tokenizes the texts itself
    )
    extra = {"iit": (1.0, InterchangeInterventionLoss())} if sys.argv[4:] == ["iit"] else None
    objective = DistillationObjective(
        alpha=0.5,
        beta=5.0,
        kd=KDLoss(2.0),
        attribution=(CrossTokenizerAttributionLoss if cross else AttributionLoss)(top_k=10),
        extra=extra,
    )
    trainer = AttributionDistillationTrainer(
        model=student,
        args=args,
        train_dataset=features,
        teacher=teacher,
        objective=objective,
        data_collator=collator,
    )
    trainer.train()
    torch.distributed.barrier()
    world = torch.distributed.get_world_size()
    params = {n: p.detach().double().sum().item() for n, p in trainer.model.named_parameters()}
    logs = [entry for entry in trainer.state.log_history if "attr" in entry]
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        json.dump({"world": world, "params": params, "logs": logs}, f)
    torch.distributed.barrier()
    # Leave without running destructors: with gloo, tearing down the DDP reducer at interpreter exit (or after
    # destroy_process_group) sometimes aborts one rank or hangs it forever after all the work is done. The
    # results are on disk; nothing else is left to clean up in this throwaway process.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()

"""One run of the paper-scale study with the Hugging Face Trainer, for ``accelerate launch`` on GPUs.

The paper's setting (Wu et al., ACL 2023): a BERT-base teacher fine-tuned per task, a 6-layer
student (here: the teacher's layers 0, 2, 4, 6, 8, 10), max length 128, AdamW, linear decay, no
warmup, gradient clipping 1.0, the per-task presets of the reference code. Every process of
``accelerate launch`` runs this script; the Trainer wraps the student in DDP and
:class:`attribkit_distill.AttributionDistillationTrainer` supplies the loss. The result is written
as ``results.json`` / ``run.json`` in the same format as ``attribkit distill`` so that
``bench/reproduce.py`` collects it.

Usage (one GPU or many; see docs/results.md for the whole table in one command):
    accelerate launch bench/paper_run.py --task sst2 --row teacher --base bert-base-uncased --out runs/paper/sst2/teacher-seed1
    accelerate launch bench/paper_run.py --task sst2 --row adkd --teacher runs/paper/sst2/teacher-seed1 --out ... --seed 1
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

PAPER_LAYERS = [0, 2, 4, 6, 8, 10]
ROWS = ("teacher", "student_ft", "kd", "adkd", "kd_iit", "adkd_iit")
TEACHER_SETTINGS = {"batch_size": 32, "learning_rate": 2e-5, "epochs": 3.0}


def per_device_batch(batch: int, world: int) -> int:
    """The per-process batch that keeps the paper's batch (and so its learning rate) with ``world`` processes."""
    if batch % world:
        raise SystemExit(f"error: the paper's batch of {batch} does not split over {world} processes; use a divisor")
    return batch // world


class MeanOfDevSets:
    """Trainer mixin: with several dev sets (MNLI), ``eval_score`` is their mean, as the CLI loop selects on."""

    def evaluate(self, eval_dataset: Any = None, ignore_keys: Any = None, metric_key_prefix: str = "eval") -> Any:
        metrics = super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)  # type: ignore[misc]
        scores = [v for k, v in metrics.items() if k.startswith(f"{metric_key_prefix}_") and k.endswith("_score")]
        if eval_dataset is None and len(scores) > 1:
            metrics[f"{metric_key_prefix}_score"] = float(np.mean(scores))
        return metrics


def objective_for(row: str, preset: Any, hidden: int):
    """The row's DistillationObjective with the task's preset weights (None for plain fine-tuning).

    Built by the same code as ``attribkit distill --objective`` (``kd_iit`` -> ``kd+iit``, ``adkd_iit`` ->
    ``kd+adkd+iit``), so the paper run and the CLI cannot drift apart.
    """
    from attribkit_distill import DistillationObjective
    from attribkit_distill.command_setup import build_objective

    if row == "teacher":
        return None
    if row == "student_ft":
        return DistillationObjective(alpha=0.0)
    objective, _ = build_objective(
        row.replace("_", "+"), preset, hidden=hidden, cross_tokenizer=False, epochs=math.ceil(preset.epochs)
    )
    return objective


def main() -> None:
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    from attribkit_distill import AttributionDistillationTrainer
    from attribkit_distill.glue_metrics import task_metrics
    from attribkit_distill.presets import DISTILL_PRESETS
    from attribkit_distill.students import student_from_layers
    from attribkit_distill.tasks import get_task, load_examples, split_names

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", required=True)
    parser.add_argument("--row", required=True, choices=ROWS)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--base", default="bert-base-uncased", help="Pretrained model the teacher is fine-tuned from.")
    parser.add_argument("--teacher", default=None, help="Fine-tuned teacher (student rows).")
    parser.add_argument("--data-dir", default=None, help="Local GLUE folder (default: the hub, nyu-mll/glue).")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--max-steps", type=int, default=-1, help="For smoke tests.")
    args = parser.parse_args()

    spec = get_task(args.task)
    preset = DISTILL_PRESETS[spec.name]
    source = args.base if args.row == "teacher" else args.teacher
    if source is None:
        parser.error("student rows need --teacher")
    tokenizer = AutoTokenizer.from_pretrained(source)
    set_seed(args.seed)  # before the fresh head is made: the Trainer seeds only after the model exists
    if args.row == "teacher":
        model = AutoModelForSequenceClassification.from_pretrained(
            args.base,
            num_labels=spec.num_labels,
            id2label=dict(enumerate(spec.labels)),
            label2id={n: i for i, n in enumerate(spec.labels)},
        )
        teacher, settings = None, TEACHER_SETTINGS
    else:
        teacher = AutoModelForSequenceClassification.from_pretrained(args.teacher)
        if teacher.config.num_labels != spec.num_labels:
            parser.error(
                f"the teacher has {teacher.config.num_labels} output(s) but {spec.directory} needs {spec.num_labels}"
            )
        model = student_from_layers(teacher, [i for i in PAPER_LAYERS if i < teacher.config.num_hidden_layers])
        settings = {"batch_size": preset.batch_size, "learning_rate": preset.learning_rate, "epochs": preset.epochs}

    def encode(split: str) -> list[dict]:
        rows = []
        for example in load_examples(spec, split, data_dir=args.data_dir):
            features = tokenizer(example.text, example.pair, truncation=True, max_length=args.max_length)
            rows.append({**features, "labels": float(example.label) if spec.is_regression else int(example.label)})
        return rows

    train = encode("train")
    dev_splits = split_names(spec, "dev")
    dev = {name: encode(name) for name in dev_splits}

    def metrics(prediction: Any) -> dict[str, float]:
        logits, gold = prediction.predictions, prediction.label_ids
        guesses = logits[:, 0] if spec.is_regression else np.argmax(logits, axis=1)
        values = task_metrics(spec, guesses.tolist(), gold.tolist())
        return {**values, "score": values[spec.main]}

    training = TrainingArguments(
        output_dir=str(args.out / "trainer"),
        per_device_train_batch_size=per_device_batch(
            int(settings["batch_size"]), int(os.environ.get("WORLD_SIZE", "1"))
        ),
        per_device_eval_batch_size=128,
        learning_rate=settings["learning_rate"],
        num_train_epochs=settings["epochs"],
        max_steps=args.max_steps,
        lr_scheduler_type="linear",
        warmup_steps=0,
        max_grad_norm=1.0,
        weight_decay=0.0,
        eval_strategy="epoch",
        save_strategy="epoch",
        save_total_limit=2,
        load_best_model_at_end=True,
        # one dev set: its score; MNLI: the mean of matched and mismatched (MeanOfDevSets), as the CLI loop
        metric_for_best_model="eval_score" if len(dev_splits) > 1 else f"eval_{dev_splits[0]}_score",
        seed=args.seed,
        report_to=[],
        logging_steps=50,
        bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
        disable_tqdm=True,
    )
    common = {
        "model": model,
        "args": training,
        "train_dataset": train,
        "eval_dataset": dev,
        "compute_metrics": metrics,
        "data_collator": DataCollatorWithPadding(tokenizer),
    }
    objective = objective_for(args.row, preset, int(model.config.hidden_size))
    plain = type("PaperTrainer", (MeanOfDevSets, Trainer), {})
    distilling = type("PaperDistillationTrainer", (MeanOfDevSets, AttributionDistillationTrainer), {})
    trainer = (
        plain(**common) if objective is None else distilling(**common, teacher=cast(Any, teacher), objective=objective)
    )
    start = time.time()
    resume = any((args.out / "trainer").glob("checkpoint-*"))
    output = trainer.train(resume_from_checkpoint=True if resume else None)
    final = trainer.evaluate()
    if trainer.is_world_process_zero():
        best = {
            f"{split}/{name}": float(final[f"eval_{split}_{name}"]) for split in dev_splits for name in spec.metrics
        }
        best["score"] = float(np.mean([best[f"{split}/{spec.main}"] for split in dev_splits]))
        trainer.save_model(str(args.out))
        tokenizer.save_pretrained(args.out)
        seconds = time.time() - start
        (args.out / "run.json").write_text(
            json.dumps(
                {"command": "paper_run", **vars(args), "out": str(args.out), "settings": settings},
                indent=1,
                default=str,
            )
        )
        (args.out / "results.json").write_text(
            json.dumps(
                {
                    "step": output.global_step,
                    "best_step": trainer.state.best_global_step,
                    "best": best,
                    "seconds": seconds,
                    "steps_per_second": output.global_step / max(seconds, 1e-9),
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()

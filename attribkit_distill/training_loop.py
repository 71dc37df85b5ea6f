"""The plain fine-tune / distill loop: AdamW, linear decay, clipping, periodic evaluation, resume.

One loop serves fine-tuning (cross-entropy only) and distillation (a
:class:`DistillationObjective`). Every ``save_every`` steps a checkpoint is written atomically;
``resume=True`` restores weights, optimizer, scheduler, RNG and the position in the data, so a
run killed with SIGKILL loses only the steps since its last checkpoint and then continues
exactly as if it had never stopped. Metrics are appended to ``metrics.jsonl``; the best model
on dev (by the task's main metric) is saved in ``out_dir`` itself.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from attribkit import InvalidInputError, OptionError, progress_bar
from attribkit_distill.cache import TeacherCache
from attribkit_distill.checkpoint import find_checkpoint, load_checkpoint, save_checkpoint, save_model_atomically
from attribkit_distill.data import EncodedData, epoch_batches
from attribkit_distill.evaluation import evaluate
from attribkit_distill.maps import model_inputs
from attribkit_distill.objective import DistillationObjective, task_loss
from attribkit_distill.tasks import GlueTask

METRICS_LOG = "metrics.jsonl"
RESULTS = "results.json"


@dataclass
class TrainConfig:
    """Optimisation settings of one run (saved with it).

    Attributes:
        learning_rate: Peak AdamW learning rate (linear decay to 0, no warmup).
        batch_size: Examples per step.
        epochs: Passes over the training data (fractions allowed).
        max_steps: Stop after this many steps instead (overrides ``epochs``).
        eval_every: Evaluate every N steps; None = at the end of each epoch.
        save_every: Write a checkpoint every N steps.
        seed: Seeds initialisation order, data order and dropout.
        grad_clip: Max global gradient norm (the paper: 1.0).
        weight_decay: AdamW weight decay.
        eval_batch_size: Examples per evaluation pass.
        keep_checkpoint: Keep the last checkpoint after a finished run.
        progress: Show a progress bar.
        diagnose_every: Every N steps (0 = never), log the gradient norm of each weighted objective
            term on the student's parameters and the attribution term's share, to ``metrics.jsonl``
            (one more backward pass per term on those steps).
    """

    learning_rate: float = 2e-5
    batch_size: int = 32
    epochs: float = 3.0
    max_steps: int | None = None
    eval_every: int | None = None
    save_every: int = 200
    seed: int = 42
    grad_clip: float = 1.0
    weight_decay: float = 0.0
    eval_batch_size: int = 64
    keep_checkpoint: bool = False
    progress: bool = True
    diagnose_every: int = 50

    def __post_init__(self) -> None:
        at_least_one = {
            "batch_size": self.batch_size,
            "max_steps": self.max_steps,
            "eval_every": self.eval_every,
            "save_every": self.save_every,
            "eval_batch_size": self.eval_batch_size,
        }
        for name, value in at_least_one.items():
            if value is not None and value < 1:
                raise OptionError(f"{_flag(name)} must be at least 1; got {value}")
        for name, number in {"learning_rate": self.learning_rate, "epochs": self.epochs}.items():
            if not number > 0 or not math.isfinite(number):
                raise OptionError(f"{_flag(name)} must be a positive number; got {number}")
        if self.grad_clip <= 0 or self.weight_decay < 0 or self.diagnose_every < 0:
            raise OptionError("grad_clip must be > 0, weight_decay >= 0 and diagnose_every >= 0")

    def total_steps(self, n_examples: int) -> int:
        if self.max_steps is not None:
            return self.max_steps
        return max(1, math.ceil(self.epochs * math.ceil(n_examples / self.batch_size)))

    def epochs_touched(self, n_examples: int) -> int:
        """How many epochs the run trains in, the last perhaps in part (what per-epoch annealing counts)."""
        return math.ceil(self.total_steps(n_examples) / math.ceil(n_examples / self.batch_size))


def _flag(field_name: str) -> str:
    """A setting as both its users name it: ``max_steps (--max-steps)``."""
    flag = {"learning_rate": "--lr"}.get(field_name, "--" + field_name.replace("_", "-"))
    return f"{field_name} ({flag})"


@dataclass
class TrainState:
    """What a checkpoint records besides tensors (JSON)."""

    step: int = 0
    best_score: float | None = None
    best_step: int | None = None
    sums: dict[str, float] = field(default_factory=dict)
    count: int = 0
    seconds: float = 0.0


def train(
    student: nn.Module,
    task: GlueTask,
    train_data: EncodedData,
    dev_sets: dict[str, EncodedData],
    out_dir: str | Path,
    config: TrainConfig,
    *,
    objective: DistillationObjective | None = None,
    teacher: nn.Module | None = None,
    cache: TeacherCache | None = None,
    resume: bool = False,
) -> dict[str, Any]:
    """Train ``student`` on ``train_data``; returns the results written to ``out_dir/results.json``.

    Args:
        student: The model to train (its files are saved into ``out_dir``).
        task: The GLUE task (metrics, regression or not).
        train_data: Encoded training examples.
        dev_sets: Encoded dev split(s) by name; the best model is chosen on their mean main metric.
        out_dir: Output folder (model, tokenizer written by the caller, logs, checkpoint).
        config: Optimisation settings.
        objective: Distillation objective; None = fine-tuning with cross-entropy (MSE for scores).
        teacher: The frozen teacher (eval mode, no gradients) when distilling on the fly.
        cache: Precomputed teacher outputs (replaces the teacher's passes).
        resume: Continue from ``out_dir``'s checkpoint.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if objective is not None and teacher is None and cache is None:
        raise InvalidInputError("distillation needs the teacher or a teacher cache")
    if teacher is not None:
        teacher.eval().requires_grad_(False)
    device = next(student.parameters()).device
    torch.manual_seed(config.seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(config.seed)
    total = config.total_steps(len(train_data))
    per_epoch = math.ceil(len(train_data) / config.batch_size)
    optimizer = torch.optim.AdamW(student.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: max(0.0, 1.0 - s / total))
    state = _start(out, student, optimizer, scheduler, resume)
    if state.step >= total:
        return json.loads((out / RESULTS).read_text()) if (out / RESULTS).is_file() else {"step": state.step}
    eval_every = config.eval_every or per_epoch
    started = time.perf_counter() - state.seconds
    with progress_bar(total, task.directory, config.progress, unit="steps") as update:
        update(state.step)
        while state.step < total:
            epoch, position = divmod(state.step, per_epoch)
            for indices in epoch_batches(len(train_data), config.batch_size, seed=config.seed, epoch=epoch)[position:]:
                if state.step >= total:
                    break
                number = state.step + 1  # the step being taken, as evaluations count them
                diagnose = (
                    bool(config.diagnose_every)
                    and objective is not None
                    and (number == 1 or number % config.diagnose_every == 0)
                )
                terms = _step(
                    student,
                    task,
                    train_data.batch(indices, device),
                    optimizer,
                    scheduler,
                    config,
                    objective,
                    teacher,
                    cache,
                    progress=state.step / total,
                    epoch=epoch,
                    diagnose=diagnose,
                )
                if "gradients" in terms:
                    _log_gradients(out, number, terms.pop("gradients"))
                state.step += 1
                for name, value in terms.items():
                    state.sums[name] = state.sums.get(name, 0.0) + value
                state.count += 1
                state.seconds = time.perf_counter() - started
                update(state.step, f"loss {terms['total']:.4f}")
                if state.step % eval_every == 0 or state.step == total:
                    _evaluate_and_log(student, task, dev_sets, out, state, config, epoch, scheduler)
                if state.step % config.save_every == 0 or state.step == total:
                    save_checkpoint(out, student, optimizer, scheduler, asdict(state))
    return _finish(out, state, config)


def _step(
    student: nn.Module,
    task: GlueTask,
    batch: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    config: TrainConfig,
    objective: DistillationObjective | None,
    teacher: nn.Module | None,
    cache: TeacherCache | None,
    *,
    progress: float,
    epoch: int = 0,
    diagnose: bool = False,
) -> dict[str, Any]:
    student.train()
    if objective is None:
        loss = task_loss(student, student(**model_inputs(batch)).logits, batch)
        terms = {"ce": loss.detach()}
    else:
        outputs = cache.outputs(batch) if cache is not None else None
        result = objective(student, teacher, batch, teacher_outputs=outputs, progress=progress, epoch=epoch)
        loss, terms = result.total, result.terms
    if not torch.isfinite(loss):
        raise InvalidInputError(
            f"the loss became {loss.item()} at step {scheduler.last_epoch + 1}; lower the learning rate"
        )
    gradients = term_gradient_norms(student, result.weighted) if diagnose and objective is not None else None
    loss.backward()
    total_norm = torch.nn.utils.clip_grad_norm_(student.parameters(), config.grad_clip or float("inf"))
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    out: dict[str, Any] = {"total": float(loss.detach()), **{k: float(v) for k, v in terms.items()}}
    if gradients is not None:
        out["gradients"] = {
            **gradients,
            "total": float(total_norm),
            "attr_share": gradients.get("attr", 0.0) / max(sum(gradients.values()), 1e-30),
        }
    return out


def term_gradient_norms(student: nn.Module, weighted: dict[str, torch.Tensor]) -> dict[str, float]:
    """The L2 norm of each weighted term's gradient on the student's trainable parameters.

    One backward pass per term (the graph is kept for the step's own backward). The attribution
    term's *share* is its norm over the sum of all terms' norms, in [0, 1]: how much of the push
    on the weights comes from it, whatever the terms' directions.
    """
    params = [p for p in student.parameters() if p.requires_grad]
    norms = {}
    for name, value in weighted.items():
        grads = torch.autograd.grad(value, params, retain_graph=True, allow_unused=True)
        norms[name] = float(
            torch.sqrt(sum((g.detach().float() ** 2).sum() for g in grads if g is not None) or torch.tensor(0.0))
        )
    return norms


def _log_gradients(out: Path, step: int, gradients: dict[str, float]) -> None:
    with (out / METRICS_LOG).open("a") as f:
        f.write(
            json.dumps({"step": step, "kind": "gradients", "gradients": {k: round(v, 8) for k, v in gradients.items()}})
            + "\n"
        )


def _start(out: Path, student: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, resume: bool) -> TrainState:
    checkpoint = find_checkpoint(out)
    if not resume:
        if checkpoint is not None or (out / RESULTS).is_file():
            raise InvalidInputError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
        (out / METRICS_LOG).unlink(missing_ok=True)
        return TrainState()
    if checkpoint is None:
        if (out / RESULTS).is_file():
            return TrainState(step=json.loads((out / RESULTS).read_text())["step"])
        (out / METRICS_LOG).unlink(missing_ok=True)
        return TrainState()  # nothing saved yet: start from the beginning
    state = TrainState(**load_checkpoint(checkpoint, student, optimizer, scheduler))
    _truncate_log(out / METRICS_LOG, state.step)
    return state


def _truncate_log(path: Path, step: int) -> None:
    """Drop log lines written after the checkpoint being resumed (they will be written again)."""
    if path.is_file():
        lines = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["step"] <= step]
        path.write_text("".join(line + "\n" for line in lines))


def _evaluate_and_log(
    student: nn.Module,
    task: GlueTask,
    dev_sets: dict[str, EncodedData],
    out: Path,
    state: TrainState,
    config: TrainConfig,
    epoch: int,
    scheduler: Any,
) -> None:
    metrics = evaluate(student, task, dev_sets, batch_size=config.eval_batch_size)
    train_terms = {k: round(v / max(state.count, 1), 6) for k, v in state.sums.items()}
    improved = state.best_score is None or metrics["score"] > state.best_score
    if improved:
        state.best_score, state.best_step = metrics["score"], state.step
        save_model_atomically(student, out)
    record = {
        "step": state.step,
        "epoch": epoch,
        "lr": scheduler.get_last_lr()[0],
        "train": train_terms,
        "dev": metrics,
        "best": improved,
        "seconds": round(state.seconds, 2),
    }
    with (out / METRICS_LOG).open("a") as f:
        f.write(json.dumps(record) + "\n")
    state.sums, state.count = {}, 0


def _finish(out: Path, state: TrainState, config: TrainConfig) -> dict[str, Any]:
    log = [
        row
        for row in (json.loads(line) for line in (out / METRICS_LOG).read_text().splitlines() if line.strip())
        if "dev" in row
    ]  # evaluations (gradient-diagnostic rows carry "kind": "gradients")
    best = next(r for r in log if r["step"] == state.best_step)
    results = {
        "step": state.step,
        "best_step": state.best_step,
        "best": best["dev"],
        "last": log[-1]["dev"],
        "seconds": round(state.seconds, 2),
        "steps_per_second": round(state.step / max(state.seconds, 1e-9), 4),
    }
    (out / RESULTS).write_text(json.dumps(results, indent=1))
    if not config.keep_checkpoint:
        shutil.rmtree(out / "checkpoint", ignore_errors=True)
    return results

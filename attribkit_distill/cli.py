"""``attribkit finetune``, ``attribkit distill`` and ``attribkit evaluate`` (added through the
``attribkit.plugins`` entry point; the core CLI knows nothing about them). ``distill`` lives in
:mod:`attribkit_distill.distill_command`, the options the commands share in :mod:`attribkit_distill.cli_options`."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from attribkit_distill.cli_options import (
    DATA_DIR,
    DEVICE,
    EVAL_EVERY,
    MAX_LENGTH,
    MAX_STEPS,
    PROGRESS,
    RESUME,
    SAVE_EVERY,
    SEED,
    SUBSET_SEED,
    TRAIN_LIMIT,
)
from attribkit_distill.command_setup import (
    load_data,
    path_text,
    pick,
    report_results,
    task_spec,
    train_config,
)
from attribkit_distill.distill_command import distill
from attribkit_distill.run_folder import (
    attribution_share,
    check_run_folder,
    check_writable,
    clean_failed_start,
    prepare_out,
)


def register(app: typer.Typer) -> None:
    """Add the distillation commands to the ``attribkit`` app."""
    app.command("finetune")(finetune)
    app.command("distill")(distill)
    app.command("evaluate")(evaluate_command)


def finetune(
    model: str = typer.Option(..., "--model", help="Base checkpoint (dir or hub name), e.g. the packaged MiniLM."),
    task: str = typer.Option(..., "--task", help="GLUE task: CoLA, SST-2, MRPC, QQP, STS-B, MNLI, QNLI, RTE."),
    out: Path = typer.Option(..., "--out", help="Output folder: best model, tokenizer, metrics.jsonl, results.json."),
    data_dir: Path | None = DATA_DIR,
    learning_rate: float | None = typer.Option(None, "--lr", help="Peak learning rate (default 2e-5)."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Examples per step (default 32)."),
    epochs: float | None = typer.Option(None, "--epochs", help="Passes over the data (default 3)."),
    max_steps: int | None = MAX_STEPS,
    train_limit: int | None = TRAIN_LIMIT,
    subset_seed: int | None = SUBSET_SEED,
    max_length: int = MAX_LENGTH,
    eval_every: int | None = EVAL_EVERY,
    save_every: int = SAVE_EVERY,
    seed: int = SEED,
    device: str | None = DEVICE,
    resume: bool = RESUME,
    progress: bool = PROGRESS,
) -> None:
    """Fine-tune a model on a GLUE task (teachers, or students without a teacher)."""
    from attribkit_distill.presets import FINETUNE_DEFAULTS

    spec = task_spec(task)
    check_run_folder(out, resume)
    from attribkit_distill.pairing import load_for_task

    clf = load_for_task(model, spec, device, seed=seed)
    config = train_config(
        FINETUNE_DEFAULTS,
        learning_rate=learning_rate,
        batch_size=batch_size,
        epochs=epochs,
        max_steps=max_steps,
        eval_every=eval_every,
        save_every=save_every,
        seed=seed,
        progress=progress,
    )
    train_data, dev_sets = load_data(spec, clf.tokenizer, data_dir, max_length, train_limit, pick(subset_seed, seed))
    created = prepare_out(
        out,
        clf.tokenizer,
        {
            "command": "finetune",
            "model": model,
            "task": spec.directory,
            "data_dir": path_text(data_dir),
            "train_examples": len(train_data),
            **({"subset_seed": subset_seed} if subset_seed is not None else {}),
            "max_length": max_length,
            "config": config.__dict__,
        },
        resume,
    )
    from attribkit_distill.training_loop import train

    try:
        results = train(clf.model, spec, train_data, dev_sets, out, config, resume=resume)
    except BaseException:
        clean_failed_start(out, created)
        raise
    report_results(results, out)


def evaluate_command(
    model: str = typer.Option(..., "--model", help="Checkpoint to score."),
    task: str = typer.Option(..., "--task", help="GLUE task."),
    split: str = typer.Option("dev", "--split", help="dev (both MNLI dev sets), dev_matched, dev_mismatched, train."),
    data_dir: Path | None = DATA_DIR,
    max_length: int = MAX_LENGTH,
    batch_size: int = typer.Option(64, "--batch-size"),
    device: str | None = DEVICE,
    json_out: Path | None = typer.Option(None, "--json", help="Also write the metrics to this JSON file."),
) -> None:
    """Score a checkpoint on a GLUE split with the task's metrics."""
    import attribkit as ak
    from attribkit_distill.data import encode_examples
    from attribkit_distill.evaluation import evaluate
    from attribkit_distill.tasks import load_examples, split_names

    spec = task_spec(task)
    if json_out is not None:
        check_writable(json_out, "--json")
    clf = ak.load_classifier(model, device=device)
    if clf.num_labels != spec.num_labels:
        raise ak.OptionError(f"{model} has {clf.num_labels} output(s) but {spec.directory} needs {spec.num_labels}")
    sets = {
        name: encode_examples(clf.tokenizer, load_examples(spec, name, data_dir=data_dir), max_length=max_length)
        for name in split_names(spec, split)
    }
    metrics = evaluate(clf.model, spec, sets, batch_size=batch_size)
    for name, value in metrics.items():
        typer.echo(f"{name}\t{value:.2f}")
    share = attribution_share(Path(model))
    if share is not None:
        typer.echo(
            f"attribution term's share of the gradient norm in training: median {share['median']:.3f} over "
            f"{share['steps']} diagnosed steps (first {share['first']:.3f}, last {share['last']:.3f})"
        )
    if json_out is not None:
        json_out.write_text(json.dumps({"model": model, "task": spec.directory, "split": split, **metrics}, indent=1))

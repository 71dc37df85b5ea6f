"""``attribkit distill``: a teacher (or its saved cache) distilled into a smaller student.

Its options are the objective's (KD, AD-KD and its explanation signal, interchange intervention) and the
training run's; registered on the ``attribkit`` app by :func:`attribkit_distill.cli.register`.
"""

from __future__ import annotations

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
    build_objective,
    check_distill_options,
    load_data,
    parse_layers,
    parse_method_options,
    path_text,
    pick,
    report_results,
    task_spec,
    train_config,
)
from attribkit_distill.run_folder import TEACHER_CACHE, check_run_folder, clean_failed_start, prepare_out


def distill(
    teacher: str | None = typer.Option(None, "--teacher", help="Fine-tuned teacher checkpoint."),
    task: str = typer.Option(..., "--task", help="GLUE task."),
    out: Path = typer.Option(..., "--out", help="Output folder for the student."),
    teacher_cache_file: Path | None = typer.Option(
        None,
        "--teacher-cache",
        help="Or distil from this saved teacher cache (a run's teacher_cache.pt) without loading the teacher "
        "(kd and adkd; the student from --student-from or --student-init).",
    ),
    student_init: str | None = typer.Option(
        None, "--student-init", help="Initialise the student from this checkpoint."
    ),
    student_layers: str | None = typer.Option(
        None, "--student-layers", help="Or keep these teacher layers, e.g. 0,2,4."
    ),
    student_from: str | None = typer.Option(
        None,
        "--student-from",
        help="With --student-layers: take the layers (and "
        "embeddings) from this pre-trained model instead, with a fresh head.",
    ),
    student_hidden: int | None = typer.Option(
        None, "--student-hidden", help="With --student-layers: also narrow the width (weight selection)."
    ),
    objective: str = typer.Option(
        "adkd",
        "--objective",
        help="Terms joined by '+': kd (always in), adkd (attribution), iit (interchange intervention), e.g. kd+adkd+iit.",
    ),
    alpha: float | None = typer.Option(None, "--alpha", help="KD weight; CE gets 1-alpha (default: paper preset)."),
    temperature: float | None = typer.Option(None, "--temperature", help="KD temperature (default: preset)."),
    beta: float | None = typer.Option(None, "--beta", help="Attribution-loss weight (default: preset)."),
    top_k: int | None = typer.Option(
        None, "--top-k", help="Teacher dims kept per token (default: preset, scaled to width)."
    ),
    ig_steps: int = typer.Option(1, "--ig-steps", help="IG steps for the maps (1 = the paper's single step)."),
    attribution_method: str = typer.Option(
        "fast_ig",
        "--attribution-method",
        help="Method of the student's maps (differentiable: fast_ig, gradient_x_input, saliency, attnlrp).",
    ),
    teacher_attribution_method: str | None = typer.Option(
        None,
        "--teacher-attribution-method",
        help="Method of the teacher's maps, any registered one (default: --attribution-method); cached once.",
    ),
    teacher_attribution_option: list[str] | None = typer.Option(
        None,
        "--teacher-attribution-option",
        help="An option of the teacher's method as KEY=VALUE, repeatable (e.g. steps=50 rule=gausslegendre).",
    ),
    attribution_distance: str = typer.Option(
        "mse", "--attribution-distance", help="mse (the paper's), l1, or cosine (1 - cos, e2KD)."
    ),
    teacher_shuffle: int | None = typer.Option(
        None,
        "--teacher-shuffle",
        help="Control: permute each teacher map over its real tokens with this seed (same scale, no token information).",
    ),
    iit_weight: float = typer.Option(1.0, "--iit-weight", help="Weight gamma of the interchange intervention term."),
    iit_span: float = typer.Option(0.3, "--iit-span", help="Share of the real tokens intervened on (IIT)."),
    iit_temperature: float = typer.Option(2.0, "--iit-temperature", help="Temperature of the IIT KL term (times T^2)."),
    anneal: bool | None = typer.Option(
        None, "--anneal/--no-anneal", help="Anneal T to 1 over training (default: preset)."
    ),
    anneal_every: str = typer.Option(
        "step",
        "--anneal-every",
        help="step: T falls linearly with every step; epoch: once "
        "per epoch, reaching 1 in the last (the reference code).",
    ),
    regression_kd: str = typer.Option(
        "scaled",
        "--regression-kd",
        help="Regression KD: scaled = MSE(s/T, t/T) (the reference code), plain = MSE(s, t).",
    ),
    t_squared: bool = typer.Option(False, "--t-squared", help="Multiply KD by T^2 (the reference code does not)."),
    cache: bool = typer.Option(True, "--cache/--no-cache", help="Precompute the teacher's logits and maps once."),
    diagnose_every: int = typer.Option(
        50,
        "--diagnose-every",
        help="Log each loss term's gradient norm and the attribution term's share every N steps (0 = never).",
    ),
    data_dir: Path | None = DATA_DIR,
    learning_rate: float | None = typer.Option(None, "--lr", help="Peak learning rate (default: preset)."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Examples per step (default: preset)."),
    epochs: float | None = typer.Option(None, "--epochs", help="Passes over the data (default: preset)."),
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
    """Distil a teacher into a smaller student: KD, AD-KD, interchange intervention, or AD-KD + IIT (paper presets per task).

    The teacher is a checkpoint (``--teacher``) or the cache of its logits and maps a run saved
    (``--teacher-cache``): then the teacher is never loaded.
    """
    import attribkit as ak
    from attribkit_distill.cache import TeacherCache
    from attribkit_distill.data import visited_examples
    from attribkit_distill.loss import check_shared_vocabulary
    from attribkit_distill.objective import describe
    from attribkit_distill.pairing import build_student, same_tokenizer
    from attribkit_distill.presets import DISTILL_PRESETS
    from attribkit_distill.teacher_source import check_teacher_options, open_teacher
    from attribkit_distill.terms import check_tokenizers
    from attribkit_distill.training_loop import train

    terms = check_distill_options(  # before any model is loaded
        objective=objective,
        iit_weight=iit_weight,
        anneal_every=anneal_every,
        regression_kd=regression_kd,
        student_init=student_init,
        student_layers=student_layers,
        student_from=student_from,
    )
    check_teacher_options(teacher, teacher_cache_file, terms=terms, use_cache=cache)
    spec = task_spec(task)
    check_run_folder(out, resume)
    preset = DISTILL_PRESETS[spec.name]
    source = open_teacher(teacher, teacher_cache_file, device=device)
    teacher_clf = source.classifier
    if source.config["num_labels"] != spec.num_labels:
        raise ak.OptionError(
            f"the teacher has {source.config['num_labels']} output(s) but {spec.directory} needs {spec.num_labels}"
        )
    if student_hidden is not None and student_layers is None:
        raise ak.OptionError("--student-hidden narrows a student made with --student-layers; give both")
    student_clf = build_student(
        teacher_clf,
        spec,
        student_init=student_init,
        student_layers=None if student_layers is None else parse_layers(student_layers),
        student_from=student_from,
        student_hidden=student_hidden,
        seed=seed,
        device=device,
    )
    student = student_clf.model
    if teacher_clf is None:  # one tokenizer is assumed; the cache's key checks the encoded data
        cross = False
        check_shared_vocabulary(student, source.config)
    else:
        cross = not same_tokenizer(student_clf.tokenizer, teacher_clf.tokenizer)
        check_tokenizers(terms, cross)
        if not cross:
            check_shared_vocabulary(student, teacher_clf.model)
    if diagnose_every < 0:
        raise ak.OptionError(f"--diagnose-every must be >= 0 (0 = never); got {diagnose_every}")
    config = train_config(
        {"batch_size": preset.batch_size, "learning_rate": preset.learning_rate, "epochs": preset.epochs},
        learning_rate=learning_rate,
        batch_size=batch_size,
        epochs=epochs,
        max_steps=max_steps,
        eval_every=eval_every,
        save_every=save_every,
        seed=seed,
        progress=progress,
        diagnose_every=diagnose_every,
    )
    train_data, dev_sets = load_data(
        spec,
        student_clf.tokenizer,
        data_dir,
        max_length,
        train_limit,
        pick(subset_seed, seed),
        teacher_tokenizer=teacher_clf.tokenizer if cross and teacher_clf is not None else None,
    )
    hidden = None if source.config["hidden_size"] is None else int(source.config["hidden_size"])
    loss, attribution = build_objective(
        objective,
        preset,
        hidden=hidden,
        cross_tokenizer=cross,
        epochs=config.epochs_touched(len(train_data)),
        alpha=alpha,
        temperature=temperature,
        beta=beta,
        top_k=top_k,
        ig_steps=ig_steps,
        signal={
            "method": attribution_method,
            "teacher_method": teacher_attribution_method,
            "teacher_options": parse_method_options(teacher_attribution_option, "--teacher-attribution-option"),
            "distance": attribution_distance,
            "teacher_shuffle": teacher_shuffle,
        },
        anneal=anneal,
        anneal_every=anneal_every,
        regression_kd=regression_kd,
        t_squared=t_squared,
        iit_weight=iit_weight,
        iit_span=iit_span,
        iit_temperature=iit_temperature,
    )
    created = prepare_out(
        out,
        student_clf.tokenizer,
        {
            "command": "distill",
            "teacher": teacher,
            **(
                {
                    "teacher_cache": path_text(teacher_cache_file),
                    "teacher_fingerprint": source.cache.teacher_fingerprint,
                }
                if source.cache is not None
                else {}
            ),
            "student_init": student_init,
            "student_from": student_from,
            "student_layers": student_layers,
            "student_hidden": student_hidden,
            **({"cross_tokenizer": True} if cross else {}),
            "task": spec.directory,
            "objective": objective,
            "loss": describe(loss),
            "data_dir": path_text(data_dir),
            "train_examples": len(train_data),
            "max_length": max_length,
            "config": config.__dict__,
            **({"subset_seed": subset_seed} if subset_seed is not None else {}),
        },
        resume,
    )
    try:
        teacher_cache = None
        visited = visited_examples(
            len(train_data), config.batch_size, config.total_steps(len(train_data)), seed=config.seed
        )
        if source.cache is not None:  # read once by open_teacher, checked against this run here
            teacher_cache = source.cache.serving(
                data=train_data, loss_fn=attribution, examples=visited, name=str(teacher_cache_file)
            )
        elif cache:
            assert teacher_clf is not None  # exactly one of --teacher and --teacher-cache
            teacher_cache = TeacherCache.build(
                out / TEACHER_CACHE,
                teacher_clf.model,
                train_data,
                attribution,
                batch_size=config.eval_batch_size,
                progress=progress,
                examples=visited,
            )
        results = train(
            student,
            spec,
            train_data,
            dev_sets,
            out,
            config,
            objective=loss,
            teacher=None if teacher_clf is None else teacher_clf.model,
            cache=teacher_cache,
            resume=resume,
        )
    except BaseException:
        clean_failed_start(out, created)
        raise
    report_results(results, out)

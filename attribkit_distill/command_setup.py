"""What the ``finetune``, ``distill`` and ``evaluate`` commands share: the task, data, training
configuration and the distillation objective built from the command's options and the task's preset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer


def task_spec(name: str) -> Any:
    """The GLUE task called ``name`` (one-line error for an unknown one)."""
    from attribkit_distill.tasks import get_task

    return get_task(name)


def load_data(
    spec: Any,
    tokenizer: Any,
    data_dir: Path | None,
    max_length: int,
    limit: int | None,
    seed: int,
    *,
    teacher_tokenizer: Any | None = None,
) -> tuple[Any, dict]:
    """Training data (for both tokenizers when ``teacher_tokenizer`` is given) and dev sets (``tokenizer``'s).

    Args:
        spec: The task.
        tokenizer: The trained model's tokenizer.
        data_dir: Local GLUE folder, or None for the hub.
        max_length: Truncation length in tokens.
        limit: Train on a random subset of this many examples (None: all).
        seed: Seed of that subset.
        teacher_tokenizer: A teacher tokenizer that differs from ``tokenizer`` (cross-tokenizer distillation).

    Returns:
        ``(train_data, {dev split name: encoded set})``.
    """
    from attribkit_distill.cross_data import encode_cross_examples
    from attribkit_distill.data import encode_examples, subsample
    from attribkit_distill.tasks import load_examples, split_names

    train_examples = subsample(load_examples(spec, "train", data_dir=data_dir), limit, seed=seed)
    if teacher_tokenizer is not None:
        train_data: Any = encode_cross_examples(tokenizer, teacher_tokenizer, train_examples, max_length=max_length)
    else:
        train_data = encode_examples(tokenizer, train_examples, max_length=max_length)
    dev_sets = {
        name: encode_examples(tokenizer, load_examples(spec, name, data_dir=data_dir), max_length=max_length)
        for name in split_names(spec, "dev")
    }
    return train_data, dev_sets


def train_config(defaults: dict, **given: Any) -> Any:
    """A ``TrainConfig`` from ``defaults`` overridden by every option the user gave (not None)."""
    from attribkit_distill.training_loop import TrainConfig

    values = {k: v for k, v in given.items() if v is not None}
    return TrainConfig(**{**defaults, **values})


def check_distill_options(
    *,
    objective: str,
    iit_weight: float,
    anneal_every: str,
    regression_kd: str,
    student_init: str | None,
    student_layers: str | None,
    student_from: str | None,
) -> tuple[str, ...]:
    """The ``distill`` options that need no model or data, checked first; returns the objective's terms.

    (``KDLoss`` checks the KD choices too, but it is built once the data is loaded, to count its epochs.)
    """
    import attribkit as ak
    from attribkit_distill.objective import ANNEAL_SCHEDULES, REGRESSION_FORMS
    from attribkit_distill.terms import parse_objective

    terms = parse_objective(objective)
    if iit_weight < 0:
        raise ak.OptionError(f"--iit-weight must be >= 0; got {iit_weight}")
    for flag, value, choices in (
        ("--anneal-every", anneal_every, ANNEAL_SCHEDULES),
        ("--regression-kd", regression_kd, REGRESSION_FORMS),
    ):
        if value not in choices:
            raise ak.OptionError(f"unknown {flag} {value!r}; choose one of: {', '.join(choices)}")
    if student_from is not None and student_layers is None:
        raise ak.OptionError("--student-from PRETRAINED takes its layers from --student-layers 0,2,4; give both")
    if (student_init is None) == (student_layers is None):
        raise ak.OptionError("give exactly one of --student-init DIR or --student-layers 0,2,4")
    return terms


def build_objective(
    objective: str,
    preset: Any,
    *,
    hidden: int | None,
    cross_tokenizer: bool,
    epochs: int,
    alpha: float | None = None,
    temperature: float | None = None,
    beta: float | None = None,
    top_k: int | None = None,
    ig_steps: int = 1,
    signal: dict[str, Any] | None = None,
    anneal: bool | None = None,
    anneal_every: str = "step",
    regression_kd: str = "scaled",
    t_squared: bool = False,
    iit_weight: float = 1.0,
    iit_span: float = 0.3,
    iit_temperature: float = 2.0,
) -> tuple[Any, Any]:
    """The distillation objective of ``--objective`` with the task preset filling every option not given.

    Args:
        objective: Registered term names joined by ``+`` (:mod:`attribkit_distill.terms`): ``kd``,
            ``adkd`` (= ``kd+adkd``), ``iit``, ``kd+adkd+iit`` ...; KD is always included.
        preset: The task's ``DistillPreset`` (alpha, T, beta, top-K at 768 dims, annealing).
        hidden: The teacher's hidden size (top-K is scaled to it), or None if unknown (768 assumed).
        cross_tokenizer: The student tokenizes differently from the teacher (maps aligned on shared words).
        signal: The explanation signal's options of :class:`AttributionLoss` (``method``,
            ``teacher_method``, ``teacher_options``, ``distance``, ``teacher_shuffle``); None = the paper's.
        epochs: The epochs the run trains in (:meth:`TrainConfig.epochs_touched`; per-epoch temperature
            annealing steps down once per epoch and reaches 1 in the last).

    Returns:
        ``(DistillationObjective, attribution loss or None)``; the cache needs the latter to precompute maps.
    """
    from attribkit import OptionError
    from attribkit_distill.cross_tokenizer import CrossTokenizerAttributionLoss
    from attribkit_distill.loss import AttributionLoss
    from attribkit_distill.objective import DistillationObjective, KDLoss
    from attribkit_distill.presets import scaled_top_k
    from attribkit_distill.terms import TermSettings, check_tokenizers, extra_terms, parse_objective

    terms = parse_objective(objective)
    check_tokenizers(terms, cross_tokenizer)
    k = top_k if top_k is not None else scaled_top_k(preset.top_k, hidden or 768)
    loss_class = CrossTokenizerAttributionLoss if cross_tokenizer else AttributionLoss
    defaults = {"method": "fast_ig", "distance": "mse", "teacher_options": {}}
    chosen = {name: value for name, value in (signal or {}).items() if value is not None}
    given = [name for name, value in chosen.items() if value != defaults.get(name)]
    if given and "adkd" not in terms:
        flags = {
            "method": "--attribution-method",
            "teacher_method": "--teacher-attribution-method",
            "teacher_options": "--teacher-attribution-option",
            "distance": "--attribution-distance",
            "teacher_shuffle": "--teacher-shuffle",
        }
        raise OptionError(
            f"--objective {objective} has no attribution term, so {', '.join(flags[name] for name in sorted(given))} "
            "would do nothing; add the attribution term (e.g. kd+adkd)"
        )
    attribution = loss_class(top_k=k, steps=ig_steps, **chosen) if "adkd" in terms else None
    settings = {"iit_weight": iit_weight, "iit_span": iit_span, "iit_temperature": iit_temperature}
    extra = extra_terms(terms, TermSettings(settings, cross_tokenizer)) or None
    kd = KDLoss(
        pick(temperature, preset.temperature),
        t_squared=t_squared,
        anneal=pick(anneal, preset.anneal),
        anneal_every=anneal_every,
        epochs=max(1, epochs),
        regression=regression_kd,
    )
    loss = DistillationObjective(
        alpha=pick(alpha, preset.alpha),
        beta=pick(beta, preset.beta) if attribution else 0.0,
        kd=kd,
        attribution=attribution,
        extra=extra,
    )
    return loss, attribution


def report_results(results: dict, out: Path) -> None:
    """Print the best dev metrics of a finished run and where it was saved."""
    best = results.get("best", {})
    summary = ", ".join(f"{k} {v:.2f}" for k, v in best.items())
    typer.echo(f"best dev (step {results.get('best_step')}): {summary}\nsaved to {out}")


def parse_layers(text: str | None) -> list[int]:
    """``"0,2,4"`` -> ``[0, 2, 4]`` (one-line error for anything else)."""
    import attribkit as ak

    if text is None:
        raise ak.OptionError("give the student's layers with --student-layers, e.g. 0,2,4")
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ak.OptionError(
            f"--student-layers takes comma-separated layer indices such as 0,2,4; got {text!r}"
        ) from None


def parse_method_options(items: list[str] | None, flag: str) -> dict[str, Any]:
    """``["steps=50", "rule=gausslegendre"]`` -> ``{"steps": 50, "rule": "gausslegendre"}`` (JSON values, else text)."""
    import json

    import attribkit as ak

    options: dict[str, Any] = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ak.OptionError(f"{flag} takes KEY=VALUE (e.g. steps=50); got {item!r}")
        try:
            options[key.strip()] = json.loads(text)
        except json.JSONDecodeError:
            options[key.strip()] = text
    return options


def pick(value: Any, default: Any) -> Any:
    """``value`` if the user gave it, else ``default``."""
    return default if value is None else value


def path_text(path: Path | None) -> str | None:
    """A path as recorded in ``run.json`` (None stays None)."""
    return None if path is None else str(path)

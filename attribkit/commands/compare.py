"""``attribkit compare``: the teacher/student case-study report."""

from __future__ import annotations

import math
from pathlib import Path

import typer

from attribkit.commands import options as opt


def compare(
    teacher: str = typer.Option(..., "--teacher", help="Reference checkpoint (e.g. the fine-tuned teacher)."),
    student: str = typer.Option(..., "--student", help="Checkpoint compared with it (any tokenizer)."),
    text: str | None = typer.Option(None, "--text", help="One text to compare on."),
    pair: str | None = opt.PAIR,
    input_file: Path | None = opt.INPUT,
    dataset: str | None = opt.DATASET,
    split: str | None = opt.SPLIT,
    text_column: str | None = opt.TEXT_COLUMN,
    pair_column: str | None = opt.PAIR_COLUMN,
    label_column: str | None = opt.LABEL_COLUMN,
    method: str = typer.Option("fast_ig", "--method", help="Attribution method for both models."),
    steps: str | None = opt.STEPS,
    method_option: list[str] | None = opt.METHOD_OPTION,
    target_fn: str | None = opt.TARGET_FN,
    layer: str | None = opt.LAYER,
    normalize: str | None = opt.NORMALIZE,
    k: int = typer.Option(5, "--k", help="k of the top-k overlap score."),
    html_out: Path | None = typer.Option(None, "--html", help="Write the case-study report here."),
    json_out: Path | None = typer.Option(None, "--json", help="Write per-example scores and the summary as JSON."),
    figure: bool = typer.Option(True, "--figure/--no-figure", help="Embed the agreement histogram."),
    shared_scale: bool = typer.Option(
        False, "--shared-scale", help="Colour teacher and student on one scale (default: each row on its own)."
    ),
    plotly_js: str = typer.Option(
        "inline",
        "--plotly-js",
        help="The figure's plotly.js: inline (offline, ~4.8 MB), cdn, or "
        "the path of a .js file relative to the page (several reports sharing one copy).",
    ),
    device: str | None = opt.DEVICE,
    batch_size: int = opt.BATCH_SIZE,
    max_length: int | None = opt.MAX_LENGTH,
    limit: int | None = opt.LIMIT,
    progress: bool = opt.PROGRESS,
) -> None:
    """Compare a teacher's and a student's explanations, example by example (both explain the same class)."""
    from rich.console import Console
    from rich.table import Table

    import attribkit as ak
    from attribkit.evaluation.metrics import summarize
    from attribkit.render.comparison import plotly_js_mode

    rows = opt.read_rows(text, pair, input_file, dataset, split, text_column, pair_column, label_column, limit)
    options = opt.method_options(method, steps, target_fn, layer, method_option)
    opt.check_suffix(html_out, (".html", ".htm"), "--html")
    opt.check_suffix(json_out, (".json",), "--json")
    plotly_js_mode(plotly_js)
    if (
        plotly_js.endswith(".js")
        and html_out is not None
        and "://" not in plotly_js
        and not (html_out.parent / plotly_js).is_file()
    ):
        import warnings

        warnings.warn(
            f"--plotly-js {plotly_js}: no such file next to {html_out}; the page's figure stays empty until "
            "plotly.js is put there",
            UserWarning,
            stacklevel=1,
        )
    if k < 1:
        raise ak.OptionError(f"--k must be a positive number; got {k}")
    teacher_clf = ak.load_classifier(teacher, device=device)
    student_clf = ak.load_classifier(student, device=device)
    labels = opt.gold_labels(rows, "pred", teacher_clf)
    with opt.progress_bar(len(rows), "comparing", progress) as update:
        comparisons = ak.compare(
            teacher_clf,
            student_clf,
            [r.model_input for r in rows],
            labels=labels,
            method=method,
            k=k,
            normalize=normalize,
            batch_size=batch_size,
            max_length=max_length,
            progress=update,
            **options,
        )
        update(len(rows))
    summary = summarize([c.agreement for c in comparisons])
    same = sum(c.same_prediction for c in comparisons)
    table = Table(
        title=f"teacher vs student on {len(rows)} example(s); same prediction on {same}",
        caption=f"method: {comparisons[0].teacher.method_summary()}" if comparisons else None,
    )
    for column in ("score", "mean", "std", "n"):
        table.add_column(column, justify="left" if column == "score" else "right")
    for name, stats in summary.items():
        table.add_row(name, f"{stats['mean']:.3f}", f"{stats['std']:.3f}", str(stats["n"]))
    Console().print(table)
    if html_out is not None:
        ak.save_html(
            ak.render_comparison(
                comparisons, figure=figure, plotly_js=plotly_js, shared_scale=shared_scale, models=(teacher, student)
            ),
            html_out,
        )
        typer.echo(f"wrote {html_out}")
    if json_out is not None:
        clean = lambda v: None if isinstance(v, float) and not math.isfinite(v) else v  # noqa: E731
        first = comparisons[0]
        data = {
            "teacher": teacher,
            "student": student,
            "method": method,
            "options": {"teacher": first.teacher.options, "student": first.student.options},
            "summary": {n: {k2: clean(v) for k2, v in s.items()} for n, s in summary.items()},
            "same_prediction": same,
            "examples": [
                {
                    "text": c.teacher.text,
                    "pair": c.teacher.pair,
                    "gold": c.teacher.gold,
                    "teacher": c.teacher.prediction,
                    "student": c.student.prediction,
                    "explained": c.teacher.views[0],
                    "aligned_by": c.aligned_by,
                    "units": list(c.units),
                    "teacher_scores": c.teacher_scores.tolist(),
                    "student_scores": c.student_scores.tolist(),
                    "agreement": {n: clean(v) for n, v in c.agreement.items()},
                }
                for c in comparisons
            ],
        }
        opt.write_json(data, json_out)
        typer.echo(f"wrote {json_out}")


def register(app: typer.Typer) -> None:
    """Add ``compare`` to the app."""
    app.command("compare")(compare)

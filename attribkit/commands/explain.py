"""``attribkit explain``: one text in the terminal (HTML/JSON/plot on request), or a resumable batch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from attribkit.commands import options as opt
from attribkit.errors import OptionError


def explain(
    text: str | None = typer.Option(None, "--text", help="Text to explain."),
    model: str | None = opt.MODEL,
    pair: str | None = opt.PAIR,
    input_file: Path | None = opt.INPUT,
    dataset: str | None = opt.DATASET,
    split: str | None = opt.SPLIT,
    text_column: str | None = opt.TEXT_COLUMN,
    pair_column: str | None = opt.PAIR_COLUMN,
    label_column: str | None = opt.LABEL_COLUMN,
    method: str = opt.METHOD,
    steps: str | None = opt.STEPS,
    method_option: list[str] | None = opt.METHOD_OPTION,
    target: str = typer.Option("pred", "--target", help="pred, all, gold (labelled inputs), or a class index or name."),
    target_fn: str | None = opt.TARGET_FN,
    layer: str | None = opt.LAYER,
    sign: str = opt.SIGN,
    top_k: int | None = opt.TOP_K,
    aggregate: str = opt.AGGREGATE,
    normalize: str | None = opt.NORMALIZE,
    word_level: bool = opt.WORD_LEVEL,
    num_labels: int | None = typer.Option(
        None, "--num-labels", help="Attach a fresh random head (untrained encoders)."
    ),
    device: str | None = opt.DEVICE,
    batch_size: int = opt.BATCH_SIZE,
    max_length: int | None = opt.MAX_LENGTH,
    completeness: bool = typer.Option(
        True,
        "--completeness/--no-completeness",
        help="Report the IG completeness error (one extra forward on the baselines).",
    ),
    dtype: str | None = typer.Option(
        None, "--dtype", help="bfloat16 or float16: run occlusion in reduced precision (autocast; for CUDA)."
    ),
    json_out: Path | None = typer.Option(None, "--json", help="Write the record(s) to this JSONL file."),
    html_out: Path | None = typer.Option(None, "--html", help="Write a standalone HTML heatmap page."),
    plot_out: Path | None = typer.Option(None, "--plot", help="Write a plotly figure (views x tokens) as HTML."),
    out: Path | None = typer.Option(None, "--out", help="Batch mode: write records to this .jsonl or .parquet file."),
    limit: int | None = opt.LIMIT,
    resume: bool = typer.Option(False, "--resume", help="Batch mode: continue an interrupted --out run."),
    progress: bool = opt.PROGRESS,
) -> None:
    """Explain predictions: coloured tokens in the terminal, or a batch from --input/--dataset to --out.

    Batch mode runs in several processes under `torchrun --nproc_per_node N -m attribkit explain ...` or
    `accelerate launch -m attribkit explain ...`: each explains a shard, the first merges them into --out.
    """
    import attribkit as ak
    from attribkit.commands.batch_run import run_batch
    from attribkit.distributed import agree, process_device, process_group

    with process_group() as group:
        error: BaseException | None = None
        try:
            rows = opt.read_rows(text, pair, input_file, dataset, split, text_column, pair_column, label_column, limit)
            spec = opt.target_spec(target)
            options = opt.method_options(method, steps, target_fn, layer, method_option)
            opt.check_explain_options(sign, aggregate, top_k, normalize)
            for path, suffixes, flag in (
                (json_out, (".jsonl", ".json"), "--json"),
                (html_out, (".html", ".htm"), "--html"),
                (plot_out, (".html", ".htm"), "--plot"),
                (out, (".jsonl", ".parquet"), "--out"),
            ):
                opt.check_suffix(path, suffixes, flag)
            opt.check_distinct_outputs(json=json_out, html=html_out, plot=plot_out, out=out)
            batch_mode = text is None
            if batch_mode and out is None:
                raise OptionError(
                    "batch mode (--input/--dataset) writes records to --out FILE.jsonl|.parquet; give --out"
                )
            if not batch_mode and (out is not None or resume):
                raise OptionError(
                    "--out and --resume are for batch mode (--input or --dataset); with --text use --json/--html/--plot"
                )
            if batch_mode and (json_out is not None or plot_out is not None):
                raise OptionError(
                    "in batch mode records go to --out (and a page to --html); --json and --plot are for --text"
                )
            if group is not None and not batch_mode:
                raise OptionError(
                    "several processes share batch work (--input/--dataset with --out); run --text in one process"
                )
            if resume and num_labels is not None:
                raise OptionError(
                    "--resume cannot continue a run with --num-labels: the fresh head is random each time"
                )
            clf = ak.load_classifier(opt.model_path(model), device=process_device(device, group), num_labels=num_labels)
            clf.name = opt.model_name(model)  # records and pages name the model as the user did
            opt.check_target(clf, spec)
            labels = opt.gold_labels(rows, spec, clf)
        except Exception as exc:  # every process must learn of it, or the others wait forever
            error = exc
        agree(group, error)
        kwargs: dict[str, Any] = dict(
            method=method,
            targets=spec,
            sign=sign,
            top_k=top_k,
            aggregate=aggregate,
            normalize=normalize,
            word_level=word_level,
            batch_size=batch_size,
            max_length=max_length,
            completeness=completeness,
            dtype=dtype,
            **options,
        )
        if batch_mode:
            assert out is not None
            settings = {k: v for k, v in kwargs.items() if k != "batch_size"}  # batch size changes speed, not results
            fingerprint = {
                "model": opt.model_identity(opt.model_path(model)),
                "inputs": opt.inputs_identity(rows),
                "label_column": label_column,
                **opt.with_method_defaults(method, settings),
            }
            run_batch(clf, rows, labels, kwargs, out, html_out, resume, progress, fingerprint, group)
        else:
            _single(clf, rows[0], labels, kwargs, json_out, html_out, plot_out)


def _single(
    clf: Any, row: Any, labels: Any, kwargs: dict, json_out: Path | None, html_out: Path | None, plot_out: Path | None
) -> None:
    from rich.console import Console

    import attribkit as ak

    records = ak.explain(clf, [row.model_input], labels=labels, **kwargs)
    console = Console()
    for record in records:
        for view in range(len(record.views)):
            console.print(ak.render_terminal(record, view=view))
    if json_out is not None:
        ak.save(records, json_out)
        console.print(f"wrote {json_out}")
    if html_out is not None:
        ak.save_html(ak.render_html(records), html_out)
        console.print(f"wrote {html_out}")
    if plot_out is not None:
        from attribkit.render.figures import save_figure

        save_figure(ak.plot(records[0]), str(plot_out))
        console.print(f"wrote {plot_out}")


def register(app: typer.Typer) -> None:
    """Add ``explain`` to the app."""
    app.command("explain")(explain)

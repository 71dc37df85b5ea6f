"""``attribkit faithfulness``: comprehensiveness, sufficiency and AOPC of a method on a model."""

from __future__ import annotations

from pathlib import Path

import typer

from attribkit.commands import options as opt


def faithfulness(
    model: str | None = opt.MODEL,
    text: str | None = typer.Option(None, "--text", help="One text to evaluate on."),
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
    target_fn: str | None = opt.TARGET_FN,
    layer: str | None = opt.LAYER,
    word_level: bool = opt.WORD_LEVEL,
    fractions: str = typer.Option(
        "0.01,0.05,0.1,0.2,0.5", "--fractions", help="Deletion fractions (ERASER's by default)."
    ),
    soft: bool = typer.Option(
        False, "--soft", help="Also the soft criterion (Zhao & Aletras, ACL 2023): Soft-NC and Soft-NS."
    ),
    soft_samples: int = typer.Option(10, "--soft-samples", help="Bernoulli draws per example for --soft."),
    json_out: Path | None = typer.Option(None, "--json", help="Write per-example and mean scores as JSON."),
    device: str | None = opt.DEVICE,
    batch_size: int = opt.BATCH_SIZE,
    max_length: int | None = opt.MAX_LENGTH,
    limit: int | None = opt.LIMIT,
    progress: bool = opt.PROGRESS,
) -> None:
    """Delete each explanation's top tokens and measure how the prediction changes (ERASER / ferret).

    Runs in several processes under `torchrun --nproc_per_node N -m attribkit faithfulness ...`: each scores
    a share of the inputs, the first reports them all.
    """
    from rich.console import Console
    from rich.table import Table

    import attribkit as ak
    from attribkit.distributed import agree, gather_to_main, process_device, process_group
    from attribkit.evaluation.metrics import summarize

    with process_group() as group:
        error: BaseException | None = None
        try:
            rows = opt.read_rows(text, pair, input_file, dataset, split, text_column, pair_column, label_column, limit)
            options = opt.method_options(method, steps, target_fn, layer, method_option)
            opt.check_suffix(json_out, (".json",), "--json")
            try:
                levels = [float(f) for f in fractions.split(",") if f.strip()]
            except ValueError:
                raise ak.OptionError(
                    f"--fractions takes comma-separated numbers in (0, 1], e.g. 0.1,0.2; got {fractions!r}"
                ) from None
            if not levels or any(not 0 < f <= 1 for f in levels):
                raise ak.OptionError(f"--fractions must be numbers in (0, 1]; got {fractions!r}")
            if soft_samples < 1:
                raise ak.OptionError(f"--soft-samples must be a positive integer; got {soft_samples}")
            clf = ak.load_classifier(opt.model_path(model), device=process_device(device, group))
            mine = list(range(len(rows)))
            if group is not None:
                from attribkit.batch_explain import shard_batches

                shard = shard_batches(clf, rows, group.world, batch_size=batch_size, max_length=max_length)[group.rank]
                mine = [i for batch in shard for i in batch]
        except Exception as exc:  # every process must learn of it, or the others wait forever
            error = exc
        agree(group, error)
        try:
            show = progress and (group is None or group.is_main)
            passes = (3 if soft else 2) * len(mine)
            with opt.progress_bar(passes, "explaining, then deleting", show) as update:
                records = ak.explain(
                    clf,
                    [rows[i].model_input for i in mine],
                    method=method,
                    word_level=word_level,
                    batch_size=batch_size,
                    max_length=max_length,
                    progress=update,
                    **options,
                )
                scores = ak.faithfulness(
                    clf,
                    records,
                    fractions=levels,
                    batch_size=batch_size,
                    max_length=max_length,
                    progress=lambda n: update(len(mine) + n),
                )
                soft_scores = (
                    ak.soft_faithfulness(
                        clf,
                        records,
                        n_samples=soft_samples,
                        batch_size=batch_size,
                        max_length=max_length,
                        progress=lambda n: update(2 * len(mine) + n),
                    )
                    if soft
                    else [None] * len(records)
                )
        except Exception as exc:
            error = exc
        agree(group, error)
        if group is not None:
            gathered = gather_to_main(group, list(zip(mine, records, scores, soft_scores)))
            if gathered is None:
                return  # the main process reports
            ordered = sorted((item for part in gathered for item in part), key=lambda item: item[0])
            records, scores = [item[1] for item in ordered], [item[2] for item in ordered]
            soft_scores = [item[3] for item in ordered]
    per_fraction = [
        {
            **{f"comprehensiveness@{f:g}": c for f, c in zip(s.fractions, s.comprehensiveness)},
            **{f"sufficiency@{f:g}": v for f, v in zip(s.fractions, s.sufficiency)},
            "aopc_comprehensiveness": s.aopc_comprehensiveness,
            "aopc_sufficiency": s.aopc_sufficiency,
            **(
                {"soft_comprehensiveness": z.soft_comprehensiveness, "soft_sufficiency": z.soft_sufficiency}
                if z is not None
                else {}
            ),
        }
        for s, z in zip(scores, soft_scores)
    ]
    summary = summarize(per_fraction)
    table = Table(
        title=f"faithfulness of {method} on {len(rows)} example(s)",
        caption=f"method: {records[0].method_summary()}" if records else None,
    )
    for column in ("fraction", "comprehensiveness (higher better)", "sufficiency (lower better)"):
        table.add_column(column, justify="right")
    for f in levels:
        c, s = summary[f"comprehensiveness@{f:g}"], summary[f"sufficiency@{f:g}"]
        table.add_row(f"{f:g}", f"{c['mean']:.4f} ± {c['std']:.4f}", f"{s['mean']:.4f} ± {s['std']:.4f}")
    c, s = summary["aopc_comprehensiveness"], summary["aopc_sufficiency"]
    table.add_row("AOPC", f"{c['mean']:.4f} ± {c['std']:.4f}", f"{s['mean']:.4f} ± {s['std']:.4f}", style="bold")
    console = Console()
    console.print(table)
    if soft:  # its own table: soft sufficiency is better when higher, the hard one when lower
        soft_table = Table(title=f"soft faithfulness of {method} (Zhao & Aletras, 2023)")
        soft_table.add_column("normalised soft comprehensiveness (higher better)", justify="right")
        soft_table.add_column("normalised soft sufficiency (higher better)", justify="right")
        c, s = summary["soft_comprehensiveness"], summary["soft_sufficiency"]
        soft_table.add_row(f"{c['mean']:.4f} ± {c['std']:.4f}", f"{s['mean']:.4f} ± {s['std']:.4f}")
        console.print(soft_table)
    if json_out is not None:
        data = {
            "method": method,
            "options": records[0].options,
            "fractions": levels,
            "summary": summary,
            "examples": [
                {"text": r.text, "pair": r.pair, **sc.to_dict(), **({"soft": z.to_dict()} if z is not None else {})}
                for r, sc, z in zip(records, scores, soft_scores)
            ],
        }
        opt.write_json(data, json_out)
        typer.echo(f"wrote {json_out}")


def register(app: typer.Typer) -> None:
    """Add ``faithfulness`` to the app."""
    app.command("faithfulness")(faithfulness)

"""``attribkit leaderboard``: which explainer for my model? Every method on my sentences, with intervals."""

from __future__ import annotations

from pathlib import Path

import typer

from attribkit.commands import options as opt


def leaderboard(
    model: str | None = opt.MODEL,
    input_file: Path | None = opt.INPUT,
    dataset: str | None = opt.DATASET,
    split: str | None = opt.SPLIT,
    text_column: str | None = opt.TEXT_COLUMN,
    pair_column: str | None = opt.PAIR_COLUMN,
    out: Path = typer.Option(..., "--out", help="Folder of the run: its cells (JSON) and report.html."),
    methods: str | None = typer.Option(
        None,
        "--methods",
        help="Comma-separated methods (default: every built-in one, at its default and cheap setting).",
    ),
    draws: int = typer.Option(10, "--draws", help="Random maps per sentence for the random baseline."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random maps and of the bootstrap."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run in --out."),
    device: str | None = opt.DEVICE,
    batch_size: int = opt.BATCH_SIZE,
    max_length: int | None = opt.MAX_LENGTH,
    limit: int | None = opt.LIMIT,
) -> None:
    """Score attribution methods on your model and sentences: faithfulness with 95 % intervals, random and reversed maps.

    Each finished cell is saved in --out at once; --resume continues an interrupted run (the same model,
    sentences, methods and seed). Writes --out/report.html (table, recommendation and figure).
    """
    from rich.console import Console

    import attribkit as ak
    from attribkit.files import atomic_write_text
    from attribkit.leaderboard import Leaderboard, recommendation, settings_for
    from attribkit.render.leaderboard import leaderboard_html

    rows = opt.read_rows(None, None, input_file, dataset, split, text_column, pair_column, "", limit)
    if batch_size < 1:
        raise ak.OptionError(f"--batch-size must be a positive integer; got {batch_size}")
    chosen = settings_for(None if methods is None else [m.strip() for m in methods.split(",") if m.strip()])
    board = Leaderboard(
        out,
        model_name=opt.model_name(model),
        texts=[r.model_input for r in rows],
        settings=chosen,
        draws=draws,
        seed=seed,
        resume=resume,
    )
    clf = ak.load_classifier(opt.model_path(model), device=device)
    console = Console(stderr=True)
    left = board.pending()
    console.print(f"{len(rows)} sentences, {len(left)} cell(s) to score in {out}")

    def finished(key: str, cell: dict) -> None:
        seconds = cell.get("seconds_per_sentence")
        timing = f", {seconds:.3f} s/sentence" if seconds is not None else ""
        mean = sum(cell["comprehensiveness"]) / len(cell["comprehensiveness"])
        console.print(f"  {key}: comprehensiveness {mean:.3f}{timing}")

    board.run(clf, batch_size=batch_size, max_length=max_length, on_cell=finished)
    summary = board.rows()
    title = f"Which explainer for {opt.model_name(model)}?"
    report = atomic_write_text(out / "report.html", leaderboard_html(summary, title=title, sentences=len(rows)))
    typer.echo(recommendation(summary))
    typer.echo(f"wrote {report}")


def register(app: typer.Typer) -> None:
    """Add ``leaderboard`` to the app."""
    app.command("leaderboard")(leaderboard)

"""``attribkit plausibility``: how well a method's explanations agree with human rationales."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from attribkit.commands import options as opt


def read_rationales(path: Path) -> list[dict[str, Any]]:
    """Rows of a rationale jsonl: ``text`` (and ``pair``), with ``rationale_spans`` (character offsets,
    ``[[start, end], ...]``) or ``rationale_mask`` (0/1 per whitespace-separated word, ERASER's token
    masks); ``pair_rationale_spans`` / ``pair_rationale_mask`` for the pair. One-line errors otherwise.
    """
    import attribkit as ak

    if path.suffix != ".jsonl":
        raise ak.InvalidInputError(f"{path}: rationales come as .jsonl (one JSON object per line)")
    if not path.is_file():
        raise ak.InvalidInputError(f"no such file: {path}")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ak.InvalidInputError(f"{path}:{number}: not JSON ({exc.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            raise ak.InvalidInputError(f'{path}:{number}: each line needs a "text" string')
        if ("rationale_spans" in row) == ("rationale_mask" in row):
            raise ak.InvalidInputError(f"{path}:{number}: give exactly one of rationale_spans or rationale_mask")
        rows.append(row)
    if not rows:
        raise ak.InvalidInputError(f"{path} has no rationales")
    return rows


def _mask(record: Any, row: dict[str, Any], number: int) -> list[bool]:
    import attribkit as ak

    try:
        if "rationale_spans" in row:
            spans = [tuple(s) for s in row["rationale_spans"]]
            pair_spans = [tuple(s) for s in row.get("pair_rationale_spans", [])]
            return ak.rationale_from_spans(record, spans, pair_spans)
        return ak.rationale_from_word_mask(record, row["rationale_mask"], row.get("pair_rationale_mask", []))
    except ak.InvalidInputError as exc:  # before ValueError, which it subclasses
        raise ak.InvalidInputError(f"line {number}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise ak.InvalidInputError(f"line {number}: malformed rationale ({exc})") from None


def plausibility(
    input_file: Path = typer.Option(..., "--input", help="Rationales as .jsonl (text, rationale_spans or _mask)."),
    model: str | None = opt.MODEL,
    method: str = opt.METHOD,
    steps: str | None = opt.STEPS,
    method_option: list[str] | None = opt.METHOD_OPTION,
    target_fn: str | None = opt.TARGET_FN,
    layer: str | None = opt.LAYER,
    k: int = typer.Option(5, "--k", help="Units in the method's hard rationale (its top K positive)."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the summary and per-example scores."),
    device: str | None = opt.DEVICE,
    batch_size: int = opt.BATCH_SIZE,
    max_length: int | None = opt.MAX_LENGTH,
    progress: bool = opt.PROGRESS,
) -> None:
    """Agreement of a method's explanations with human rationales: token F1, IOU F1, AUPRC (ERASER / ferret)."""
    import attribkit as ak

    rows = read_rationales(input_file)
    options = opt.method_options(method, steps, target_fn, layer, method_option)
    opt.check_suffix(json_out, (".json",), "--json")
    if k < 1:
        raise ak.OptionError(f"--k must be a positive integer; got {k}")
    clf = ak.load_classifier(opt.model_path(model), device=device)
    inputs = [row["text"] if row.get("pair") is None else (row["text"], row["pair"]) for row in rows]
    with opt.progress_bar(len(rows), "explaining", progress) as update:
        records = ak.explain(
            clf, inputs, method=method, batch_size=batch_size, max_length=max_length, progress=update, **options
        )
    masks = [_mask(record, row, number) for number, (record, row) in enumerate(zip(records, rows), start=1)]
    scores = ak.plausibility(records, masks, k=k)
    typer.echo(f"plausibility of {records[0].method_summary()} on {len(rows)} example(s), hard rationale: top {k}")
    typer.echo(f"token F1 {scores.mean_token_f1:.4f}   IOU F1 {scores.iou_f1:.4f}   AUPRC {scores.mean_auprc:.4f}")
    if json_out is not None:
        opt.write_json({"method": method, "options": records[0].options, **scores.to_dict()}, json_out)
        typer.echo(f"wrote {json_out}")


def register(app: typer.Typer) -> None:
    """Add ``plausibility`` to the app."""
    app.command("plausibility")(plausibility)

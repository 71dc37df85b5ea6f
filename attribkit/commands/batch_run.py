"""Batch mode of ``attribkit explain``: flags in, :func:`attribkit.batch_explain.explain_to_file` does the work."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from attribkit.batch_explain import CHUNK, explain_to_file, merge_shards, shard_batches, shard_path
from attribkit.distributed import ProcessGroup

__all__ = ["CHUNK", "merge_shards", "run_batch", "shard_batches", "shard_path"]  # the engine's names, where they were


def run_batch(
    clf: Any,
    rows: list,
    labels: list | None,
    kwargs: dict,
    out: Path,
    html_out: Path | None,
    resume: bool,
    progress: bool,
    fingerprint: dict[str, Any],
    group: ProcessGroup | None,
) -> None:
    """Explain ``rows`` into ``out`` (one process, or this process's shard) and say what was written."""
    result = explain_to_file(
        clf, rows, out, labels=labels, resume=resume, progress=progress, group=group, fingerprint=fingerprint, **kwargs
    )
    if result.path is None:
        return  # a sharded run: the main process reports
    if result.processes > 1:
        typer.echo(f"wrote {result.records} records to {result.path} from {result.processes} processes")
    else:
        typer.echo(
            f"wrote {result.records} record{'s' if result.records != 1 else ''} to {result.path}"
            + (f" ({result.resumed} from the interrupted run)" if result.resumed else "")
        )
    _html(result.path, html_out)


def _html(path: Path, html_out: Path | None) -> None:
    if html_out is None:
        return
    import attribkit as ak

    ak.save_html(ak.render_html(ak.load(path)), html_out)
    typer.echo(f"wrote {html_out}")

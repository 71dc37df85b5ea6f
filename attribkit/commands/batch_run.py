"""Batch mode of ``attribkit explain``: resumable, in one process or sharded over many.

One process streams records into ``OUT.partial`` (see :mod:`attribkit.batch`). Under ``torchrun``
or ``accelerate launch`` each process explains its shard into ``OUT.shard-R-of-N.jsonl.partial``,
resumable like the single file, and the main process merges the shards in input order into
``OUT`` once every shard is complete.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from attribkit.batch import RecordWriter, write_parquet
from attribkit.commands import options as opt
from attribkit.completeness import CompletenessTally
from attribkit.distributed import ProcessGroup, agree, barrier
from attribkit.errors import InvalidInputError, OptionError

CHUNK = 64  # inputs explained and flushed to disk at a time


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
    """Explain ``rows`` into ``out`` (one process), or this process's shard of them (several)."""
    if group is None:
        _refuse_shards(out, None)
        single = RecordWriter(out, resume=resume, fingerprint=fingerprint)
        _explain_into(single, clf, rows, labels, kwargs, progress, f"explaining {out.name}")
        path = single.finish()
        start = single.resumed
        typer.echo(
            f"wrote {len(rows)} record{'s' if len(rows) != 1 else ''} to {path}"
            + (f" ({start} from the interrupted run)" if start else "")
        )
        _html(path, html_out)
        return
    error: BaseException | None = None
    writer: RecordWriter | None = None
    shards: list[list[list[int]]] = []
    try:
        if out.exists():
            raise InvalidInputError(f"{out} already exists (a finished run); delete it or choose another --out")
        _refuse_shards(out, group.world)
        shards = shard_batches(clf, rows, group.world, batch_size=kwargs["batch_size"], max_length=kwargs["max_length"])
        writer = RecordWriter(
            shard_path(out, group.rank, group.world),
            resume=resume,
            fingerprint={**fingerprint, "shard": f"{group.rank} of {group.world}"},
        )
    except Exception as exc:  # every process must learn of it, or the others wait forever
        error = exc
    agree(group, error)
    assert writer is not None
    try:
        _explain_batches(
            writer,
            clf,
            rows,
            labels,
            shards[group.rank],
            kwargs,
            progress and group.is_main,
            f"explaining shard {group.rank + 1} of {group.world}",
        )
    except Exception as exc:
        error = exc
    agree(group, error)
    if group.is_main:
        path = merge_shards(out, len(rows), [[i for batch in shard for i in batch] for shard in shards])
        typer.echo(f"wrote {len(rows)} records to {path} from {group.world} processes")
        _html(path, html_out)
    barrier(group)


def shard_batches(
    clf: Any, rows: list, world: int, *, batch_size: int, max_length: int | None
) -> list[list[list[int]]]:
    """The one-process run's batches, dealt to ``world`` processes with balanced token counts.

    The batches are exactly those a one-process run forms (length buckets within each chunk of
    :data:`CHUNK` inputs), so every text is explained in the same company, with the same padding;
    the longest batches are dealt first, each to the process with the fewest tokens so far.

    Returns:
        Per process, its batches (lists of input indices), in input order of their first text.

    Raises:
        OptionError: more processes than inputs.
    """
    import warnings

    from attribkit.facade import length_buckets

    if world > len(rows):
        raise OptionError(
            f"{world} processes for {len(rows)} input(s): start at most {len(rows)} "
            "(each process needs at least one input)"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # explain warns about truncation itself
        lengths = [len(clf.tokenize(r.model_input, max_length=max_length).input_ids) for r in rows]
    batches = [
        [begin + i for i in bucket]
        for begin in range(0, len(rows), CHUNK)
        for bucket in length_buckets(lengths[begin : begin + CHUNK], batch_size)
    ]
    load = [0] * world
    dealt: list[list[list[int]]] = [[] for _ in range(world)]
    for batch in sorted(batches, key=lambda b: (-len(b) * max(lengths[i] for i in b), b[0])):
        rank = min(range(world), key=lambda r: (load[r], r))
        dealt[rank].append(batch)
        load[rank] += len(batch) * max(lengths[i] for i in batch)
    if any(not shard for shard in dealt):
        raise OptionError(
            f"{world} processes for {len(batches)} batch(es) of --batch-size {batch_size}: start at most "
            f"{len(batches)} processes, or lower --batch-size"
        )
    return [sorted(shard, key=lambda b: b[0]) for shard in dealt]


def shard_path(out: Path, rank: int, world: int) -> Path:
    """Where process ``rank`` of ``world`` writes its records (``.partial`` added while unfinished)."""
    return out.with_name(f"{out.name}.shard-{rank}-of-{world}.jsonl")


def merge_shards(out: Path, total: int, shards: list[list[int]]) -> Path:
    """Merge complete shard files into ``out`` in input order, then remove them.

    Raises:
        InvalidInputError: a shard holds fewer or more records than it was dealt.
    """
    lines: list[str | None] = [None] * total
    world = len(shards)
    for rank, indices in enumerate(shards):
        partial = _partial(shard_path(out, rank, world))
        shard_lines = partial.read_text(encoding="utf-8").splitlines()
        if len(shard_lines) != len(indices):
            raise InvalidInputError(f"{partial} holds {len(shard_lines)} records, expected {len(indices)}")
        for index, line in zip(indices, shard_lines):
            lines[index] = line
    merged = out.with_name(out.name + ".merging")
    merged.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    if out.suffix == ".parquet":
        write_parquet(merged, out)
        merged.unlink()
    else:
        merged.replace(out)
    for rank in range(world):
        partial = _partial(shard_path(out, rank, world))
        partial.unlink()
        partial.with_name(partial.name + ".run.json").unlink(missing_ok=True)
    return out


def _partial(path: Path) -> Path:
    return path.with_name(path.name + ".partial")


def _refuse_shards(out: Path, world: int | None) -> None:
    """Refuse leftovers of a run with another process count (or a one-process partial in a sharded run)."""
    prefix = f"{out.name}.shard-"
    others = sorted({p.name.split("-of-")[1].split(".")[0] for p in out.parent.glob(f"{prefix}*-of-*.jsonl.partial")})
    foreign = [n for n in others if world is None or n != str(world)]
    if foreign:
        raise InvalidInputError(
            f"{out.parent} holds shards of an interrupted {foreign[0]}-process run for {out.name}: resume it with "
            f"{foreign[0]} processes (torchrun --nproc_per_node {foreign[0]} ... --resume) or delete {prefix}*"
        )
    single = _partial(out)
    if world is not None and single.exists():
        raise InvalidInputError(
            f"{single} holds an interrupted one-process run: resume it without torchrun, or delete it"
        )


def _explain_into(
    writer: RecordWriter, clf: Any, rows: list, labels: list | None, kwargs: dict, progress: bool, description: str
) -> None:
    """Explain the rows not yet in ``writer`` chunk by chunk, flushing each chunk to disk."""
    import attribkit as ak

    start = writer.done
    if start > len(rows):
        raise OptionError(
            f"{writer.partial} has {start} records but the input has only {len(rows)}; is it the same input?"
        )
    tally = CompletenessTally()  # one completeness warning for the run, not one per chunk
    try:
        with opt.progress_bar(len(rows), description, progress) as update:
            update(start)
            for begin in range(start, len(rows), CHUNK):
                chunk = rows[begin : begin + CHUNK]
                gold = labels[begin : begin + CHUNK] if labels is not None else None
                done_before = writer.done

                def report(n: int, base: int = done_before) -> None:
                    update(base + n)

                with tally.watch(range(begin, begin + len(chunk))):
                    records = ak.explain(clf, [r.model_input for r in chunk], labels=gold, progress=report, **kwargs)
                writer.write(records)
                update(writer.done)
    except BaseException:
        if writer.done == 0:
            writer.discard()  # nothing finished: leave no trace
        raise
    tally.warn()


def _explain_batches(
    writer: RecordWriter,
    clf: Any,
    rows: list,
    labels: list | None,
    batches: list[list[int]],
    kwargs: dict,
    progress: bool,
    description: str,
) -> None:
    """Explain this process's batches (skipping records already on disk), one flush per batch."""
    import attribkit as ak

    order = [i for batch in batches for i in batch]
    if writer.done > len(order):
        raise OptionError(f"{writer.partial} has {writer.done} records but this shard has only {len(order)}")
    tally = CompletenessTally()  # one completeness warning for this process's share
    with opt.progress_bar(len(order), description, progress) as update:
        update(writer.done)
        position = 0
        for batch in batches:
            todo = list(batch[max(0, writer.done - position) :])
            position += len(batch)
            if not todo:
                continue
            gold = [labels[i] for i in todo] if labels is not None else None
            with tally.watch(todo):
                records = ak.explain(clf, [rows[i].model_input for i in todo], labels=gold, **kwargs)
            writer.write(records)
            update(writer.done)
    tally.warn()


def _html(path: Path, html_out: Path | None) -> None:
    if html_out is None:
        return
    import attribkit as ak

    ak.save_html(ak.render_html(ak.load(path)), html_out)
    typer.echo(f"wrote {html_out}")

"""Resumable batch explaining into a file, in one process or sharded over many (the engine of ``attribkit explain --out``).

One process streams records into ``OUT.partial`` (see :mod:`attribkit.record_writer`), a chunk of
:data:`CHUNK` inputs at a time, so a killed run loses at most one chunk and ``resume=True``
continues it (refusing a run made with other settings). Under ``torchrun`` or ``accelerate
launch`` (a :class:`attribkit.distributed.ProcessGroup`) each process explains its shard into
``OUT.shard-R-of-N.jsonl.partial``, resumable like the single file, and the main process merges the
shards in input order into ``OUT`` once every shard is complete. :func:`explain_to_file` is the
entry point; the command line only parses flags and prints.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attribkit.completeness import CompletenessTally
from attribkit.distributed import ProcessGroup, agree, barrier
from attribkit.errors import InvalidInputError, OptionError
from attribkit.inputs import InputRow
from attribkit.progress import progress_bar
from attribkit.record_writer import RecordWriter, write_parquet

CHUNK = 64  # inputs explained and flushed to disk at a time


@dataclass(frozen=True)
class BatchResult:
    """What :func:`explain_to_file` wrote.

    Attributes:
        path: The finished file (None on the processes of a sharded run other than the main one).
        records: Records in it.
        resumed: Records that came from the interrupted run it continued (0 for a fresh run).
        processes: Processes that shared the work.
    """

    path: Path | None
    records: int
    resumed: int = 0
    processes: int = 1


def explain_to_file(
    classifier: Any,
    inputs: Sequence[Any],
    out: str | Path,
    *,
    labels: Sequence[Any] | None = None,
    resume: bool = False,
    progress: bool = False,
    group: ProcessGroup | None = None,
    fingerprint: dict[str, Any] | None = None,
    **options: Any,
) -> BatchResult:
    """Explain ``inputs`` into ``out`` (``.jsonl`` or ``.parquet``), resumably; sharded when ``group`` is given.

    Args:
        classifier: From :func:`attribkit.load_classifier`.
        inputs: Strings, ``(text, pair)`` tuples or :class:`attribkit.InputRow` objects.
        out: The file to write; ``OUT.partial`` holds the records while the run is unfinished.
        labels: Gold labels, one per input (for ``targets="gold"``).
        resume: Continue an interrupted run (refused when its settings differ); without it, a partial
            file of an earlier run is refused rather than overwritten.
        progress: Show a progress bar on stderr (plain lines when stderr is not a terminal).
        group: The process group of a ``torchrun`` / ``accelerate launch`` run
            (:func:`attribkit.distributed.process_group`); None = this process does everything.
        fingerprint: What a resumed run must match; None = the model, the inputs (a hash) and the
            explain options.
        **options: :func:`attribkit.explain`'s options (``method``, ``steps``, ``targets``, ``batch_size`` ...).

    Returns:
        A :class:`BatchResult`.
    """
    rows = [as_row(item) for item in inputs]
    if not rows:
        raise InvalidInputError("no inputs to explain")
    if labels is not None and len(labels) != len(rows):
        raise InvalidInputError(f"got {len(labels)} labels for {len(rows)} inputs; give exactly one per input")
    out = Path(out)
    if out.suffix not in (".jsonl", ".parquet"):
        raise OptionError(f"the output must be a .jsonl or .parquet file; got {out.name}")
    options = {"batch_size": 16, "max_length": None, **options}
    if fingerprint is None:
        settings = {k: v for k, v in options.items() if k != "batch_size"}  # batch size changes speed, not results
        fingerprint = {
            "model": model_identity(str(getattr(classifier, "name", None) or "")),
            "inputs": inputs_identity(rows),
            "labels": None if labels is None else [str(label) for label in labels],
            **settings,
        }
    gold = None if labels is None else list(labels)
    if group is None:
        refuse_shards(out, None)
        single = RecordWriter(out, resume=resume, fingerprint=fingerprint)
        explain_chunks(single, classifier, rows, gold, options, progress, f"explaining {out.name}")
        return BatchResult(single.finish(), len(rows), single.resumed)
    error: BaseException | None = None
    writer: RecordWriter | None = None
    shards: list[list[list[int]]] = []
    try:
        if out.exists():
            raise InvalidInputError(f"{out} already exists (a finished run); delete it or choose another --out")
        refuse_shards(out, group.world)
        shards = shard_batches(
            classifier, rows, group.world, batch_size=options["batch_size"], max_length=options["max_length"]
        )
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
        explain_shard(
            writer,
            classifier,
            rows,
            gold,
            shards[group.rank],
            options,
            progress and group.is_main,
            f"explaining shard {group.rank + 1} of {group.world}",
        )
    except Exception as exc:
        error = exc
    agree(group, error)
    path = None
    if group.is_main:
        path = merge_shards(out, len(rows), [[i for batch in shard for i in batch] for shard in shards])
    barrier(group)
    return BatchResult(path, len(rows), 0, group.world)


def as_row(item: Any) -> InputRow:
    """An input as an :class:`attribkit.InputRow` (a string, a ``(text, pair)`` tuple, or a row already)."""
    if isinstance(item, InputRow):
        return item
    if isinstance(item, str):
        return InputRow(item)
    if isinstance(item, tuple) and len(item) == 2 and all(isinstance(t, str) for t in item):
        return InputRow(item[0], item[1])
    raise InvalidInputError(f"an input is a string, a (text, pair) tuple or an InputRow; got {type(item).__name__}")


def model_identity(model: str) -> dict[str, Any]:
    """What identifies a checkpoint for a resumed run: its resolved folder and its files' names, sizes and times."""
    path = Path(model).expanduser()
    if not model or not path.is_dir():
        return {"name": model}
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        stat = file.stat()
        digest.update(f"{file.relative_to(path)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return {"path": str(path.resolve()), "files": digest.hexdigest()[:16]}


def inputs_identity(rows: Sequence[InputRow]) -> dict[str, Any]:
    """What identifies the inputs for a resumed run: their number and a hash of every text, pair and label."""
    digest = hashlib.sha256()
    for row in rows:
        digest.update(json.dumps([row.text, row.pair, row.label], ensure_ascii=False).encode() + b"\n")
    return {"count": len(rows), "sha256": digest.hexdigest()[:16]}


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


def refuse_shards(out: Path, world: int | None) -> None:
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


def explain_chunks(
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
        with progress_bar(len(rows), description, progress) as update:
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


def explain_shard(
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
    with progress_bar(len(order), description, progress) as update:
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

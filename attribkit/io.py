"""Save and load attribution records as JSON Lines."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from attribkit.errors import InvalidInputError
from attribkit.files import atomic_write_text
from attribkit.record import Attribution


def save(records: Iterable[Attribution], path: str | Path) -> Path:
    """Write records to ``path`` as JSON Lines (one record per line), atomically.

    The file appears only when every record is written, so an interrupted call never leaves a
    partial file behind.
    """
    target = Path(path)
    if target.suffix not in (".jsonl", ".json"):
        raise InvalidInputError(f"cannot save to {target}: use a .jsonl file")
    return atomic_write_text(target, "".join(json.dumps(r.to_dict(), ensure_ascii=False) + "\n" for r in records))


def iter_records(path: str | Path) -> Iterator[Attribution]:
    """Yield records from a JSON Lines file, one at a time."""
    source = Path(path)
    if not source.is_file():
        raise InvalidInputError(f"no such file: {source}")
    with source.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield Attribution.from_dict(json.loads(line))
            except (json.JSONDecodeError, InvalidInputError) as exc:
                raise InvalidInputError(f"{source}:{number}: not an attribution record ({exc})") from exc


def load(path: str | Path) -> list[Attribution]:
    """Read every record of a JSON Lines file written by :func:`save`, or a parquet file from batch mode."""
    if Path(path).suffix == ".parquet":
        from attribkit.record_writer import read_parquet

        if not Path(path).is_file():
            raise InvalidInputError(f"no such file: {path}")
        return read_parquet(path)
    return list(iter_records(path))

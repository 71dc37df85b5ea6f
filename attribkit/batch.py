"""Resumable batch output: records stream into ``OUT.partial`` and become ``OUT`` only when complete.

Records are appended in input order and flushed to disk after every chunk, so a run stopped by
Ctrl-C or a kill keeps every finished record; ``resume=True`` counts the complete lines of the
partial file (dropping a half-written last line) and the caller skips that many inputs. The
output file itself appears only when the last record is written (``.jsonl`` as is, ``.parquet``
converted at the end), so a partial result is never presented as a complete one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

from attribkit.errors import InvalidInputError
from attribkit.types import Attribution

OUTPUT_SUFFIXES = (".jsonl", ".parquet")


class RecordWriter:
    """Append-only writer of attribution records with resume support.

    Args:
        path: The final output file (``.jsonl`` or ``.parquet``).
        resume: Continue an interrupted run instead of refusing an existing partial file.

    Attributes:
        done: Number of records already on disk (inputs to skip when resuming).
    """

    def __init__(self, path: str | Path, *, resume: bool = False) -> None:
        self.path = Path(path)
        if self.path.suffix not in OUTPUT_SUFFIXES:
            raise InvalidInputError(f"cannot write {self.path}: --out must end in .jsonl or .parquet")
        if not self.path.parent.is_dir():
            raise InvalidInputError(f"cannot write {self.path}: folder {self.path.parent} does not exist")
        self.partial = self.path.with_name(self.path.name + ".partial")
        if self.path.exists():
            raise InvalidInputError(f"{self.path} already exists (a finished run); delete it or choose another --out")
        if self.partial.exists() and not resume:
            raise InvalidInputError(f"{self.partial} holds an interrupted run; pass --resume to continue it or delete it")
        self.done = self._complete_lines() if resume and self.partial.exists() else 0
        if not resume or not self.partial.exists():
            self.partial.write_text("", encoding="utf-8")

    def _complete_lines(self) -> int:
        """Count complete records and cut a half-written last line off the partial file."""
        data = self.partial.read_bytes()
        keep = data.rfind(b"\n") + 1
        if keep != len(data):
            with self.partial.open("r+b") as fh:
                fh.truncate(keep)
        return data[:keep].count(b"\n")

    def write(self, records: Iterable[Attribution]) -> None:
        """Append records and force them to disk."""
        with self.partial.open("a", encoding="utf-8") as fh:
            for record in records:
                fh.write(json.dumps(record.to_dict(), ensure_ascii=False) + "\n")
                self.done += 1
            fh.flush()
            os.fsync(fh.fileno())

    def finish(self) -> Path:
        """Publish the output file (converting to parquet if asked) and remove the partial file."""
        if self.path.suffix == ".parquet":
            write_parquet(self.partial, self.path)
            self.partial.unlink()
        else:
            self.partial.replace(self.path)
        return self.path


def write_parquet(jsonl: Path, target: Path) -> None:
    """Convert a JSONL file of records to parquet (one row per record, nested lists kept)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = []
    with jsonl.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                row = json.loads(line)
                row["options"] = json.dumps(row["options"], sort_keys=True)  # free-form: stored as JSON text
                rows.append(row)
    tmp = target.with_name(target.name + ".tmp")
    pq.write_table(pa.Table.from_pylist(rows), tmp)
    tmp.replace(target)


def read_parquet(path: str | Path) -> list[Attribution]:
    """Read records written by :func:`write_parquet`."""
    import pyarrow.parquet as pq

    rows = pq.read_table(path).to_pylist()
    for row in rows:
        row["options"] = json.loads(row["options"])
    return [Attribution.from_dict(row) for row in rows]

"""Resumable batch output: records stream into ``OUT.partial`` and become ``OUT`` only when complete.

Records are appended in input order and flushed to disk after every chunk, so a run stopped by
Ctrl-C or a kill keeps every finished record; ``resume=True`` counts the complete lines of the
partial file (dropping a half-written last line) and the caller skips that many inputs. The
output file itself appears only when the last record is written (``.jsonl`` as is, ``.parquet``
converted at the end), so a partial result is never presented as a complete one.

Beside the partial file, ``OUT.partial.run.json`` keeps the run's fingerprint (model, method and
every option, input identity); a resume with anything different is refused, naming the setting,
so records of two different runs never end up in one file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from attribkit.errors import InvalidInputError
from attribkit.record import Attribution

OUTPUT_SUFFIXES = (".jsonl", ".parquet")


class RecordWriter:
    """Append-only writer of attribution records with resume support.

    Args:
        path: The final output file (``.jsonl`` or ``.parquet``).
        resume: Continue an interrupted run instead of refusing an existing partial file.
        fingerprint: What makes this run this run (JSON-able; nested dicts allowed). Stored with a
            new partial file; on resume it must equal the stored one.

    Attributes:
        done: Number of records already on disk (inputs to skip when resuming).
        resumed: Number of records the interrupted run had left (0 for a fresh run).

    Raises:
        InvalidInputError: wrong suffix, missing folder, a finished output in the way, a partial
            file without ``resume``, or a resume whose fingerprint differs.
    """

    def __init__(self, path: str | Path, *, resume: bool = False, fingerprint: dict[str, Any] | None = None) -> None:
        self.path = Path(path)
        if self.path.suffix not in OUTPUT_SUFFIXES:
            raise InvalidInputError(f"cannot write {self.path}: --out must end in .jsonl or .parquet")
        if not self.path.parent.is_dir():
            raise InvalidInputError(f"cannot write {self.path}: folder {self.path.parent} does not exist")
        self.partial = self.path.with_name(self.path.name + ".partial")
        if self.path.exists():
            raise InvalidInputError(f"{self.path} already exists (a finished run); delete it or choose another --out")
        if self.partial.exists() and not resume:
            raise InvalidInputError(
                f"{self.partial} holds an interrupted run; pass --resume to continue it or delete it"
            )
        self.meta = self.partial.with_name(self.partial.name + ".run.json")
        continuing = resume and self.partial.exists()
        if continuing and fingerprint is not None:
            check_same_run(self.partial, self.meta, fingerprint)
        self.done = self._complete_lines() if continuing else 0
        self.resumed = self.done
        if not continuing:
            if fingerprint is not None:
                tmp = self.meta.with_name(self.meta.name + ".tmp")
                tmp.write_text(json.dumps(_flat(fingerprint), indent=1, sort_keys=True, default=str), encoding="utf-8")
                tmp.replace(self.meta)
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
        self.meta.unlink(missing_ok=True)
        return self.path

    def discard(self) -> None:
        """Remove the partial file and its fingerprint (a run that finished nothing)."""
        self.partial.unlink(missing_ok=True)
        self.meta.unlink(missing_ok=True)


def check_same_run(partial: Path, meta: Path, fingerprint: dict[str, Any]) -> None:
    """Refuse to resume ``partial`` unless it was made with exactly ``fingerprint``.

    Raises:
        InvalidInputError: no stored fingerprint, or the first setting that differs.
    """
    if not meta.is_file():
        raise InvalidInputError(
            f"cannot --resume {partial}: nothing records the settings it was made with "
            "(an older attribkit, or a lost file); delete it and start over"
        )
    try:
        stored = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInputError(
            f"cannot --resume {partial}: its settings file {meta} is unreadable ({exc}); delete both and start over"
        ) from None
    current = _flat(fingerprint)
    for key in sorted(set(stored) | set(current)):
        if stored.get(key) != current.get(key):
            raise InvalidInputError(
                f"cannot --resume {partial}: it was made with {key}={_show(stored.get(key))}, this run has "
                f"{key}={_show(current.get(key))}; rerun with the same settings, or delete it to start over"
            )


def _flat(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as dotted keys, values through JSON (tuples become lists), for comparison."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flat(value, f"{name}."))
        else:
            out[name] = json.loads(json.dumps(value, default=str))
    return out


def _show(value: Any) -> str:
    text = "(not set)" if value is None else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


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

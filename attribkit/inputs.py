"""Reading texts to explain: txt, tsv/csv and jsonl files, or a ``datasets`` dataset.

Every reader returns :class:`InputRow` values in file order and fails with one clear
:class:`~attribkit.errors.InvalidInputError` (missing file, unknown column, no usable rows).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attribkit.errors import InvalidInputError, first_line

#: Column names tried, in order, when ``text_column`` is not given.
TEXT_COLUMNS = ("text", "sentence", "sentence1", "premise", "question", "question1")
#: Pair columns tried when ``pair_column`` is not given but the text column came from this map.
PAIR_COLUMNS = {"sentence1": "sentence2", "premise": "hypothesis", "question1": "question2"}
LABEL_COLUMNS = ("label", "gold_label")
SUFFIXES = (".txt", ".tsv", ".csv", ".jsonl")


@dataclass(frozen=True)
class InputRow:
    """One input to explain.

    Attributes:
        text: The text.
        pair: The second text of a pair, or None.
        label: The gold label as written in the source (class name or index), or None.
    """

    text: str
    pair: str | None = None
    label: str | int | None = None

    @property
    def model_input(self) -> str | tuple[str, str]:
        """What :func:`attribkit.explain` takes: the text, or ``(text, pair)``."""
        return self.text if self.pair is None else (self.text, self.pair)


def _refuse_empty(source: Path) -> None:
    """An empty file (or only blank lines) is said to be empty, not to lack a text column."""
    try:
        with source.open("rb") as fh:
            empty = not fh.read(1 << 16).strip()
    except OSError as exc:
        raise InvalidInputError(f"cannot read {source}: {exc.strerror or exc}") from None
    if empty and source.stat().st_size < (1 << 16):
        raise InvalidInputError(f"{source} is empty: give a file with one or more inputs")


def read_inputs(
    path: str | Path,
    *,
    text_column: str | None = None,
    pair_column: str | None = None,
    label_column: str | None = None,
) -> list[InputRow]:
    """Read a file of inputs.

    Args:
        path: ``.txt`` (one text per line), ``.tsv`` / ``.csv`` (with a header row) or
            ``.jsonl`` (one JSON object per line).
        text_column: Column with the text (default: the first of :data:`TEXT_COLUMNS` present).
        pair_column: Column with the second text of a pair (default: none, or the usual
            partner of the text column, e.g. ``sentence2`` for ``sentence1``).
        label_column: Column with gold labels (default: ``label`` when present).

    Raises:
        InvalidInputError: missing or unreadable file, unknown format or column, no usable rows.
    """
    source = Path(path)
    if not source.is_file():
        raise InvalidInputError(f"no such input file: {source}")
    suffix = source.suffix.lower()
    if suffix not in SUFFIXES:
        raise InvalidInputError(f"cannot read {source}: use a {', '.join(SUFFIXES)} file")
    _refuse_empty(source)
    try:
        with source.open(encoding="utf-8-sig", newline="") as fh:
            if suffix == ".txt":
                if text_column or pair_column:
                    raise InvalidInputError(
                        f"{source} is plain text (one input per line); --text-column/--pair-column need tsv, csv or jsonl"
                    )
                rows = [InputRow(line.rstrip("\r\n")) for line in fh if line.strip()]
                return _nonempty(rows, source)
            if suffix == ".jsonl":
                table = [_json_line(line, source, n) for n, line in enumerate(fh, start=1) if line.strip()]
                columns = list(dict.fromkeys(k for row in table for k in row))
            else:
                reader = csv.DictReader(
                    fh,
                    delimiter="\t" if suffix == ".tsv" else ",",
                    quoting=csv.QUOTE_NONE if suffix == ".tsv" else csv.QUOTE_MINIMAL,
                )
                table = list(reader)
                columns = list(reader.fieldnames or [])
    except UnicodeDecodeError:
        raise InvalidInputError(f"{source} is not UTF-8 text") from None
    except OSError as exc:
        raise InvalidInputError(f"cannot read {source}: {exc.strerror or exc}") from None
    except csv.Error as exc:
        raise InvalidInputError(f"{source} is not a valid {suffix[1:]} file: {exc}") from None
    return _nonempty(rows_from_table(table, columns, text_column, pair_column, label_column, where=str(source)), source)


def read_dataset(
    spec: str,
    split: str,
    *,
    text_column: str | None = None,
    pair_column: str | None = None,
    label_column: str | None = None,
) -> list[InputRow]:
    """Read a split of a ``datasets`` dataset: ``NAME[:CONFIG]``, a hub name or a local folder/file.

    Class labels stored as indices are turned into their names when the dataset declares them.
    """
    from attribkit.hub import load_dataset_split

    name, _, config = spec.partition(":")
    local = Path(name)
    if local.is_file():
        from datasets import disable_progress_bars, load_dataset

        _refuse_empty(local)
        disable_progress_bars()  # reading a local file is quick; its "Generating train split" bar is noise

        builder = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}.get(
            local.suffix.lower()
        )
        if builder is None:
            raise InvalidInputError(f"cannot read {local} as a dataset: use csv, tsv, json, jsonl or parquet")
        extra = {"delimiter": "\t"} if local.suffix.lower() == ".tsv" else {}
        try:
            data = load_dataset(builder, data_files=str(local), split=split, **extra)
        except Exception as exc:
            first = first_line(exc)
            raise InvalidInputError(f"cannot load dataset {spec!r} split {split!r}: {first}") from None
    else:
        data = load_dataset_split(name, config or None, split=split)
    columns = list(data.column_names)
    label_names = None
    feature = data.features.get(label_column or next((c for c in LABEL_COLUMNS if c in columns), ""), None)
    if feature is not None and hasattr(feature, "names"):
        label_names = list(feature.names)
    rows = rows_from_table(
        data, columns, text_column, pair_column, label_column, where=f"dataset {spec!r}", label_names=label_names
    )
    if not rows:
        raise InvalidInputError(f"dataset {spec!r} split {split!r} has no usable rows")
    return rows


def rows_from_table(
    table: Iterable[Mapping[str, Any]],
    columns: Sequence[str],
    text_column: str | None,
    pair_column: str | None,
    label_column: str | None,
    *,
    where: str,
    label_names: Sequence[str] | None = None,
) -> list[InputRow]:
    """Pick the text, pair and label columns of a table (list of dicts) and build rows; skip empty texts."""

    def need(column: str, flag: str) -> str:
        if column not in columns:
            raise InvalidInputError(
                f"{where} has no column {column!r} ({flag}); its columns are: {', '.join(columns) or 'none'}"
            )
        return column

    if text_column is not None:
        text_key = need(text_column, "--text-column")
    else:
        found = next((c for c in TEXT_COLUMNS if c in columns), None)
        if found is None:
            raise InvalidInputError(
                f"{where} has no text column; pass --text-column (columns: {', '.join(columns) or 'none'})"
            )
        text_key = found
    pair_key = (
        need(pair_column, "--pair-column")
        if pair_column is not None
        else (PAIR_COLUMNS[text_key] if text_column is None and PAIR_COLUMNS.get(text_key) in columns else None)
    )
    label_key = (
        need(label_column, "--label-column")
        if label_column is not None
        else next((c for c in LABEL_COLUMNS if c in columns), None)
    )
    rows = []
    for record in table:
        text = record.get(text_key)
        if not isinstance(text, str) or not text.strip():
            continue
        pair = record.get(pair_key) if pair_key else None
        if pair_key and (not isinstance(pair, str) or not pair.strip()):
            continue
        label = record.get(label_key) if label_key else None
        if isinstance(label, bool):
            label = int(label)  # JSON true/false: class 1/0
        if label_names is not None and isinstance(label, int) and 0 <= label < len(label_names):
            label = label_names[label]
        elif (
            (label is not None and not isinstance(label, (str, int)))
            or label == ""
            or (isinstance(label, int) and label < 0)
        ):
            label = None
        rows.append(InputRow(text, pair, label))
    return rows


def _json_line(line: str, source: Path, number: int) -> dict:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{source}:{number}: not valid JSON ({exc.msg})") from None
    if not isinstance(value, dict):
        raise InvalidInputError(f"{source}:{number}: each line must be a JSON object with a text field")
    return value


def _nonempty(rows: list[InputRow], source: Path) -> list[InputRow]:
    if not rows:
        raise InvalidInputError(f"{source} has no usable rows (no non-empty text)")
    return rows

"""The GLUE tasks of the AD-KD paper: readers (local GLUE TSV directory or the hub) and metrics.

Wang et al., "GLUE: A Multi-Task Benchmark and Analysis Platform for Natural Language
Understanding", ICLR 2019.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from attribkit import InvalidInputError, UnknownNameError, load_dataset_split

HUB_DATASET = "nyu-mll/glue"


@dataclass(frozen=True)
class Example:
    """One labelled input: a text, an optional pair, and a class index (or a float score)."""

    text: str
    pair: str | None
    label: int | float


@dataclass(frozen=True)
class GlueTask:
    """How to read one GLUE task and score predictions on it.

    Attributes:
        name: Hub config name (``sst2``).
        directory: Folder name in a GLUE data directory (``SST-2``).
        columns: TSV column names of the text (and pair) and the label.
        hub_columns: The same in the hub dataset.
        labels: Class names in index order (``("score",)`` for regression).
        metrics: Metric names reported; ``main`` is the paper's headline metric.
        header: False for CoLA, whose train/dev files have no header.
        dev_splits: Local file stems of the dev split(s) (MNLI has two).
    """

    name: str
    directory: str
    columns: tuple[str, ...]
    hub_columns: tuple[str, ...]
    labels: tuple[str, ...]
    metrics: tuple[str, ...]
    main: str
    header: bool = True
    dev_splits: tuple[str, ...] = ("dev",)

    @property
    def num_labels(self) -> int:
        return len(self.labels)

    @property
    def is_regression(self) -> bool:
        return self.labels == ("score",)

    @property
    def has_pair(self) -> bool:
        return len(self.columns) == 3


_NLI2 = ("entailment", "not_entailment")
TASKS: dict[str, GlueTask] = {
    t.name: t
    for t in (
        GlueTask(
            "cola",
            "CoLA",
            ("3", "1"),
            ("sentence", "label"),
            ("unacceptable", "acceptable"),
            ("mcc", "accuracy"),
            "mcc",
            header=False,
        ),
        GlueTask(
            "sst2",
            "SST-2",
            ("sentence", "label"),
            ("sentence", "label"),
            ("negative", "positive"),
            ("accuracy",),
            "accuracy",
        ),
        GlueTask(
            "mrpc",
            "MRPC",
            ("#1 String", "#2 String", "Quality"),
            ("sentence1", "sentence2", "label"),
            ("not_equivalent", "equivalent"),
            ("f1", "accuracy"),
            "f1",
        ),
        GlueTask(
            "qqp",
            "QQP",
            ("question1", "question2", "is_duplicate"),
            ("question1", "question2", "label"),
            ("not_duplicate", "duplicate"),
            ("accuracy", "f1"),
            "accuracy",
        ),
        GlueTask(
            "stsb",
            "STS-B",
            ("sentence1", "sentence2", "score"),
            ("sentence1", "sentence2", "label"),
            ("score",),
            ("spearman", "pearson"),
            "spearman",
        ),
        GlueTask(
            "mnli",
            "MNLI",
            ("sentence1", "sentence2", "gold_label"),
            ("premise", "hypothesis", "label"),
            ("entailment", "neutral", "contradiction"),
            ("accuracy",),
            "accuracy",
            dev_splits=("dev_matched", "dev_mismatched"),
        ),
        GlueTask(
            "qnli",
            "QNLI",
            ("question", "sentence", "label"),
            ("question", "sentence", "label"),
            _NLI2,
            ("accuracy",),
            "accuracy",
        ),
        GlueTask(
            "rte",
            "RTE",
            ("sentence1", "sentence2", "label"),
            ("sentence1", "sentence2", "label"),
            _NLI2,
            ("accuracy",),
            "accuracy",
        ),
    )
}
_HUB_SPLITS = {
    "train": "train",
    "dev": "validation",
    "test": "test",
    "dev_matched": "validation_matched",
    "dev_mismatched": "validation_mismatched",
}


def get_task(name: str) -> GlueTask:
    """A task by any usual spelling (``SST-2``, ``sst2``, ``sst-2``, ``STS-B`` ...)."""
    key = name.lower().replace("-", "").replace("_", "")
    if key not in TASKS:
        raise UnknownNameError(
            f"unknown task {name!r}; choose one of: {', '.join(t.directory for t in TASKS.values())}"
        )
    return TASKS[key]


def split_names(task: GlueTask, split: str) -> list[str]:
    """The file stems behind a split name: ``dev`` is both MNLI dev sets; ``validation`` = ``dev``."""
    split = {"validation": "dev", "validation_matched": "dev_matched", "validation_mismatched": "dev_mismatched"}.get(
        split, split
    )
    if split == "dev":
        return list(task.dev_splits)
    if split in ("train", "test") or split in task.dev_splits:
        return [split]
    raise InvalidInputError(
        f"unknown split {split!r} for {task.directory}; use train, dev{''.join(', ' + s for s in task.dev_splits if s != 'dev')}"
    )


def load_examples(task: GlueTask, split: str, *, data_dir: str | Path | None = None) -> list[Example]:
    """Labelled examples of one split (a single file stem, see :func:`split_names`).

    Args:
        task: The task.
        split: ``train``, ``dev``, ``dev_matched``, ``dev_mismatched`` (one stem).
        data_dir: A GLUE directory holding ``<TASK>/<split>.tsv``; None = the hub (``nyu-mll/glue``).
    """
    if data_dir is not None:
        return _read_tsv(task, Path(data_dir) / task.directory / f"{split}.tsv")
    return _read_hub(task, split)


def _read_tsv(task: GlueTask, path: Path) -> list[Example]:
    if not path.is_file():
        raise InvalidInputError(
            f"{path} does not exist; --data-dir must hold {task.directory}/<split>.tsv as GLUE lays it out"
        )
    with path.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quotechar=None))
    if task.header:
        if not rows:
            raise InvalidInputError(f"{path} is empty")
        header, rows = rows[0], rows[1:]
        missing = [c for c in task.columns if c not in header]
        if missing:
            raise InvalidInputError(
                f"{path} has no column {missing[0]!r} (columns: {', '.join(header)}); is it a labelled {task.directory} file?"
            )
        index = [header.index(c) for c in task.columns]
    else:
        index = [int(c) for c in task.columns]
    examples = [
        _example(task, [row[i] for i in index], path, n) for n, row in enumerate(rows, 2 if task.header else 1) if row
    ]
    if not examples:
        raise InvalidInputError(f"{path} has no rows")
    return examples


def _example(task: GlueTask, values: list[str], where: object, line: int) -> Example:
    *texts, raw = values
    try:
        if task.is_regression:
            label: int | float = float(raw)
        elif raw in task.labels:
            label = task.labels.index(raw)
        else:
            label = int(raw)
            if not 0 <= label < task.num_labels:
                raise ValueError
    except ValueError:
        raise InvalidInputError(f"{where}, line {line}: label {raw!r} is not one of {task.labels}") from None
    return Example(texts[0], texts[1] if len(texts) > 1 else None, label)


def _read_hub(task: GlueTask, split: str) -> list[Example]:
    hub_split = _HUB_SPLITS.get(split, split)
    data = load_dataset_split(
        HUB_DATASET, task.name, split=hub_split, hint="offline, pass --data-dir with a local GLUE copy"
    )
    *text_cols, label_col = task.hub_columns
    return [
        Example(row[text_cols[0]], row[text_cols[1]] if len(text_cols) > 1 else None, row[label_col])
        for row in data
        if row[label_col] is not None and row[label_col] != -1
    ]

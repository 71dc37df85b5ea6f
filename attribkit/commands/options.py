"""Options and helpers shared by the explain, compare and faithfulness commands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from attribkit.errors import InvalidInputError, OptionError
from attribkit.progress import progress_bar as progress_bar  # the commands' progress (re-exported)

MODEL = typer.Option(None, "--model", help="Checkpoint directory or hub name (default: the packaged SST-2 model).")
PAIR = typer.Option(None, "--pair", help="Second text of a sentence pair.")
METHOD = typer.Option("integrated_gradients", "--method", help="Attribution method (see `attribkit methods`).")
STEPS = typer.Option(
    None,
    "--steps",
    help="Integration steps, a number or auto (IG methods; default: the method's, auto for the built-in IG: "
    "50 per input, more until the map adds up to 1 %).",
)
METHOD_OPTION = typer.Option(
    None,
    "--option",
    "-o",
    help="A method option as KEY=VALUE, repeatable (e.g. -o n_samples=50 -o seed=1; see `attribkit methods`).",
)
TARGET_FN = typer.Option(
    None, "--target-fn", help="logit, prob or log_prob (default: the method's, logit for the built-in ones)."
)
LAYER = typer.Option(
    None,
    "--layer",
    help="word_embeddings or embeddings (default: the method's, word_embeddings for the built-in ones).",
)
SIGN = typer.Option("signed", "--sign", help="signed or absolute.")
TOP_K = typer.Option(None, "--top-k", help="Keep the K largest |A| over hidden dims per token.")
AGGREGATE = typer.Option("sum", "--aggregate", help="sum or l2 over hidden dims.")
NORMALIZE = typer.Option(None, "--normalize", help="l2, l1 or max.")
WORD_LEVEL = typer.Option(False, "--word-level", help="Merge sub-words into words.")
DEVICE = typer.Option(None, "--device", help="cpu, cuda, cuda:N (default: cuda if available).")
BATCH_SIZE = typer.Option(16, "--batch-size", help="Texts per forward/backward batch.")
INPUT = typer.Option(None, "--input", help="File of inputs: .txt (one per line), .tsv/.csv (header) or .jsonl.")
DATASET = typer.Option(None, "--dataset", help="A `datasets` dataset NAME[:CONFIG] (hub name or local folder/file).")
SPLIT = typer.Option(
    None, "--split", help="Split of --dataset (default: validation; train for a local file, its only split)."
)
TEXT_COLUMN = typer.Option(None, "--text-column", help="Column with the text (default: text, sentence, sentence1 ...).")
PAIR_COLUMN = typer.Option(None, "--pair-column", help="Column with the second text of a pair.")
LABEL_COLUMN = typer.Option(None, "--label-column", help="Column with gold labels (default: label when present).")
LIMIT = typer.Option(None, "--limit", help="Use only the first N inputs.")
MAX_LENGTH = typer.Option(
    None,
    "--max-length",
    help="Truncate inputs to N tokens (default: the model's limit); give the length the model was trained with.",
)
PROGRESS = typer.Option(True, "--progress/--no-progress", help="Show a progress bar (on stderr).")


def model_path(model: str | None) -> str:
    """The given checkpoint, or the packaged default model."""
    if model is not None:
        return model
    from attribkit.assets import default_model_path

    return str(default_model_path())


DEFAULT_MODEL_NAME = "default-sst2 (attribkit's packaged model)"


def model_name(model: str | None) -> str:
    """How records and pages name the model: as the user gave it, or the packaged default's name."""
    return DEFAULT_MODEL_NAME if model is None else model


def method_options(
    method: str, steps: str | int | None, target_fn: str | None, layer: str | None, extra: list[str] | None = None
) -> dict[str, Any]:
    """The method's own options from the flags and ``-o KEY=VALUE`` pairs (checks the method name first).

    A flag left out is left out here too, so the method's own default applies, exactly as in the
    Python API (a plugin whose ``target_fn`` defaults to ``prob`` gets ``prob`` on the command line).
    """
    import inspect

    from attribkit.facade import get_method

    accepted = inspect.signature(get_method(method).__init__).parameters  # unknown names fail here
    options: dict[str, Any] = {}
    if target_fn is not None:
        options["target_fn"] = target_fn
    if layer is not None:
        if "layer" not in accepted:
            raise OptionError(f"--layer does not apply to {method}: it perturbs tokens, not a layer's output")
        options["layer"] = layer
    if steps is not None:
        if "steps" not in accepted:
            raise OptionError(f"--steps does not apply to {method}: it takes no integration steps")
        options["steps"] = parse_steps(steps, method)
    flags = {"steps": "--steps", "layer": "--layer", "target_fn": "--target-fn"}
    for item in extra or []:
        key, sep, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise OptionError(f"-o/--option takes KEY=VALUE (e.g. n_samples=50); got {item!r}")
        if key in flags:
            raise OptionError(f"give {key} with {flags[key]}, not -o")
        if key not in accepted or key in ("self", "classifier"):
            names = [n for n in accepted if n not in ("self", "classifier", *flags)]
            raise OptionError(f"{method} has no option {key!r}; it takes: {', '.join(names) or 'none'}")
        options[key] = parse_value(text.strip())
    return options


def parse_steps(steps: str | int, method: str) -> int | str:
    """``--steps``: a positive integer or ``auto``."""
    text = str(steps).strip().lower()
    if text == "auto":
        return "auto"
    try:
        count = int(text)
    except ValueError:
        raise OptionError(f"--steps takes a number or auto; got {steps!r}") from None
    if count < 1:
        raise OptionError(f"--steps must be at least 1 (or auto); got {count}")
    if count == 1 and method == "integrated_gradients":
        raise OptionError("--steps 1 needs --method fast_ig (Captum's integrated_gradients takes 2 or more)")
    return count


def with_method_defaults(method: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` plus the method's own defaults for the flags left out (what a resumed run compares)."""
    import inspect

    from attribkit.facade import get_method

    parameters = inspect.signature(get_method(method).__init__).parameters
    defaults = {
        name: parameters[name].default
        for name in ("steps", "layer", "target_fn")
        if name in parameters and parameters[name].default is not inspect.Parameter.empty
    }
    return {**defaults, **options}


def check_distinct_outputs(**outputs: Path | None) -> None:
    """Refuse one file named for two outputs (``--html x.html --plot x.html``): one would overwrite the other."""
    seen: dict[Path, str] = {}
    for flag, path in outputs.items():
        if path is None:
            continue
        where = path.expanduser().resolve()
        if where in seen:
            raise OptionError(f"{seen[where]} and --{flag} both name {path}; give each output its own file")
        seen[where] = f"--{flag}"


def parse_value(text: str) -> Any:
    """A command-line option value: none/true/false, an integer, a number, else the string itself."""
    lowered = text.lower()
    if lowered in ("none", "null"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def check_explain_options(sign: str, aggregate: str, top_k: int | None, normalize: str | None) -> None:
    """Reduction options, checked before any model is loaded."""
    from attribkit.reduce import check_reduction

    check_reduction(sign=sign, aggregate=aggregate, top_k=top_k, normalize=normalize)


def check_target(clf: Any, target: str | int) -> None:
    """A class index or name must exist in the loaded model (pred, all and gold always do)."""
    if target not in ("pred", "all", "gold"):
        clf.label_index(target)


def target_spec(target: str) -> str | int:
    """``--target``: an integer class index, or a name (pred, all, gold, or a class name)."""
    return int(target) if target.lstrip("-").isdigit() else target


def read_rows(
    text: str | None,
    pair: str | None,
    input_file: Path | None,
    dataset: str | None,
    split: str | None,
    text_column: str | None,
    pair_column: str | None,
    label_column: str | None,
    limit: int | None,
) -> list:
    """Inputs from exactly one of --text, --input or --dataset, cut to --limit."""
    from attribkit.inputs import InputRow, read_dataset, read_inputs

    given = [
        name for name, value in (("--text", text), ("--input", input_file), ("--dataset", dataset)) if value is not None
    ]
    if len(given) != 1:
        raise OptionError(
            "give exactly one of --text, --input FILE or --dataset NAME"
            + (f" (got {', '.join(given)})" if given else "")
        )
    if limit is not None and limit < 1:
        raise OptionError(f"--limit must be a positive number; got {limit}")
    if pair is not None and text is None:
        raise OptionError("--pair goes with --text; in files use --pair-column")
    no_labels = label_column == ""  # --label-column '' turns gold labels off
    column = None if no_labels else label_column
    if text is not None:
        rows = [InputRow(text, pair)]
    elif input_file is not None:
        rows = read_inputs(input_file, text_column=text_column, pair_column=pair_column, label_column=column)
    else:
        if split is None:  # datasets reads a single local file as one split named train
            split = "train" if Path(str(dataset).partition(":")[0]).is_file() else "validation"
        rows = read_dataset(str(dataset), split, text_column=text_column, pair_column=pair_column, label_column=column)
    if no_labels:
        rows = [InputRow(r.text, r.pair) for r in rows]
    return rows[:limit] if limit is not None else rows


def gold_labels(rows: list, target: str | int, clf: Any = None) -> list | None:
    """The gold labels to record, or None.

    ``--target gold`` needs a label on every row, each one of the model's classes (checked when
    ``clf`` is given). Otherwise labels are only carried along: when some rows have none, or some
    are not the model's classes (``not_entailment`` for a sentiment model), they are left out with
    one warning, never an error.

    Raises:
        InvalidInputError: ``--target gold`` with a missing label, or a label the model does not have.
    """
    import warnings

    from attribkit.errors import TargetError

    labels = [row.label for row in rows]
    missing = [i for i, label in enumerate(labels) if label is None]
    if target == "gold" and missing:
        raise InvalidInputError(
            f"--target gold needs a label on every input; input {missing[0] + 1} has none (use --label-column)"
        )
    if missing and len(missing) < len(labels):
        warnings.warn(
            f"{len(missing)} of {len(labels)} inputs have no gold label; the records carry none "
            "(--label-column '' turns labels off)",
            UserWarning,
            stacklevel=2,
        )
        return None
    if missing:
        return None
    if clf is not None:
        foreign = []
        for i, label in enumerate(labels):
            try:
                clf.gold_name(label)  # a class of the model, or a score for a regression model
            except TargetError:
                foreign.append(i)
        if foreign and target == "gold":
            raise InvalidInputError(
                f"--target gold: input {foreign[0] + 1} has label {labels[foreign[0]]!r}, which is not "
                f"one of the model's classes ({', '.join(clf.labels)})"
            )
        if foreign:
            warnings.warn(
                f"{len(foreign)} of {len(labels)} gold labels (e.g. {labels[foreign[0]]!r}) are not the model's "
                f"classes ({', '.join(clf.labels)}); the records carry none (--label-column '' turns labels off)",
                UserWarning,
                stacklevel=2,
            )
            return None
    return labels


def check_suffix(path: Path | None, suffixes: tuple[str, ...], flag: str) -> None:
    """Refuse an output path with the wrong extension or in a missing folder, before any work."""
    if path is None:
        return
    if path.suffix.lower() not in suffixes:
        raise OptionError(f"{flag} {path}: use a {' or '.join(suffixes)} file")
    if not path.parent.is_dir():
        raise OptionError(f"{flag} {path}: folder {path.parent} does not exist")
    check_writable(path, flag)


def check_writable(path: Path, flag: str) -> None:
    """Refuse, before any work, an output that cannot be written: a read-only or full folder, or a locked file.

    Probes by creating (and removing) an empty file in the folder, and by opening an existing
    target for appending (which changes nothing), so permissions, read-only mounts and immutable
    files all show here rather than after the compute.
    """
    import tempfile

    try:
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".probe"):
            pass
        if path.exists():
            with path.open("ab"):
                pass
    except OSError as exc:
        raise OptionError(f"{flag} {path}: cannot write there ({exc.strerror or exc})") from None


def write_json(data: Any, path: Path) -> None:
    """Write JSON atomically: the file appears only when complete."""
    import json

    from attribkit.files import atomic_write_text

    atomic_write_text(path, json.dumps(data, indent=1, ensure_ascii=False))


def model_identity(model: str) -> dict[str, Any]:
    """See :func:`attribkit.batch_explain.model_identity` (imported when used: the commands start light)."""
    from attribkit.batch_explain import model_identity as identity

    return identity(model)


def inputs_identity(rows: list) -> dict[str, Any]:
    """See :func:`attribkit.batch_explain.inputs_identity`."""
    from attribkit.batch_explain import inputs_identity as identity

    return identity(rows)

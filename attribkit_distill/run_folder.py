"""A run's output folder: created with its settings, checked on resume, cleaned after a failed start, read back.

``run.json`` holds a run's exact settings; ``--resume`` with different settings is refused (paths compared
resolved, display-only options ignored); a folder a command created and that holds no checkpoint,
result or teacher cache progress when the run dies is removed again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: Settings that change how a run looks, not what it computes: a resume may differ in them.
DISPLAY_ONLY = ("config.progress", "config.diagnose_every")
#: Run settings that name files or folders: compared as resolved paths (``./runs/t`` is ``runs/t``).
PATH_KEYS = ("model", "teacher", "teacher_cache", "student_init", "student_from", "data_dir")


def prepare_out(out: Path, tokenizer: Any, run: dict, resume: bool) -> bool:
    """Create ``out`` with the tokenizer and ``run.json``, or check a resumed run's settings.

    Returns:
        True when this call created the folder (so a run that fails before its first checkpoint
        can remove it again, see :func:`_clean_failed_start`).
    """
    import attribkit as ak

    run_file = out / "run.json"
    if not resume and run_file.is_file():
        raise ak.OptionError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    current = _comparable(run)
    if resume and run_file.is_file():
        before = _comparable(json.loads(run_file.read_text()))
        changed = [
            k for k in sorted(set(before) | set(current)) if before.get(k) != current.get(k) and k not in DISPLAY_ONLY
        ]
        if changed:
            key = changed[0]
            raise ak.OptionError(
                f"--resume with different settings than the run in {out}: {key} was {before.get(key)!r}, "
                f"now {current.get(key)!r}"
                + (f" (and {len(changed) - 1} more)" if len(changed) > 1 else "")
                + "; use the same command"
            )
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(out)
    stored = {k: (_resolved(v) if k in PATH_KEYS else v) for k, v in run.items()}
    run_file.write_text(json.dumps(stored, indent=1))
    return created


def _comparable(run: dict) -> dict:
    """A run's settings as flat dotted keys, through JSON, with paths resolved."""
    flat: dict = {}
    for key, value in run.items():
        if isinstance(value, dict):
            flat.update({f"{key}.{k}": v for k, v in _comparable(value).items()})
        else:
            flat[key] = json.loads(json.dumps(_resolved(value) if key in PATH_KEYS else value, default=str))
    return flat


def _resolved(value: Any) -> Any:
    """A local path as its absolute form; hub names and None as they are."""
    if isinstance(value, (str, Path)) and Path(value).expanduser().exists():
        return str(Path(value).expanduser().resolve())
    return value


def check_run_folder(out: Path, resume: bool) -> None:
    """Refuse, before any model or data is loaded, an ``--out`` that cannot take this run.

    A file where the folder should be, a folder holding another run without ``--resume``, or a
    place that cannot be written: each is one line at once, not an error after loading the models.
    """
    import attribkit as ak

    if out.exists() and not out.is_dir():
        raise ak.OptionError(f"--out {out} is a file; a run writes a folder there: choose a new or existing folder")
    if not resume and (out / "run.json").is_file():
        raise ak.OptionError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    check_writable(out, "--out")


def check_writable(path: Path, flag: str) -> None:
    """Refuse, before any work, an output under a folder that cannot be written (read-only, no permission)."""
    import tempfile

    import attribkit as ak

    folder = path if path.is_dir() else path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent  # the nearest folder that exists is where the new ones would be made
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".attribkit-", suffix=".probe"):
            pass
    except OSError as exc:
        raise ak.OptionError(f"{flag} {path}: cannot write there ({exc.strerror or exc})") from None


#: The teacher cache a distillation run computes in its folder (its unfinished build: ``<name>.progress``).
TEACHER_CACHE = "teacher_cache.pt"


def clean_failed_start(out: Path, created: bool) -> None:
    """Remove a folder this command created when the run died before writing any checkpoint or result.

    A folder holding the progress of an interrupted teacher cache build is kept: ``--resume`` continues it.
    """
    import shutil

    from attribkit_distill.cache import progress_path
    from attribkit_distill.checkpoint import find_checkpoint
    from attribkit_distill.training_loop import RESULTS

    if progress_path(out / TEACHER_CACHE).is_file():
        return
    if created and out.is_dir() and find_checkpoint(out) is None and not (out / RESULTS).is_file():
        shutil.rmtree(out, ignore_errors=True)


def attribution_share(run: Path) -> dict[str, float] | None:
    """Median, first and last share of the attribution term in the gradient norm, from a run's metrics.jsonl."""
    import statistics

    log = run / "metrics.jsonl"
    if not log.is_file():
        return None
    shares = [
        row["gradients"]["attr_share"]
        for row in map(json.loads, filter(str.strip, log.read_text().splitlines()))
        if row.get("kind") == "gradients" and "attr" in row.get("gradients", {})
    ]
    if not shares:
        return None
    return {"median": statistics.median(shares), "first": shares[0], "last": shares[-1], "steps": len(shares)}

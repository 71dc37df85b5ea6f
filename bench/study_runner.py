"""What every study runner in bench/ shares: plan, claim, execute, result JSON, report block.

A study (``reproduce.py``, ``study_v2.py``, ``study_v3.py``) is a list of runs, each one ``attribkit finetune``
or ``attribkit distill`` command with an output folder under ``runs/`` and a result JSON under
``bench/results/``. This module holds the parts that do not depend on the study:

- :func:`claimed`: an OS lock per run, so several runners share one plan (each takes the next run nobody
  holds, and a killed runner frees its run);
- :func:`run_command`: run or resume a command (``--resume`` from its last checkpoint or from the saved
  progress of its teacher cache build; a folder killed before either starts again) and share a teacher cache
  between runs that make the same one;
- :func:`restore_cache` and :func:`keep_cache`: a teacher cache kept in the repository, so a new session (an
  empty ``runs/``) does not recompute what an earlier one computed from the same teacher (the cache checks
  its own key, so a cache of another teacher is recomputed, never used);
- :func:`write_result`: the result JSON, written atomically, with portable paths and library versions;
- :func:`drive`: the loop that skips what is done or held, honours a time budget and puts interrupted runs
  first;
- :func:`show_plan`, :func:`parse_choices` and :func:`fill_block` (a report's generated block in a page).
"""

from __future__ import annotations

import contextlib
import fcntl
import filecmp
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, Protocol

from provenance import library_versions, machine, portable


class StudyRun(Protocol):
    """What the shared loop needs of a study's run: a name, its output folder and its result JSON."""

    @property
    def name(self) -> str: ...  # task/row/seedN

    @property
    def out(self) -> Path: ...

    @property
    def result(self) -> Path: ...


@contextlib.contextmanager
def claimed(lock: Path) -> Iterator[bool]:
    """Hold the lock file ``lock`` for this process (an OS lock, freed even on a kill).

    Yields:
        True when this process holds it, False when another runner does.
    """
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("w") as handle:
        for _ in range(3):  # `plan` probes a lock for microseconds; a runner holds it for the whole run
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                time.sleep(0.2)
        else:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def exclusive(lock: Path) -> Iterator[None]:
    """Hold the lock file ``lock``, waiting while another process holds it (an OS lock, freed even on a kill)."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def held_elsewhere(lock: Path) -> bool:
    """Whether another process holds the lock file ``lock`` now."""
    with claimed(lock) as free:
        return not free


#: The teacher cache a distill command computes in its ``--out`` folder, and its unfinished build's progress.
TEACHER_CACHE = "teacher_cache.pt"
CACHE_PROGRESS = TEACHER_CACHE + ".progress"


def progress_of(cache: Path) -> Path:
    """The progress file of an unfinished build of ``cache`` (``attribkit_distill.cache.progress_path``)."""
    return cache.with_name(cache.name + ".progress")


def run_command(
    argv: list[str],
    out: Path,
    log: IO[str],
    *,
    name: str,
    shared_cache: Path | None = None,
    env: dict[str, str] | None = None,
    while_running: Callable[[], None] | None = None,
    every: float = 120.0,
) -> dict[str, Any]:
    """Run (or resume) one attribkit training command whose output folder is ``out``; returns its results.json.

    Args:
        argv: The command line, without ``--resume`` (added when ``out`` holds a checkpoint or the progress of
            a teacher cache build).
        out: The command's ``--out`` folder.
        log: Where the command's output goes (the study's log file).
        name: The run's name in the one-line error.
        shared_cache: A teacher cache shared by the runs that make the same one (same teacher, data and map
            options; the cache checks its own key): linked in before the run, and published after it. Until
            it exists, the progress of its unfinished build (:func:`progress_of`), where one was kept, is
            copied in, so the command continues that build.
        env: Extra environment variables for the command.
        while_running: Called every ``every`` seconds while the command runs, and once when it ends (to
            keep the progress of a long cache build somewhere a new session finds it).
        every: Seconds between two calls of ``while_running``.

    Raises:
        RuntimeError: When the command exits non-zero.
    """
    progress = out / CACHE_PROGRESS
    resume = (out / "checkpoint").is_dir() or (out / "results.json").is_file() or progress.is_file()
    if out.exists() and not resume:
        shutil.rmtree(out)  # killed before its first checkpoint: start again
    if shared_cache is not None and shared_cache.is_file() and not (out / TEACHER_CACHE).exists():
        out.mkdir(parents=True, exist_ok=True)
        os.link(shared_cache, out / TEACHER_CACHE)
    elif shared_cache is not None and progress_of(shared_cache).is_file() and not (out / TEACHER_CACHE).exists():
        if not progress.exists():  # the command replaces its progress file as it goes: a copy, not a link
            _copy(progress_of(shared_cache), progress)
    if not (out / "results.json").is_file():
        full = argv + (["--resume"] if out.exists() else [])
        log.write(f"$ {' '.join(full)}\n")
        log.flush()
        start = time.time()
        proc = subprocess.Popen(
            full, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
        )
        while True:
            try:
                returncode = proc.wait(timeout=every)
                break
            except subprocess.TimeoutExpired:
                if while_running is not None:
                    while_running()
        if while_running is not None:
            while_running()
        if returncode != 0:
            raise RuntimeError(f"{name} failed with exit code {returncode}; see {log.name}")
        log.write(f"# {time.time() - start:.0f} s\n")
        log.flush()
    made = out / TEACHER_CACHE
    if shared_cache is not None and made.is_file() and not (shared_cache.exists() and shared_cache.samefile(made)):
        # the run made the cache, or replaced a shared one its key refused (another teacher's): publish it
        shared_cache.parent.mkdir(parents=True, exist_ok=True)
        link = shared_cache.with_name(shared_cache.name + f".{os.getpid()}.link")
        link.unlink(missing_ok=True)
        os.link(made, link)
        link.replace(shared_cache)
    if shared_cache is not None and shared_cache.is_file():
        progress_of(shared_cache).unlink(missing_ok=True)  # the cache is built: its progress is history
    return json.loads((out / "results.json").read_text())


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + f".{os.getpid()}.partial")
    shutil.copyfile(source, partial)
    partial.replace(target)


def restore_cache(working: Path, kept: Path) -> None:
    """Copy the kept teacher cache ``kept`` (committed) to ``working`` (under ``runs/``) when runs/ has none.

    The copy is only a candidate: ``TeacherCache.build`` uses it when its key (teacher weights, data, map
    options) matches and recomputes it otherwise.
    """
    if kept.is_file() and not working.exists():
        _copy(kept, working)


def keep_cache(working: Path, kept: Path) -> None:
    """Copy the teacher cache ``working`` to ``kept`` (to be committed) unless ``kept`` holds the same bytes."""
    if working.is_file() and not (kept.is_file() and filecmp.cmp(working, kept, shallow=False)):
        _copy(working, kept)


def write_result(path: Path, record: dict[str, Any], data_dir: Path) -> dict[str, Any]:
    """Write a run's result JSON atomically, with portable paths (``GLUE_DIR``, ...), library versions and CPU."""
    record = {**portable(record, data_dir), "versions": library_versions(), "machine": machine()}
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(record, indent=1))
    partial.replace(path)
    return record


def drop_weights(out: Path) -> None:
    """Remove a finished student's weights and its link to the teacher cache (the result JSON holds the numbers)."""
    for name in ("model.safetensors", TEACHER_CACHE):
        (out / name).unlink(missing_ok=True)


def one_thread_per_runner() -> int:
    """Give each runner (and the commands it starts) one CPU thread unless ``OMP_NUM_THREADS`` says otherwise.

    The runners are started once per core; without this each would use every core, the runners would contend,
    and their timings (``expected_seconds``, the budget) would no longer hold. Returns the thread count.
    """
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    count = threads()
    if "torch" in sys.modules:  # already imported: its pool is sized, resize it
        sys.modules["torch"].set_num_threads(count)
    return count


def threads() -> int:
    """CPU threads a run's torch uses (``OMP_NUM_THREADS``, else one per core)."""
    return int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1)


def diagnostics(out: Path) -> list[dict[str, Any]]:
    """The gradient-diagnostic rows of a run's metrics.jsonl (each term's share of the gradient over training)."""
    path = out / "metrics.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []
    return [r for r in rows if r.get("kind") == "gradients"]


def show_plan(runs: Sequence[StudyRun], *, done: Callable[[Any], bool], lock: Callable[[Any], Path]) -> None:
    """Print each run of the plan as done, todo or busy (a runner holds it now)."""
    for run in runs:
        with claimed(lock(run)) as free:
            state = "done" if done(run) else "todo" if free else "busy"
        print(f"{state}  {run.name}")


def drive(
    runs: Sequence[StudyRun],
    *,
    done: Callable[[Any], bool],
    execute: Callable[[Any], dict[str, Any]],
    lock: Callable[[Any], Path],
    hours: float | None = None,
    ready: Callable[[Any], bool] = lambda run: True,
    summary: Callable[[dict[str, Any]], str] = lambda record: f"{record['seconds']:.0f} s",
    wait_seconds: float = 60.0,
    expected_seconds: Callable[[Any], float | None] = lambda run: None,
    tier: Callable[[Any], int] = lambda run: 0,
    prepared: Callable[[Any], bool] = lambda run: True,
) -> None:
    """Execute the plan's runs that are not done, interrupted ones first, each held while it runs.

    Args:
        runs: The plan, in priority order.
        done: Whether a run's result is in.
        execute: Runs one run and returns its result record.
        lock: A run's lock file (:func:`claimed`).
        hours: The time budget: start no run after this many hours, nor one expected to end after them
            (a run cut off at the end of a session is lost with its ``runs/`` folder): a shorter run is
            taken instead.
        ready: Called (with the run not yet claimed) before each run: prepares what it needs (a teacher) and
            returns False to skip it for now (another runner is preparing it).
        summary: The line printed after a run.
        wait_seconds: How long to wait before looking again when only runs that are not ready are left.
        expected_seconds: How long a run is expected to take, or None when unknown (then it may start).
            Checked again after ``ready``, which may have spent minutes training a teacher.
        tier: A run's priority class: no run of a tier starts while a run of a lower tier is not done (the
            plan's order within a tier): e.g. every primary run before any secondary one, also when the
            primary runs left do not fit in the budget.
        prepared: Whether what ``ready`` would prepare is there already (a teacher trained in this session).
            Within a tier, prepared runs come first, so a session retrains as few teachers as it can.

    After each run the plan is read again from the top, so a run skipped while another runner trained its
    teacher is taken as soon as the teacher is there, before the runs after it.
    """
    deadline = time.time() + hours * 3600 if hours else None
    interrupted = {index for index, run in enumerate(runs) if (run.out / "checkpoint").is_dir()}
    attempted: set[int] = set()  # each run once per call, even if its execute left no result
    too_long: set[int] = set()  # runs expected to end after the budget (said once)

    def fits(index: int, run: Any) -> bool:
        expected = expected_seconds(run) if deadline is not None else None
        if deadline is None or expected is None or time.time() + expected <= deadline:
            return True
        if index not in too_long:
            with claimed(lock(run)) as free:
                if not free:  # another runner is running it: not this runner's to start or to report
                    return False
            left = (deadline - time.time()) / 60
            print(f"{run.name}: expected {expected / 60:.0f} min, {left:.0f} min left; not started")
            too_long.add(index)
        return False

    while True:
        executed = waiting = False
        pending = [(index, run) for index, run in enumerate(runs) if not done(run)]
        if pending:
            first = min(tier(run) for _, run in pending)  # a later tier waits for the whole of this one
            pending = [(index, run) for index, run in pending if tier(run) == first and index not in attempted]
        pending.sort(key=lambda item: (item[0] not in interrupted, not prepared(item[1]), item[0]))
        for index, run in pending:
            if deadline is not None and time.time() > deadline:
                print("time budget spent; run again to continue")
                return
            if not fits(index, run):
                continue
            if not ready(run):
                waiting = True
                continue
            if not fits(index, run):  # preparing it (a teacher) took time
                continue
            with claimed(lock(run)) as mine:
                if not mine or done(run):  # another runner holds it, or finished it meanwhile
                    continue
                attempted.add(index)
                print(f"{run.name} ...", flush=True)
                record = execute(run)
            print(f"  -> {summary(record)}", flush=True)
            executed = True
            break  # from the top again: a run that waited for its teacher comes before the later ones
        if executed:
            continue
        if not waiting:  # the rest are done, held by other runners or too long for the budget left
            if too_long:
                print("the runs left are expected to end after the time budget; run again to continue")
            return
        time.sleep(wait_seconds)  # only runs whose teacher another runner is training are left


def parse_choices(text: str | None, allowed: Sequence[str], what: str) -> list[str]:
    """A comma-separated choice from ``allowed`` (all of them when ``text`` is None); exits with one line."""
    items = [item.strip() for item in text.split(",")] if text else list(allowed)
    bad = [item for item in items if item not in allowed]
    if bad:
        raise SystemExit(f"error: unknown {what} {bad[0]!r}; choose from {', '.join(allowed)}")
    return items


def fill_block(page: Path, begin: str, end: str, lines: Sequence[str]) -> None:
    """Replace what lies between the markers ``begin`` and ``end`` in ``page`` (the hand-written rest is kept).

    Raises:
        SystemExit: When the page lacks either marker (nothing is written).
    """
    text = page.read_text()
    if begin not in text or end not in text:
        raise SystemExit(f"error: {page} has no {begin} ... {end} block to fill")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    page.write_text(head + begin + "\n" + "\n".join(lines) + "\n" + end + tail)

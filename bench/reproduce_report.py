"""Rebuild the reproduction study's table, figures, attribution gap and case studies from whatever results exist.

Called by ``python bench/reproduce.py report``. Writes the generated part of ``docs/results.md``
(between the BEGIN/END GENERATED markers; the hand-written conclusion around it is kept) and the
figures under ``docs/figures/`` (plotly.js once, in ``docs/figures/plotly.min.js``).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import warnings
from pathlib import Path

from reproduce import RESULTS, ROOT, ROWS, RUNS, TASKS, TOP_K_SWEEP, glue_dir, teacher_dir

DOC = ROOT / "docs" / "results.md"
FIGURES = ROOT / "docs" / "figures"
BEGIN, END = "<!-- BEGIN GENERATED -->", "<!-- END GENERATED -->"
STUDENTS_TEACHER = "teacher_seed1"  # a table line, not a run: the seed-1 teacher the students distil from
TABLE_ROWS = [
    "teacher",
    STUDENTS_TEACHER,
    "student_ft",
    "kd",
    "adkd",
    "adkd_no_ce",
    "adkd_no_kd",
    "adkd_ig4",
    "kd_iit",
    "adkd_iit",
]
# the paper (Wu et al., ACL 2023, BERT-base teacher -> 6-layer student, GLUE dev): AD-KD per task, averages per row
PAPER_ADKD = {"cola": 58.3, "sst2": 91.9, "mrpc": 91.2, "rte": 70.9, "stsb": 89.2}
PAPER_AVERAGE = {"teacher": 84.1, "kd": 81.6, "adkd": 83.4}


def load_results() -> dict[tuple[str, str], list[dict]]:
    """``{(task, row): [result per seed]}`` from every result JSON on disk."""
    found: dict[tuple[str, str], list[dict]] = {}
    for path in sorted(RESULTS.glob("*/*/seed*.json")):
        record = json.loads(path.read_text())
        found.setdefault((record["task"], record["row"]), []).append(record)
    return found


def main_metric(task: str) -> str:
    from attribkit_distill.tasks import get_task

    spec = get_task(TASKS[task].directory)
    return f"dev/{spec.main}"


def spread(values: list[float]) -> float:
    """Sample standard deviation (n - 1); 0 for a single value (drawn without error bar)."""
    return statistics.stdev(values) if len(values) > 1 else 0.0


def signed(value: float) -> str:
    """``+1.2`` / ``-0.3``, one decimal; a difference that rounds to zero reads ``+0.0``, never ``-0.0``."""
    return f"{round(value, 1) + 0.0:+.1f}"


def cell(values: list[float]) -> str:
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:.1f} (1)"
    return f"{statistics.mean(values):.1f} ± {spread(values):.1f} ({len(values)})"


def table(results: dict) -> str:
    tasks = list(TASKS)
    header = (
        "| row | "
        + " | ".join(f"{TASKS[t].directory} ({main_metric(t).split('/')[1]})" for t in tasks)
        + " | average | paper (BERT-base, GLUE avg) |"
    )
    lines = [header, "|" + "---|" * (len(tasks) + 3)]
    labels = {r.name: r.label for r in ROWS}
    labels[STUDENTS_TEACHER] = "Teacher, seed 1 (the one every student learns from)"
    for row in TABLE_ROWS:
        cells, means = [], []
        for task in tasks:
            source, only_seed = ("teacher", 1) if row == STUDENTS_TEACHER else (row, None)
            values = [v for seed, v in by_seed(results, task, source).items() if only_seed in (None, seed)]
            cells.append(cell(values))
            if values:
                means.append(statistics.mean(values))
        average = f"{statistics.mean(means):.1f}" if len(means) == len(tasks) else "—"
        lines.append(f"| {labels[row]} | " + " | ".join(cells) + f" | {average} | {PAPER_AVERAGE.get(row, '—')} |")
    lines.append(
        "| paper AD-KD per task (BERT-base scale) | " + " | ".join(str(PAPER_ADKD[t]) for t in tasks) + " | — | 83.4 |"
    )
    return "\n".join(lines)


# (label, row, baseline row): differences taken seed by seed, where both runs of a seed exist
PAIRED = [
    ("AD-KD − KD", "adkd", "kd"),
    ("KD − no teacher", "kd", "student_ft"),
    ("AD-KD − no teacher", "adkd", "student_ft"),
    ("AD-KD w/o CE − AD-KD", "adkd_no_ce", "adkd"),
    ("AD-KD w/o KD − AD-KD", "adkd_no_kd", "adkd"),
    # CE + attribution vs CE alone: what the attribution term does without the KD term
    ("AD-KD w/o KD − no teacher", "adkd_no_kd", "student_ft"),
    ("4 IG steps − 1 IG step", "adkd_ig4", "adkd"),
]


def by_seed(results: dict, task: str, row: str) -> dict[int, float]:
    """``{seed: main metric}`` of one row of one task."""
    metric = main_metric(task)
    return {r["seed"]: r["best"][metric] for r in results.get((task, row), [])}


def paired_cell(results: dict, task: str, row: str, baseline: str) -> str:
    """Mean ± sample std of ``row - baseline`` over the seeds both have, the seeds ``row`` wins, and n.

    Students of the same seed share the teacher, the data order and the initial weights, so the
    difference within a seed removes that shared noise, which the unpaired cells of the main table keep.
    """
    mine, theirs = by_seed(results, task, row), by_seed(results, task, baseline)
    deltas = [mine[s] - theirs[s] for s in sorted(mine.keys() & theirs.keys())]
    if not deltas:
        return "—"
    wins = sum(d > 0 for d in deltas)
    if len(deltas) == 1:
        return f"{signed(deltas[0])} (1)"
    return f"{signed(statistics.mean(deltas))} ± {spread(deltas):.1f}, ahead on {wins}/{len(deltas)}"


def paired_table(results: dict) -> list[str]:
    """The student rows against each other, seed by seed (see :func:`paired_cell`)."""
    tasks = list(TASKS)
    lines = ["| difference | " + " | ".join(TASKS[t].directory for t in tasks) + " |", "|---|" + "---|" * len(tasks)]
    for label, row, baseline in PAIRED:
        lines.append(f"| {label} | " + " | ".join(paired_cell(results, t, row, baseline) for t in tasks) + " |")
    return lines


HIDDEN = 384  # the MiniLM's hidden size: a run without top_k keeps every dimension


def recorded_top_k(record: dict) -> int:
    """The K a result JSON's run trained with (its settings; no top_k = all dimensions)."""
    return record["settings"]["loss"]["attribution"]["top_k"] or HIDDEN


def sweep_points(results: dict, task: str = "stsb") -> list[tuple[int, float, float]]:
    """``(K, mean, std)`` per K of the top-K sweep, sorted by K; the preset AD-KD row sits at the K it recorded.

    The presets are not all-dimensions (STS-B's is 320 of 384), so the preset row is placed by its settings,
    never assumed to be K = 384. Only the seeds every K has are averaged (the preset row has more seeds than
    the sweep), so the points compare like with like.
    """
    by_k: dict[int, dict[int, float]] = {}
    for row in [*(f"adkd_k{k}" for k in TOP_K_SWEEP), "adkd"]:
        for record in results.get((task, row), []):
            by_k.setdefault(recorded_top_k(record), {})[record["seed"]] = record["best"][main_metric(task)]
    common = set.intersection(*(set(v) for v in by_k.values())) if by_k else set()
    points = []
    for k, per_seed in sorted(by_k.items()):
        values = [per_seed[s] for s in sorted(common or per_seed)]
        points.append((k, statistics.mean(values), spread(values)))
    return points


def figures(results: dict) -> list[str]:
    """Per-task bars with error bars, and the STS-B top-K sweep. Returns markdown lines linking them."""
    import plotly.graph_objects as go

    FIGURES.mkdir(parents=True, exist_ok=True)
    bars = go.Figure()
    for row in ["student_ft", "kd", "adkd", "kd_iit", "adkd_iit"]:
        label = next(r.label for r in ROWS if r.name == row)
        means, stds = [], []
        for task in TASKS:
            values = [r["best"][main_metric(task)] for r in results.get((task, row), [])]
            means.append(statistics.mean(values) if values else None)
            stds.append(spread(values))
        bars.add_trace(
            go.Bar(name=label, x=[TASKS[t].directory for t in TASKS], y=means, error_y={"type": "data", "array": stds})
        )
    bars.update_layout(
        barmode="group", title="Students per task (mean and std over seeds; each task's main metric)", height=420
    )
    bars.write_html(FIGURES / "results-bars.html", include_plotlyjs="directory")
    sweep = go.Figure()
    points = sweep_points(results)
    ks, k_means, k_stds = zip(*points) if points else ((), (), ())
    sweep.add_trace(
        go.Scatter(x=ks, y=k_means, error_y={"type": "data", "array": k_stds}, mode="lines+markers", name="AD-KD")
    )
    sweep.update_layout(
        title="STS-B: AD-KD with the teacher's top-K of 384 dimensions (the preset row at its recorded K)",
        xaxis_title="K",
        yaxis_title="Spearman x 100",
        height=380,
    )
    sweep.write_html(FIGURES / "results-topk.html", include_plotlyjs="directory")
    return [
        '<iframe src="../figures/results-bars.html" width="100%" height="440" frameborder="0"></iframe>',
        "",
        '<iframe src="../figures/results-topk.html" width="100%" height="400" frameborder="0"></iframe>',
    ]


MAX_LENGTH = 128  # tokens: the distill commands' default, which every study run trains and is selected at


def kept_student(task: str, row: str) -> Path:
    """Folder of the seed-1 student of a row whose weights the study keeps (KD, AD-KD)."""
    return RUNS / task / f"{row}-seed1"


def attribution_gap(task: str) -> dict[str, float]:
    """Mean AD-KD attribution loss between the teacher and the seed-1 KD / AD-KD students on dev (lower = closer)."""
    import attribkit as ak
    from attribkit_distill.data import encode_examples
    from attribkit_distill.evaluation import attribution_gap as gap
    from attribkit_distill.tasks import get_task, load_examples, split_names

    teacher = ak.load_classifier(teacher_dir(task), device="cpu")
    spec = get_task(TASKS[task].directory)
    examples = load_examples(spec, split_names(spec, "dev")[0], data_dir=glue_dir())
    dev = encode_examples(teacher.tokenizer, examples, max_length=MAX_LENGTH)
    gaps = {}
    for row in ("kd", "adkd"):
        folder = kept_student(task, row)
        if (folder / "model.safetensors").is_file():
            gaps[row] = gap(ak.load_classifier(folder, device="cpu").model, teacher.model, dev)
    return gaps


CASE_TASKS = ("sst2", "cola", "mrpc", "rte")  # the classification tasks; STS-B is a regression, with no "disagree"


def students_ready(task: str) -> bool:
    return all((kept_student(task, row) / "model.safetensors").is_file() for row in ("kd", "adkd"))


def disagreements(task: str, n: int) -> list:
    """The first ``n`` dev examples (in dev order) on which the seed-1 KD and AD-KD students predict different classes."""
    import torch

    import attribkit as ak
    from attribkit_distill.tasks import get_task, load_examples, split_names

    spec = get_task(TASKS[task].directory)
    examples = load_examples(spec, split_names(spec, "dev")[0], data_dir=glue_dir())
    kd, adkd = (ak.load_classifier(kept_student(task, row), device="cpu") for row in ("kd", "adkd"))
    chosen = []
    for start in range(0, len(examples), 64):
        part = examples[start : start + 64]
        texts = [e.text if e.pair is None else (e.text, e.pair) for e in part]
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", ak.TruncationWarning)  # cut on purpose: the students' length
            a = kd.logits(kd.encode(texts, max_length=MAX_LENGTH)).argmax(-1)
            b = adkd.logits(adkd.encode(texts, max_length=MAX_LENGTH)).argmax(-1)
        chosen += [e for e, x, y in zip(part, a.tolist(), b.tolist()) if x != y]
        if len(chosen) >= n:
            break
    return chosen[:n]


def case_study_row(task: str, n: int) -> tuple[str, dict[str, int]]:
    """Write one task's compare reports (teacher vs KD, teacher vs AD-KD); return its table row and right-answer counts."""
    from attribkit_distill.tasks import get_task

    spec = get_task(TASKS[task].directory)
    chosen = disagreements(task, n)
    pair = any(e.pair is not None for e in chosen)
    inputs = FIGURES / f"case-{task}.tsv"
    header = ["sentence1", "sentence2", "label"] if pair else ["sentence", "label"]
    rows = [
        [e.text, e.pair, spec.labels[int(e.label)]] if pair else [e.text, spec.labels[int(e.label)]] for e in chosen
    ]
    inputs.write_text("".join("\t".join(map(str, row)) + "\n" for row in [header, *rows]))
    right, spearman, links = {}, {}, []
    for row in ("kd", "adkd"):
        report = FIGURES / f"case-{task}-{row}.html"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "attribkit.cli",
                "compare",
                "--teacher",
                str(teacher_dir(task)),
                "--student",
                str(kept_student(task, row)),
                "--input",
                str(inputs),
                "--method",
                "fast_ig",
                "--steps",
                "20",
                "--max-length",
                str(MAX_LENGTH),
                "--html",
                str(report),
                "--plotly-js",
                "plotly.min.js",  # the pages share docs/figures/plotly.min.js
                "--json",
                str(report.with_suffix(".json")),
                "--no-progress",
            ],
            check=True,
            capture_output=True,
        )
        summary = json.loads(report.with_suffix(".json").read_text())
        right[row] = sum(e["student"] == e["gold"] for e in summary["examples"])
        spearman[row] = summary["summary"]["spearman"]["mean"]
        links.append(f"[{'AD-KD' if row == 'adkd' else 'KD'}](figures/{report.name})")
    line = (
        f"| {spec.directory} | {len(chosen)} ([inputs](figures/{inputs.name})) | {right['kd']} | {right['adkd']} | "
        f"{spearman['kd']:.3f} | {spearman['adkd']:.3f} | {' · '.join(links)} |"
    )
    return line, {"examples": len(chosen), **right}


def case_study(n: int = 10) -> list[str]:
    """Compare reports on the first ``n`` dev examples where the seed-1 KD and AD-KD students disagree, on every
    classification task whose two students exist (one task alone would be an anecdote chosen by its task)."""
    tasks = [t for t in CASE_TASKS if students_ready(t)]
    if not tasks:
        return ["(no classification task has its seed-1 KD and AD-KD students yet)"]
    lines = [
        f"On each classification task, the first {n} dev examples (in dev order) on which the seed-1 KD and AD-KD "
        "students predict different classes, explained with `fast_ig` (20 steps) for the gold class, teacher and "
        "student side by side (`attribkit compare`). Whichever student is right on an example, the other is wrong, "
        "so the two counts add up to the number of examples.",
        "",
        "| task | examples | KD student right | AD-KD student right | Spearman with teacher, KD | "
        "Spearman with teacher, AD-KD | reports |",
        "|---|---|---|---|---|---|---|",
    ]
    totals = {"examples": 0, "kd": 0, "adkd": 0}
    for task in tasks:
        line, counts = case_study_row(task, n)
        lines.append(line)
        totals = {key: totals[key] + counts[key] for key in totals}
    lines.append(f"| all | {totals['examples']} | {totals['kd']} | {totals['adkd']} | | | |")
    return lines


def cost_table(results: dict) -> list[str]:
    """Seconds per training step per task, row and CPU thread count, and the ratio to KD at the same setting."""
    rates: dict[tuple[str, int], dict[str, list[float]]] = {}
    for (task, row), records in results.items():
        for record in records:
            if record.get("steps_per_second"):
                key = (task, record.get("threads", 2))  # runs before the field existed used both cores
                rates.setdefault(key, {}).setdefault(row, []).append(1 / record["steps_per_second"])
    lines = ["| task | CPU threads | row | seconds per step (mean over seeds) | x KD |", "|---|---|---|---|---|"]
    for (task, count), rows in sorted(rates.items()):
        kd = statistics.mean(rows["kd"]) if "kd" in rows else None
        for row in TABLE_ROWS:
            if row in rows:
                seconds = statistics.mean(rows[row])
                ratio = f"{seconds / kd:.2f}" if kd else "—"
                lines.append(f"| {TASKS[task].directory} | {count} | {row} | {seconds:.2f} | {ratio} |")
    lines += [
        "",
        "Seconds per step include the periodic dev evaluation. Runs marked 1 thread ran two at a time, one "
        "per core. The controlled per-step comparison is `bench/distill_step.py` ([benchmarks](benchmarks.md)).",
    ]
    return lines


# (setting, KD row or None, AD-KD row): the MRPC investigation, one setting changed at a time
INVESTIGATION_TABLE = [
    ("presets (beta 10, all 384 dims, T 4 annealed, lr 1e-4)", "kd", "adkd"),
    ("beta = 1", None, "adkd_beta1"),
    ("beta = 100", None, "adkd_beta100"),
    ("K = 96 (top quarter of the dims)", None, "adkd_topk96"),
    ("T = 1", "kd_t1", "adkd_t1"),
    ("learning rate 3e-5 (the paper's)", "kd_lr3e-5", "adkd_lr3e-5"),
]


def investigation_table(results: dict, task: str = "mrpc") -> list[str]:
    """AD-KD vs KD on MRPC when beta, K, T or the learning rate moves away from the presets.

    The difference is paired by seed (:func:`paired_cell`): a seed-1 setting is set against the seed-1 KD
    student, never against the mean of KD's three seeds, which would mix seed noise into the difference.
    The KD and AD-KD cells show the seeds that difference uses.
    """
    lines = ["| setting | KD | AD-KD | AD-KD − KD (paired by seed) |", "|---|---|---|---|"]
    for setting, kd_row, adkd_row in INVESTIGATION_TABLE:
        baseline = kd_row or "kd"
        kd, adkd = by_seed(results, task, baseline), by_seed(results, task, adkd_row)
        seeds = sorted(kd.keys() & adkd.keys())
        kd_cell = cell([kd[s] for s in seeds]) + ("" if kd_row else ", presets") if seeds else "—"
        adkd_cell = cell([adkd[s] for s in seeds] if seeds else list(adkd.values()))
        lines.append(f"| {setting} | {kd_cell} | {adkd_cell} | {paired_cell(results, task, adkd_row, baseline)} |")
    return lines


def write_report() -> None:
    results = load_results()
    gap_lines = ["| task | KD student | AD-KD student |", "|---|---|---|"]
    for task in TASKS:
        if (teacher_dir(task) / "model.safetensors").is_file():
            gaps = attribution_gap(task)
            if gaps:
                gap_lines.append(
                    f"| {TASKS[task].directory} | "
                    + " | ".join(f"{gaps[r]:.4f}" if r in gaps else "—" for r in ("kd", "adkd"))
                    + " |"
                )
    cost = cost_table(results)
    body = "\n".join(
        [
            BEGIN,
            "",
            "## Results",
            "",
            table(results),
            "",
            "Mean ± sample standard deviation over seeds (number of seeds in brackets), each task's main metric x 100 on its dev set.",
            "",
            "Paired by seed (students of one seed share the teacher, the data order and the initial weights): mean ± "
            "sample standard deviation of the per-seed difference, and on how many seeds the first row is ahead.",
            "",
            *paired_table(results),
            "",
            *figures(results),
            "",
            f"## Investigation: AD-KD vs KD away from the presets ({TASKS['mrpc'].directory} F1)",
            "",
            *investigation_table(results),
            "",
            "## Attribution gap on dev (teacher vs student, the AD-KD loss)",
            "",
            *gap_lines,
            "",
            "## Case study",
            "",
            *case_study(),
            "",
            "## Cost per training step (this 2-core CPU)",
            "",
            *cost,
            "",
            END,
        ]
    )
    text = DOC.read_text() if DOC.is_file() else f"# Reproduction study\n\n{BEGIN}\n{END}\n"
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    DOC.write_text(head + body + tail)
    print(f"wrote {DOC}")


if __name__ == "__main__":
    write_report()

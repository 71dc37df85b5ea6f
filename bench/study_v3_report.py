"""Study v3 report: the pre-registered statistics from the committed result JSONs (protocol: docs/results.md).

``python bench/study_v3.py report`` rewrites the block between the ``study-v3 results`` markers in
docs/results.md. Nothing here trains or reads the runs folder: a fresh clone rebuilds the section from
``bench/results/study-v3`` (and v2's KD and AD-KD JSONs where v3 reuses them: same teacher, bit for bit).
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import teacher_identity
from study_runner import fill_block
from study_v2_report import holm, paired, paired_summary

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "study-v3"
V2_RESULTS = ROOT / "bench" / "results" / "study-v2"
DOC = ROOT / "docs" / "results.md"
BEGIN, END = "<!-- study-v3 results: begin -->", "<!-- study-v3 results: end -->"
TASKS = {"mrpc": "MRPC F1", "stsb": "STS-B Spearman", "cola": "CoLA MCC", "sst2": "SST-2 acc."}
ROWS = {
    "kd": "KD",
    "adkd": "AD-KD (reference)",
    "adkd_shuffled": "AD-KD, shuffled teacher maps (control)",
    "adkd_faithful": "AD-KD, 50-step IG teacher maps",
    "adkd_attnlrp": "AD-KD, AttnLRP maps",
    "adkd_cosine": "AD-KD, cosine distance",
}
SEEDS = (1, 2, 3, 4, 5, 6)
MARGIN = 1.0  # the equivalence margin of the decision rule, in points
Table = dict[tuple[str, str], dict[int, dict[str, Any]]]


def load() -> Table:
    """v3's result JSONs, plus v2's KD and AD-KD runs that learnt from the teacher v3's runs learnt from."""
    table: Table = {}
    teachers: dict[str, Counter[str]] = {}
    for path in sorted(RESULTS.glob("*/*/seed*.json")):
        record = json.loads(path.read_text())
        table.setdefault((record["task"], record["row"]), {})[int(record["seed"])] = record | {"source": "v3"}
        teachers.setdefault(record["task"], Counter())[record["teacher_sha256"]] += 1
    for task, digests in teachers.items():
        same_teacher(task, digests)
        for row in ("kd", "adkd"):
            for path in sorted((V2_RESULTS / task / row).glob("seed*.json")):
                record = json.loads(path.read_text())
                seeds = table.setdefault((task, row), {})
                if record.get("teacher_sha256") in digests and int(record["seed"]) not in seeds:
                    seeds[int(record["seed"])] = record | {"source": "v2"}
    return table


def same_teacher(task: str, digests: Mapping[str, int]) -> list[str]:
    """Why the weight digests that v3's ``task`` students learnt from are one teacher, per digest.

    Args:
        task: The task.
        digests: Each weight digest and how many of the task's students learnt from it.

    The teacher named first stands (a record older than dev outputs, else the one most students learnt from);
    each other is that teacher retrained on another CPU when its dev outputs (or, for records older than
    dev outputs, its dev metric) agree within tolerance (:mod:`teacher_identity`).

    Raises:
        SystemExit: When two of them are different teachers, or one has no record.
    """
    if len(digests) == 1:
        return [f"`{next(iter(digests))[:12]}`"]
    folder = V2_RESULTS / task / "teacher"
    records = []
    for digest in sorted(digests, key=lambda d: (-digests[d], d)):
        record = teacher_identity.load_record(folder, digest)
        if record is None:
            raise SystemExit(
                f"error: v3's {task} students learnt from teacher {digest[:12]}, which has no record in {folder}"
            )
        records.append(record)
    ordered = sorted(records, key=lambda record: "dev_outputs" in record)  # records older than dev outputs first
    for i, first in enumerate(ordered):  # every pair: two fingerprinted retrains are compared by their outputs
        for second in ordered[i + 1 :]:
            same, reason = teacher_identity.compare(first, second)
            if not same:
                raise SystemExit(
                    f"error: v3's {task} students learnt from two teachers ({first['weights_sha256'][:12]}, "
                    f"{second['weights_sha256'][:12]}): {reason}"
                )
    reasons = [f"`{r['weights_sha256'][:12]}` ({teacher_identity.compare(ordered[0], r)[1]})" for r in ordered[1:]]
    return [f"`{ordered[0]['weights_sha256'][:12]}`", *reasons]


def _cell(values: list[float]) -> str:
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:.1f} (1)"
    return f"{statistics.fmean(values):.1f} ± {statistics.stdev(values):.1f} ({len(values)})"


def decision(summary: dict[str, float], complete: bool) -> str:
    """The pre-registered decision rule for the primary endpoint."""
    if not complete:
        return "not decided: the rule applies at six seeds on all four tasks"
    if summary["low"] > 0:
        return "the explanation matters (the interval's lower bound is above 0)"
    if -MARGIN <= summary["low"] and summary["high"] <= MARGIN:
        return f"the shuffled map does as well (the interval lies inside [-{MARGIN:g}, +{MARGIN:g}])"
    return "inconclusive at six seeds"


def comparison_lines(table: Table, a: str, b: str) -> list[str]:
    """``a - b`` on the 4-task average and per task (Holm over the four tasks), where seeds pair up."""
    lines = []
    average = paired(table, a, b, list(TASKS))
    if len(average) >= 2:
        s = paired_summary([d for _, d in average])
        lines.append(
            f"| 4-task average | {s['n']} | {s['mean']:+.2f} | [{s['low']:+.2f}, {s['high']:+.2f}] | "
            f"{s['p_t']:.3f} | {s['p_sign_flip']:.3f} | |"
        )
    per_task = {t: paired(table, a, b, [t]) for t in TASKS}
    summaries = {t: paired_summary([d for _, d in p]) for t, p in per_task.items() if len(p) >= 2}
    # Holm runs over the family of four tasks: with a task missing it would be a smaller family's correction
    adjusted = holm({t: s["p_t"] for t, s in summaries.items()}) if len(summaries) == len(TASKS) else {}
    for t, s in summaries.items():
        lines.append(
            f"| {TASKS[t]} | {s['n']} | {s['mean']:+.2f} | [{s['low']:+.2f}, {s['high']:+.2f}] | "
            f"{s['p_t']:.3f} | {s['p_sign_flip']:.3f} | {f'{adjusted[t]:.3f}' if t in adjusted else '—'} |"
        )
    if not lines:
        return [f"No task has two seeds of both rows yet ({ROWS[a]} vs {ROWS[b]})."]
    header = [
        "| | seeds | mean | 95 % CI (t) | p (paired t) | p (sign flip) | p (Holm) |",
        "|---|---|---|---|---|---|---|",
    ]
    if adjusted:
        return header + lines
    note = f"Interim: {len(summaries)} of {len(TASKS)} tasks; Holm's correction waits for all four (—)."
    return header + lines + ["", note]


def teacher_lines(table: Table) -> list[str]:
    """Each task's teacher by weight digest, with the retrains on other CPUs judged the same teacher, and why."""
    digests: dict[str, Counter[str]] = {}
    for (task, _), seeds in table.items():
        for record in seeds.values():
            if record.get("source") == "v3":
                digests.setdefault(task, Counter())[record["teacher_sha256"]] += 1
    if not digests:
        return []
    named = "; ".join(
        f"{TASKS[t].split()[0]} " + ", the same teacher retrained on another CPU: ".join(same_teacher(t, digests[t]))
        for t in TASKS
        if t in digests
    )
    from_caches = sum(
        1 for seeds in table.values() for record in seeds.values() if record.get("teacher_loaded") is False
    )
    cached = (
        f" {from_caches} student(s) learnt from the kept teacher caches alone (the teacher not retrained in their "
        "session; the caches' teacher is checked the same way)."
        if from_caches
        else ""
    )
    return [
        "Teachers (weight digest; each session retrains them and adds students only to the same teacher: the "
        f"same weights, or dev outputs within {teacher_identity.LOGIT_TOLERANCE:g}): {named}.{cached}",
        "",
    ]


def report_lines(table: Table) -> list[str]:
    counts = {row: sum(len(table.get((t, row), {})) for t in TASKS) for row in ROWS}
    complete = all(len(table.get((t, r), {})) == len(SEEDS) for t in TASKS for r in ROWS)
    primary = paired(table, "adkd", "adkd_shuffled", list(TASKS))
    primary_complete = len(primary) == len(SEEDS)
    lines = [
        f"**Status:** {'complete' if complete else 'in progress'}: "
        + ", ".join(f"{ROWS[r]} {counts[r]}/{len(TASKS) * len(SEEDS)}" for r in ROWS)
        + " runs. "
        + (
            "KD and AD-KD are v2's runs (the teacher on disk has v2's weight digest). "
            if any(rec.get("source") == "v2" for k, v in table.items() for rec in v.values())
            else ""
        ),
        "",
        *teacher_lines(table),
        "Final-epoch dev metric x 100, mean ± sd (seeds):",
        "",
        "| row | " + " | ".join(TASKS.values()) + " |",
        "|---|" + "---|" * len(TASKS),
    ]
    for row, label in ROWS.items():
        cells = [_cell([r["final"] for r in table.get((t, row), {}).values()]) for t in TASKS]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "**Primary endpoint: AD-KD minus the shuffled control** (paired by seed):", ""]
    lines += comparison_lines(table, "adkd", "adkd_shuffled")
    if len(primary) >= 2:
        summary = paired_summary([d for _, d in primary])
        lines += ["", f"Decision (pre-registered rule): {decision(summary, primary_complete)}."]
    for a, b in (("adkd_shuffled", "kd"), ("adkd_faithful", "adkd"), ("adkd_attnlrp", "adkd"), ("adkd_cosine", "adkd")):
        lines += ["", f"**Secondary: {ROWS[a]} minus {ROWS[b]}:**", ""]
        lines += comparison_lines(table, a, b)
    measured = [(k, r) for k, v in table.items() for r in v.values() if "attribution_gap_faithful" in r]
    if measured:
        lines += [
            "",
            "Each v3 student's attribution gap on dev against the teacher's 50-step IG maps, and the ERASER "
            "comprehensiveness AOPC of its own single-step and 50-step IG maps (200 dev examples), mean over seeds:",
            "",
            "| row | task | seeds | gap (faithful maps) | comprehensiveness, 1 step | comprehensiveness, 50 steps |",
            "|---|---|---|---|---|---|",
        ]
        for row in ROWS:
            for t in TASKS:
                records = [r for (task, r_), v in table.items() if (task, r_) == (t, row) for r in v.values()]
                records = [r for r in records if "attribution_gap_faithful" in r]
                if records:
                    gap = statistics.fmean(r["attribution_gap_faithful"] for r in records)
                    c1 = statistics.fmean(r["comprehensiveness"]["ig1"] for r in records)
                    c50 = statistics.fmean(r["comprehensiveness"]["ig50"] for r in records)
                    lines.append(f"| {ROWS[row]} | {TASKS[t]} | {len(records)} | {gap:.4f} | {c1:.3f} | {c50:.3f} |")
    return lines


def write_report() -> None:
    """Rewrite the v3 results block of docs/results.md from the result JSONs."""
    fill_block(DOC, BEGIN, END, report_lines(load()))
    print(f"wrote the study-v3 block of {DOC}")

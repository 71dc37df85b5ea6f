"""Study v2 report: the pre-registered statistics, tables and figures from the committed result JSONs.

``python bench/study_v2.py report`` rewrites the block between the ``study-v2 results`` markers in
docs/results.md and the figure ``docs/figures/study-v2-share.html``. Nothing here trains or reads the
runs folder: a fresh clone rebuilds the section from ``bench/results/study-v2``.
"""

from __future__ import annotations

import itertools
import json
import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from study_runner import fill_block

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "study-v2"
DOC = ROOT / "docs" / "results.md"
FIGURES = ROOT / "docs" / "figures"
BEGIN, END = "<!-- study-v2 results: begin -->", "<!-- study-v2 results: end -->"
TASKS = {"mrpc": "MRPC F1", "stsb": "STS-B Spearman", "cola": "CoLA MCC", "sst2": "SST-2 acc."}
STUDENT_ROWS = {"no_teacher": "no teacher (CE)", "kd": "KD", "adkd": "AD-KD", "adkd_cal": "AD-KD, calibrated beta"}
SEEDS = (1, 2, 3, 4, 5, 6)  # the protocol's seeds per row (study_v2.py plans from these too)
ONLY = {"adkd_cal": ("stsb",)}  # student rows the protocol runs on some tasks only
CALIBRATION = RESULTS / "stsb" / "adkd_cal" / "calibration.json"


def paired_summary(differences: Sequence[float], confidence: float = 0.95) -> dict[str, float]:
    """Mean of paired differences, its t confidence interval, the paired t-test and the exact sign-flip test.

    Args:
        differences: One difference per seed (e.g. AD-KD minus KD), ``[n]``, n >= 2.
        confidence: Coverage of the interval.

    Returns:
        ``n``, ``mean``, ``sd`` (sample), ``low``/``high`` (t interval, df = n - 1), ``t``, ``p_t`` (two-sided
        paired t-test) and ``p_sign_flip`` (two-sided exact permutation test over all 2^n sign patterns:
        the share of patterns whose |mean| reaches the observed |mean|).
    """
    from scipy import stats

    d = [float(x) for x in differences]
    n = len(d)
    if n < 2:
        raise ValueError("a paired summary needs at least two differences")
    mean, sd = statistics.fmean(d), statistics.stdev(d)
    se = sd / math.sqrt(n)
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * se
    t = mean / se if se > 0 else math.copysign(math.inf, mean) if mean else 0.0
    p_t = float(2 * stats.t.sf(abs(t), n - 1)) if se > 0 else (0.0 if mean else 1.0)
    observed = abs(mean) - 1e-12 * max(1.0, abs(mean))  # ties count as extreme (float noise aside)
    extreme = sum(
        abs(statistics.fmean(s * x for s, x in zip(signs, d))) >= observed
        for signs in itertools.product((1, -1), repeat=n)
    )
    return {
        "n": n,
        "mean": mean,
        "sd": sd,
        "low": mean - half,
        "high": mean + half,
        "t": t,
        "p_t": p_t,
        "p_sign_flip": extreme / 2**n,
    }


def holm(p_values: dict[str, float]) -> dict[str, float]:
    """Holm's step-down adjusted p-values (family-wise error), same keys."""
    order = sorted(p_values, key=lambda k: p_values[k])
    m, running, adjusted = len(order), 0.0, {}
    for rank, key in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[key]))
        adjusted[key] = running
    return adjusted


def load(results: Path = RESULTS) -> dict[tuple[str, str], dict[int, dict[str, Any]]]:
    """Every result JSON as ``{(task, row): {seed: record}}``."""
    table: dict[tuple[str, str], dict[int, dict[str, Any]]] = {}
    for path in sorted(results.glob("*/*/seed*.json")):
        record = json.loads(path.read_text())
        table.setdefault((record["task"], record["row"]), {})[int(record["seed"])] = record
    return table


def gate(table: dict[tuple[str, str], dict[int, dict[str, Any]]], seed: int = 1) -> dict[str, Any] | None:
    """The protocol's gate after seed 1 (None until every task has its teacher and seed-1 students).

    Passes when the teacher beats the no-teacher student by >= 3 points on the 4-task average of the final
    dev metric *and* KD beats no teacher on >= 3 of the 4 tasks. The teacher's number is its best epoch: the
    checkpoint its students learn from.
    """
    try:
        teacher = {t: next(iter(table[(t, "teacher")].values()))["best"] for t in TASKS}  # the saved (best) model
        alone = {t: table[(t, "no_teacher")][seed]["final"] for t in TASKS}
        kd = {t: table[(t, "kd")][seed]["final"] for t in TASKS}
    except KeyError:
        return None
    headroom = statistics.fmean(teacher.values()) - statistics.fmean(alone.values())
    kd_wins = sum(kd[t] > alone[t] for t in TASKS)
    return {"headroom": headroom, "kd_wins": kd_wins, "passed": headroom >= 3 and kd_wins >= 3}


def paired(
    table: dict[tuple[str, str], dict[int, dict[str, Any]]], a: str, b: str, tasks: Sequence[str], key: str = "final"
) -> list[tuple[int, float]]:
    """``(seed, a - b)`` on the average over ``tasks`` for every seed where both rows ran on all of them."""
    seeds = set.intersection(*(set(table.get((t, r), {})) for t in tasks for r in (a, b)))
    return [(s, statistics.fmean(table[(t, a)][s][key] - table[(t, b)][s][key] for t in tasks)) for s in sorted(seeds)]


def _cell(values: list[float]) -> str:
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:.1f} (1)"
    return f"{statistics.fmean(values):.1f} ± {statistics.stdev(values):.1f} ({len(values)})"


def _effect(pairs: list[tuple[int, float]]) -> str:
    if len(pairs) < 2:
        return f"{pairs[0][1]:+.2f} (1 seed)" if pairs else "—"
    s = paired_summary([d for _, d in pairs])
    ahead, behind = sum(d > 0 for _, d in pairs), sum(d < 0 for _, d in pairs)
    per_seed = ", ".join(f"s{seed} {d:+.2f}" for seed, d in pairs)
    return (
        f"{s['mean']:+.2f} [{s['low']:+.2f}, {s['high']:+.2f}], t p = {s['p_t']:.3f}, "
        f"sign-flip p = {s['p_sign_flip']:.3f} ({s['n']} seeds, ahead on {ahead}, behind on {behind}: {per_seed})"
    )


def is_complete(table: dict[tuple[str, str], dict[int, dict[str, Any]]]) -> bool:
    """Whether every student row of the protocol (three per task, plus STS-B's calibrated arm) has all its seeds."""
    rows = [(t, r) for t in TASKS for r in STUDENT_ROWS if t in ONLY.get(r, (t,))]
    return all(set(SEEDS) <= set(table.get(row, {})) for row in rows)


def other_teachers(table: dict[tuple[str, str], dict[int, dict[str, Any]]]) -> list[str]:
    """A warning line per task whose students learnt from a teacher other than the recorded one (``--accept-teacher``)."""
    lines = []
    for task in TASKS:
        teacher = next(iter(table.get((task, "teacher"), {}).values()), {})
        recorded = teacher.get("weights_sha256")
        if recorded is None:
            continue
        others = sorted(
            {
                (record["teacher_sha256"], row, seed)
                for (t, row), seeds in table.items()
                if t == task and row != "teacher"
                for seed, record in seeds.items()
                if record.get("teacher_sha256") not in (None, recorded)
            }
        )
        if others:
            digests = sorted({digest[:12] for digest, _, _ in others})
            runs = ", ".join(f"{row} seed {seed}" for _, row, seed in others)
            lines += [
                f"**Warning ({TASKS[task].split()[0]}):** {len(others)} run(s) learnt from a retrained teacher that differs from "
                f"the recorded one ({', '.join(digests)} vs {recorded[:12]}; see "
                f"`teacher/accepted-*.json`): {runs}.",
                "",
            ]
    return lines


def report_lines(table: dict[tuple[str, str], dict[int, dict[str, Any]]]) -> list[str]:
    """The markdown of the v2 results block."""
    if is_complete(table):
        lines = [f"Results: complete, all {len(SEEDS)} seeds of the protocol on every row.", ""]
    else:
        done = sorted(set.union(set(), *(set(v) for (t, r), v in table.items() if r != "teacher")))
        lines = [
            f"Results so far: seeds {', '.join(map(str, done)) or 'none'} (the protocol's {len(SEEDS)} per row).",
            "",
        ]
    verdict = gate(table)
    if verdict is None:
        lines += ["**Gate after seed 1:** not yet decidable (seed 1 is not complete on all four tasks).", ""]
    else:
        lines += [
            f"**Gate after seed 1:** teacher minus no teacher {verdict['headroom']:+.2f} points on the 4-task "
            f"average (needs >= 3); KD beats no teacher on {verdict['kd_wins']} of 4 tasks (needs >= 3): "
            f"**{'passed' if verdict['passed'] else 'failed'}**.",
            "",
        ]
    lines += ["| row | " + " | ".join(TASKS.values()) + " |", "|---|" + "---:|" * len(TASKS)]  # teacher: best epoch
    teacher_cells = []
    for t in TASKS:
        record = next(iter(table.get((t, "teacher"), {}).values()), None)
        teacher_cells.append("—" if record is None else f"{record['best']:.1f} (seed {record['seed']})")
    lines.append("| teacher | " + " | ".join(teacher_cells) + " |")
    for row, label in STUDENT_ROWS.items():
        cells = [_cell([r["final"] for r in table.get((t, row), {}).values()]) for t in TASKS]
        lines.append(f"| {label}, final epoch | " + " | ".join(cells) + " |")
    for row, label in STUDENT_ROWS.items():
        cells = [_cell([r["best"] for r in table.get((t, row), {}).values()]) for t in TASKS]
        lines.append(f"| {label}, best epoch | " + " | ".join(cells) + " |")
    lines += ["", "Cells: mean ± sample sd (seeds). Paired differences (mean [95 % t interval], tests):", ""]
    tasks = list(TASKS)
    lines.append(
        f"- **Primary, AD-KD − KD, 4-task average, final epoch:** {_effect(paired(table, 'adkd', 'kd', tasks))}"
    )
    per_task = {t: paired(table, "adkd", "kd", [t]) for t in tasks}
    testable = {t: paired_summary([d for _, d in p])["p_t"] for t, p in per_task.items() if len(p) >= 2}
    adjusted = holm(testable) if testable else {}
    for t in tasks:
        holm_text = f"; Holm-adjusted t p = {adjusted[t]:.3f}" if t in adjusted else ""
        lines.append(f"- AD-KD − KD, {TASKS[t]}: {_effect(per_task[t])}{holm_text}")
    lines.append(f"- KD − no teacher, 4-task average: {_effect(paired(table, 'kd', 'no_teacher', tasks))}")
    lines.append(f"- AD-KD − KD, best epochs: {_effect(paired(table, 'adkd', 'kd', tasks, key='best'))}")
    if CALIBRATION.is_file():
        calibration = json.loads(CALIBRATION.read_text())
        lines.append(
            f"- STS-B's extra arm, beta = {calibration['beta']:g} (fixed before the arm ran: {calibration['reason']}): "
            f"calibrated AD-KD − KD {_effect(paired(table, 'adkd_cal', 'kd', ['stsb']))}; "
            f"calibrated − preset AD-KD {_effect(paired(table, 'adkd_cal', 'adkd', ['stsb']))}"
        )
    lines += ["", "| row | " + " | ".join(TASKS.values()) + " |", "|---|" + "---:|" * len(TASKS)]
    for row, label in {"teacher": "teacher", **STUDENT_ROWS}.items():
        cells = []
        for t in TASKS:
            runs = list(table.get((t, row), {}).values())
            cells.append("—" if not runs else f"{statistics.fmean(r['seconds'] for r in runs) / 60:.0f} min")
        lines.append(f"| {label}, wall-clock per run (1 thread) | " + " | ".join(cells) + " |")
    gaps = [
        (
            label,
            [[r["attribution_gap"] for r in table.get((t, row), {}).values() if "attribution_gap" in r] for t in TASKS],
        )
        for row, label in STUDENT_ROWS.items()
    ]
    if any(cell for _, row_cells in gaps for cell in row_cells):
        lines += [
            "",
            "Attribution gap on dev (the AD-KD loss between teacher and student maps, all dims, per example; "
            "lower = closer; the saved best-on-dev student; mean over the seeds measured, their number in brackets; "
            "seed-1 students that finished before the measurement landed had already dropped their weights):",
            "",
            "| row | " + " | ".join(TASKS.values()) + " |",
            "|---|" + "---:|" * len(TASKS),
        ]
        for label, row_cells in gaps:
            text = [f"{statistics.fmean(c):.4f} ({len(c)})" if c else "—" for c in row_cells]
            lines.append(f"| {label} | " + " | ".join(text) + " |")
    lines += other_teachers(table)
    shares = _shares(table)
    if shares:
        lines += ["", "Median share of the attribution term in the gradient norm (AD-KD, every diagnosed step):"]
        lines += [
            f"{TASKS[t]} {statistics.median(v):.3f}" + ("," if i < len(shares) - 1 else ".")
            for i, (t, v) in enumerate(shares.items())
        ]
        lines[-len(shares) :] = [" ".join(lines[-len(shares) :])]
        lines += [
            "",
            '<iframe src="../figures/study-v2-share.html" width="100%" height="400" frameborder="0"></iframe>',
        ]
    return lines


def _shares(table: dict[tuple[str, str], dict[int, dict[str, Any]]]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for t in TASKS:
        for record in table.get((t, "adkd"), {}).values():
            for row in record.get("gradients", []):
                g = row["gradients"]
                if "attr_share" in g:
                    out.setdefault(t, []).append(float(g["attr_share"]))
    return out


def share_figure(table: dict[tuple[str, str], dict[int, dict[str, Any]]], path: Path) -> None:
    """Plotly curves: the attribution term's gradient share over training, per task and seed."""
    import plotly.graph_objects as go

    figure = go.Figure()
    for t in TASKS:
        for seed, record in sorted(table.get((t, "adkd"), {}).items()):
            rows = [r for r in record.get("gradients", []) if "attr_share" in r["gradients"]]
            if rows:
                figure.add_trace(
                    go.Scatter(
                        x=[r["step"] for r in rows],
                        y=[r["gradients"]["attr_share"] for r in rows],
                        mode="lines",
                        name=f"{TASKS[t]}, seed {seed}",
                    )
                )
    figure.update_layout(
        title="AD-KD: attribution term's share of the gradient norm",
        xaxis_title="step",
        yaxis_title="share",
        height=380,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.write_html(path, include_plotlyjs="directory", div_id="study-v2-share")  # fixed id: rebuilds diff cleanly


def write_report() -> None:
    """Rewrite the v2 results block of docs/results.md (and its figure) from the result JSONs."""
    table = load()
    if _shares(table):
        share_figure(table, FIGURES / "study-v2-share.html")
    fill_block(DOC, BEGIN, END, report_lines(table))
    print(f"wrote the study-v2 block of {DOC}")

"""Study v2, STS-B's extra arm: the beta that makes the attribution term 10-30 % of the gradient norm.

The protocol fixes the rule, not the number: take the preset AD-KD run of seed 1 (beta = 1), read its
gradient diagnostics (the L2 norm of each weighted term's gradient every 50 steps), and choose the beta
that would make the attribution term's share ``attr / (attr + kd + ce)`` equal to the middle of the band
(20 %) at the median diagnosed step. A term's gradient scales linearly with its weight, so at one point of
training ``share(beta) = (beta/beta0) a / ((beta/beta0) a + o)`` with ``a`` the attribution norm at beta0
and ``o`` the other terms'. A short run (200 steps, diagnosed every 20) at that beta checks the share on
the student's actual path; outside 10-30 % the beta is rescaled by the same rule and checked again (at most
three short runs). The value, the reason and the checks go to ``calibration.json`` *before* the arm runs.

Usage: ``python bench/study_v2.py calibrate --data-dir GLUE_DIR``
"""

from __future__ import annotations

import json
import statistics
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import study_runner

TARGET = 0.20
BAND = (0.10, 0.30)
SHORT_STEPS = 200


def beta_for_share(diagnostics: Sequence[dict[str, Any]], beta0: float, target: float = TARGET) -> float:
    """The beta whose attribution share would be ``target`` at the median diagnosed step.

    Args:
        diagnostics: ``{"gradients": {"attr": a, "kd": k, "ce": c, ...}}`` rows of a run at weight ``beta0``
            (norms of the *weighted* terms; ``total`` and ``attr_share`` are ignored).
        beta0: The attribution weight of that run.
        target: Wanted share in (0, 1).
    """
    if not 0 < target < 1:
        raise ValueError(f"target share must be in (0, 1); got {target}")
    betas = []
    for row in diagnostics:
        norms = row["gradients"]
        attr = norms.get("attr", 0.0)
        others = sum(v for k, v in norms.items() if k not in ("attr", "total", "attr_share"))
        if attr > 0 and others > 0:
            betas.append(beta0 * target / (1 - target) * others / attr)
    if not betas:
        raise ValueError("no diagnosed step has both an attribution gradient and another term's")
    return float(statistics.median(betas))


def median_share(diagnostics: Sequence[dict[str, Any]]) -> float:
    return float(statistics.median(r["gradients"]["attr_share"] for r in diagnostics))


def calibrate(data_dir: Path, study: Any) -> dict[str, Any]:
    """Choose STS-B's calibrated beta and check it on short runs; writes and returns the calibration record.

    Args:
        data_dir: The GLUE folder.
        study: The ``study_v2`` module (its runs, commands and folders).
    """
    path = study.CALIBRATION
    if path.is_file():
        return json.loads(path.read_text())
    source = study.Run("stsb", "adkd", 1)
    if not source.result.is_file():
        raise SystemExit(
            "error: calibrating needs STS-B's preset AD-KD run of seed 1 first (run --tasks stsb --seeds 1)"
        )
    record = json.loads(source.result.read_text())
    beta0 = float(record["settings"]["loss"]["beta"])
    rows = [r for r in record["gradients"] if "attr" in r["gradients"]]
    beta = beta_for_share(rows, beta0)
    checks = []
    for attempt in range(3):
        out = study.RUNS / "stsb" / f"adkd_cal-calibration{attempt}"
        argv = study.command(study.Run("stsb", "adkd_cal", 1), data_dir, beta=beta, out=out)
        argv += ["--max-steps", str(SHORT_STEPS), "--diagnose-every", "20"]
        if not (out / "results.json").is_file():
            argv += ["--resume"] if out.exists() else []
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        share = median_share(study_runner.diagnostics(out))
        checks.append({"beta": beta, "steps": SHORT_STEPS, "median_share": share})
        if BAND[0] <= share <= BAND[1]:
            break
        beta = beta * (TARGET / (1 - TARGET)) / (share / (1 - share))
    else:
        raise SystemExit(f"error: three short runs did not bring the share into {BAND}: {checks}")
    result = {
        "task": "stsb",
        "beta": round(checks[-1]["beta"], 4),
        "target_share": TARGET,
        "band": list(BAND),
        "source": {"run": "stsb/adkd/seed1", "beta": beta0, "median_share": median_share(rows), "steps": len(rows)},
        "checks": checks,
        "reason": (
            f"the preset beta = {beta0:g} gave the attribution term a median {median_share(rows):.1%} of the "
            f"gradient norm on seed 1; beta = {checks[-1]['beta']:.4g} puts it at {checks[-1]['median_share']:.1%} "
            f"over a {SHORT_STEPS}-step run (rule: the middle of the 10-30 % band at the median diagnosed step)"
        ),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1))
    return result

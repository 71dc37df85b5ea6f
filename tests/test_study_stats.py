"""Study v2's pre-registered statistics, against scipy and hand-computed values."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

stats = pytest.importorskip("scipy.stats")
BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(scope="module")
def report():
    # bench/ on the path for the report's own imports (study_runner), as the bench scripts run; left as found
    sys.path.insert(0, str(BENCH))
    importlib.invalidate_caches()
    spec = importlib.util.spec_from_file_location("study_v2_report", BENCH / "study_v2_report.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["study_v2_report"] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules["study_v2_report"]
    sys.path.remove(str(BENCH))


def test_paired_summary_matches_scipy(report):
    diffs = [0.8, -0.3, 1.1, 0.4, 0.9, -0.2]
    s = report.paired_summary(diffs)
    ref = stats.ttest_1samp(diffs, 0.0)
    assert s["t"] == pytest.approx(ref.statistic, rel=1e-12) and s["p_t"] == pytest.approx(ref.pvalue, rel=1e-10)
    ci = ref.confidence_interval(0.95)
    assert (s["low"], s["high"]) == pytest.approx((ci.low, ci.high), rel=1e-10)
    assert s["mean"] == pytest.approx(np.mean(diffs), rel=1e-12) and s["sd"] == pytest.approx(np.std(diffs, ddof=1))
    # the exact sign-flip test against scipy's exact permutation test on the paired samples
    x = np.array(diffs)
    perm = stats.permutation_test(
        (x, np.zeros_like(x)),
        lambda a, b: np.mean(a - b),
        permutation_type="samples",
        alternative="two-sided",
        n_resamples=np.inf,
    )
    assert s["p_sign_flip"] == pytest.approx(perm.pvalue, abs=1e-12)


def test_sign_flip_by_hand(report):
    # all six differences positive: only the observed pattern and its mirror reach |mean| -> 2 / 64
    assert report.paired_summary([1, 2, 3, 4, 5, 6])["p_sign_flip"] == pytest.approx(2 / 64)
    # one negative of the smallest size: patterns reaching |mean| = 20/6 are +-(all +) and +-(only the 1 flipped)
    # |sum| >= 19: all+ (21), 1 flipped (19) and their mirrors -> 4 / 64
    assert report.paired_summary([-1, 2, 3, 4, 5, 6])["p_sign_flip"] == pytest.approx(4 / 64)
    with pytest.raises(ValueError):
        report.paired_summary([1.0])


def test_holm_by_hand(report):
    adjusted = report.holm({"a": 0.01, "b": 0.04, "c": 0.03, "d": 0.5})
    # sorted 0.01, 0.03, 0.04, 0.5 -> 4*0.01, 3*0.03, max(0.09, 2*0.04), max(0.09, 1*0.5)
    assert adjusted == pytest.approx({"a": 0.04, "c": 0.09, "b": 0.09, "d": 0.5})


def _record(task, row, seed, final, best=None, seconds=60.0):
    return {
        "task": task,
        "row": row,
        "seed": seed,
        "final": final,
        "best": final if best is None else best,
        "seconds": seconds,
    }


def test_gate_and_paired_differences(report):
    tasks = list(report.TASKS)
    table = {(t, "teacher"): {2: _record(t, "teacher", 2, 80.0, best=85.0)} for t in tasks}
    for i, t in enumerate(tasks):
        table[(t, "no_teacher")] = {1: _record(t, "no_teacher", 1, 80.0)}
        table[(t, "kd")] = {1: _record(t, "kd", 1, 81.0 if i else 79.0)}
    verdict = report.gate(table)
    # teacher best 85 vs no teacher 80: +5 >= 3; KD above no teacher on 3 of 4 tasks
    assert verdict == {"headroom": pytest.approx(5.0), "kd_wins": 3, "passed": True}
    table[("mrpc", "kd")][1]["final"] = 79.5
    table[("stsb", "kd")][1]["final"] = 79.5
    assert not report.gate(table)["passed"]
    del table[("sst2", "kd")]
    assert report.gate(table) is None  # seed 1 incomplete: not decidable
    table[("sst2", "kd")] = {1: _record("sst2", "kd", 1, 83.0), 2: _record("sst2", "kd", 2, 84.0)}
    table[("sst2", "adkd")] = {
        1: _record("sst2", "adkd", 1, 84.0),
        2: _record("sst2", "adkd", 2, 83.0),
        3: _record("sst2", "adkd", 3, 90.0),
    }
    # paired by seed: seed 3 has no KD partner and is left out
    assert report.paired(table, "adkd", "kd", ["sst2"]) == [(1, 1.0), (2, -1.0)]
    lines = "\n".join(report.report_lines(table))
    assert "Gate after seed 1:** teacher minus no teacher" in lines and "85.0 (seed 2)" in lines
    # every paired line shows its per-seed differences, so "ahead on every seed" can be read off the record
    assert (
        "SST-2 acc.: +0.00 [-12.71, +12.71]" in lines
        and "(2 seeds, ahead on 1, behind on 1: s1 +1.00, s2 -1.00)" in lines
    )
    assert lines.startswith("Results so far: seeds 1, 2, 3 (the protocol's 6 per row).")
    assert not report.is_complete(table)


def test_report_says_complete_only_when_every_row_has_six_seeds(report):
    rows = [(t, r) for t in report.TASKS for r in ("no_teacher", "kd", "adkd")] + [("stsb", "adkd_cal")]
    table = {row: {s: _record(row[0], row[1], s, 80.0) for s in range(1, 7)} for row in rows}
    assert report.is_complete(table)
    assert report.report_lines(table)[0] == "Results: complete, all 6 seeds of the protocol on every row."
    del table[("stsb", "adkd_cal")][6]  # the calibrated arm counts too
    assert not report.is_complete(table)
    assert report.report_lines(table)[0].startswith("Results so far: seeds 1, 2, 3, 4, 5, 6")


@pytest.fixture()
def calibration():
    spec = importlib.util.spec_from_file_location("study_v2_calibrate", BENCH / "study_v2_calibrate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_calibrated_beta_puts_the_attribution_share_at_the_target(calibration):
    # at beta0 = 1: attribution gradient norm 0.01, KD 0.6, CE 0.3 -> share 0.011
    rows = [{"gradients": {"attr": 0.01, "kd": 0.6, "ce": 0.3, "total": 0.8, "attr_share": 0.011}}]
    beta = calibration.beta_for_share(rows, 1.0, target=0.2)
    assert beta == pytest.approx(0.25 * 0.9 / 0.01, rel=1e-12)  # 22.5
    assert beta * 0.01 / (beta * 0.01 + 0.9) == pytest.approx(0.2, rel=1e-12)
    # the median over diagnosed steps; a run at beta0 = 2 scales the answer by 2
    rows += [
        {"gradients": {"attr": 0.02, "kd": 0.6, "ce": 0.3}},
        {"gradients": {"attr": 0.04, "kd": 0.6, "ce": 0.3}},
    ]
    assert calibration.beta_for_share(rows, 2.0, target=0.2) == pytest.approx(2 * 0.25 * 0.9 / 0.02, rel=1e-12)
    with pytest.raises(ValueError, match="no diagnosed step"):
        calibration.beta_for_share([{"gradients": {"kd": 0.6}}], 1.0)


def test_the_report_flags_students_of_a_retrained_teacher_that_differs(report):
    recorded, other = "a" * 64, "b" * 64
    table = {
        ("mrpc", "teacher"): {2: {"weights_sha256": recorded}},
        ("mrpc", "kd"): {1: {"teacher_sha256": recorded}, 2: {"teacher_sha256": other}},
        ("mrpc", "adkd"): {2: {"teacher_sha256": other}},
        ("stsb", "teacher"): {3: {"weights_sha256": recorded}},
        ("stsb", "kd"): {1: {"teacher_sha256": recorded}},
    }
    assert report.other_teachers(table) == [
        "**Warning (MRPC):** 2 run(s) learnt from a retrained teacher that differs from the recorded one "
        "(bbbbbbbbbbbb vs aaaaaaaaaaaa; see `teacher/accepted-*.json`): adkd seed 2, kd seed 2.",
        "",
    ]
    del table[("mrpc", "kd")][2], table[("mrpc", "adkd")]
    assert report.other_teachers(table) == []

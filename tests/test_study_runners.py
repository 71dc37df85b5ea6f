"""Study v2's runners share one plan: a run held by one runner is skipped by the others."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture
def study(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))  # study_v2.py imports its report module, as when run as a script
    spec = importlib.util.spec_from_file_location("study_v2_under_test", BENCH / "study_v2.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["study_v2_under_test"] = module
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "RUNS", tmp_path / "runs")
    yield module
    del sys.modules["study_v2_under_test"]


def test_a_held_run_is_refused_to_a_second_runner_until_released(study):
    run, other = study.Run("mrpc", "kd", 3), study.Run("mrpc", "adkd", 3)
    with study.claimed(run) as first:
        assert first is True
        with study.claimed(run) as second:  # a separate open file: what another process would see
            assert second is False
        with study.claimed(other) as different:
            assert different is True
    with study.claimed(run) as again:
        assert again is True


def test_a_claim_is_released_when_the_holder_raises(study):
    run = study.Run("stsb", "adkd_cal", 4)
    with pytest.raises(RuntimeError), study.claimed(run):
        raise RuntimeError("the run failed")
    with study.claimed(run) as again:
        assert again is True

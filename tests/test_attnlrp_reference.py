"""AttnLRP equals lxt, the reference implementation, on every run: a committed fixture of lxt's relevances.

lxt 2.1 runs on transformers 4.x only; ``tests/lxt_reference/make_fixture.py`` regenerates the fixture
in its own environment. The models are built bit for bit alike in both (``tests/lxt_reference/models.py``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

import attribkit as ak

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "lxt_reference"))
import models  # noqa: E402

FIXTURE = json.loads((HERE / "data" / "lxt_relevances.json").read_text())


def classifier(name: str, tmp_path: Path, minilm_path: Path) -> ak.Classifier:
    if name == "tiny-bert":
        clf = ak.load_classifier(models.tiny_bert(tmp_path / "tiny-bert"), device="cpu")
    else:
        clf = ak.load_classifier(minilm_path, num_labels=2, device="cpu")
        models.minilm_head(clf.model)
    clf.model.double()
    return clf


@pytest.mark.parametrize("name", ["tiny-bert", "minilm"])
def test_attnlrp_equals_lxt(name, tmp_path, minilm_path):
    clf = classifier(name, tmp_path, minilm_path)
    cases = FIXTURE[name]
    for case in cases:
        assert list(clf.tokenize(case["text"]).input_ids) == case["input_ids"]  # the same input, or the test is void
    records = ak.explain(clf, [c["text"] for c in cases], method="attnlrp", targets=[1] * len(cases))
    for case, record in zip(cases, records):
        assert float(record.probs[1]) > 0  # the record explains logit 1, as the fixture does
        # records hold float32: 1e-5 relative is above that storage error, far below any change of rule
        np.testing.assert_allclose(record.scores[0], case["relevance"], rtol=1e-5, atol=1e-8)
    plain = ak.explain(clf, [c["text"] for c in cases], method="gradient_x_input", targets=[1] * len(cases))
    gap = max(np.abs(p.scores[0] - c["relevance"]).max() / np.abs(c["relevance"]).max() for p, c in zip(plain, cases))
    assert gap > 1e-2  # without the rules the maps are far from lxt's: the comparison can fail

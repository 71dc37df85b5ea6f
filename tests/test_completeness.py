"""The completeness warning: which inputs it flags, how it words them, one warning per batch run."""

from __future__ import annotations

import warnings

import pytest
import torch

import attribkit as ak
from attribkit.completeness import CompletenessTally, completeness_warning, incomplete_inputs

TEXTS = ["fine", "a long and winding sentence that goes on and on past forty characters", "flat", "ok"]


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Four inputs, two views, token-level sums chosen so that F(x) - F(x') = sum(A) - delta is known."""
    sums = torch.tensor([[1.0, 2.0], [1.05, 0.5], [0.0065, 0.0], [3.0, 3.0]])
    delta = torch.tensor([[0.05, 0.1], [0.05, 0.25], [0.0045, 0.0], [0.0009, 0.0]])
    # input 0: 5 % and 5 % -> fine; input 1: 5 % and 100 % -> flagged (view 1, change 0.25);
    # input 2: error 0.0045 for a change of 0.002 (225 %) -> flagged, ill-conditioned; input 3: below the floor
    attributions = torch.zeros(4, 2, 3)
    attributions[..., 0] = sums
    return attributions, delta


def test_flags_the_inputs_whose_maps_do_not_add_up_with_their_worst_view():
    attributions, delta = batch()
    found = incomplete_inputs(attributions, delta, [10, 11, 12, 13], ["", "", "", "", "", "", "", "", "", "", *TEXTS])
    assert [(f.index, f.text) for f in found] == [(11, TEXTS[1]), (12, TEXTS[2])]
    assert found[0].delta == pytest.approx(0.25) and found[0].change == pytest.approx(0.25)
    assert found[1].delta == pytest.approx(0.0045) and found[1].change == pytest.approx(0.002)


def test_the_message_names_the_worst_input_the_steps_in_use_and_the_next_to_try():
    attributions, delta = batch()
    found = incomplete_inputs(attributions, delta, [0, 1, 2, 3], TEXTS)
    message = str(completeness_warning(found, 4, method="fast_ig", steps=50))
    assert message == (
        "completeness error above 10% of F(x) - F(x') on 2 of 4 input(s) (fast_ig, 50 steps); worst: input 3 "
        "('flat'), error +0.0045 for an output change of +0.002 (F(x) - F(x') is below 0.01 there, so the "
        "relative error is ill-conditioned: judge the absolute error); those maps do not add up to the output "
        "change: try steps=100 (--steps 100) or steps='auto' (--steps auto)"
    )
    only_long = str(completeness_warning(found[:1], 4, method="integrated_gradients", steps=8))
    assert (
        "worst: input 2 ('a long and winding sentence that goes on...'), error +0.25 for an output change of +0.25;"
        in only_long
    )
    assert "ill-conditioned" not in only_long and only_long.endswith(
        "try steps=50 (--steps 50) or steps='auto' (--steps auto)"
    )


def test_a_batch_run_gathers_its_chunks_into_one_warning_with_positions_in_the_whole_input():
    attributions, delta = batch()
    tally = CompletenessTally()
    for begin in (0, 4):
        with tally.watch(range(begin, begin + 4)):
            found = incomplete_inputs(attributions, delta, [0, 1, 2, 3], TEXTS)
            warnings.warn(completeness_warning(found, 4, method="fast_ig", steps=1), stacklevel=1)
            warnings.warn("another warning goes on", UserWarning, stacklevel=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tally.warn()
    [warning] = [w.message for w in caught]
    assert isinstance(warning, ak.CompletenessWarning) and warning.total == 8
    assert [f.index for f in warning.flagged] == [1, 2, 5, 6]
    assert "on 4 of 8 input(s) (fast_ig, 1 step); worst: input 3 ('flat')" in str(warning)


def test_explain_flags_exactly_the_records_whose_maps_do_not_add_up(tiny):
    clf = tiny("bert", 2)
    texts = ["the movie was good", "awful plot", "i love this film", "boring and bad", "a fine story", "never again"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        records = ak.explain(clf, texts, method="fast_ig", steps=1, targets="all")
    [warning] = [w.message for w in caught if isinstance(w.message, ak.CompletenessWarning)]  # one per call
    expected = []
    for i, record in enumerate(records):  # unnormalised signed sums: sum(A) per view, so F(x) - F(x') is known
        change = record.scores.sum(axis=1).astype("float64") - record.delta
        if any(abs(d) > 0.1 * abs(c) and abs(d) > 1e-3 for d, c in zip(record.delta, change)):
            expected.append(i)
    assert 0 < len(expected) and [f.index for f in warning.flagged] == expected
    assert warning.total == len(texts) and warning.steps == 1 and warning.method == "fast_ig"


def test_with_auto_steps_the_warning_judges_the_runs_own_tolerance_and_names_the_cap():
    attributions, delta = batch()
    # at 1 % with the auto noise floor (1e-4), input 0 (5 %) and input 3 (0.03 %, error 9e-4) are off too
    found = incomplete_inputs(attributions, delta, [0, 1, 2, 3], TEXTS, tolerance=0.01, floor=1e-4)
    assert [f.index for f in found] == [0, 1, 2]
    warning = completeness_warning(found, 4, method="fast_ig", steps="auto", tolerance=0.01, max_steps=400)
    assert "above 1% of F(x) - F(x') on 3 of 4 input(s) (fast_ig, steps=auto reached its cap of 400)" in str(warning)
    assert str(warning).endswith("try max_steps=800 (-o max_steps=800)")
    assert warning.steps == "auto" and warning.max_steps == 400 and warning.tolerance == 0.01

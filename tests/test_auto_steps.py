"""``steps="auto"``: each input takes steps until its map adds up; refined maps equal fixed-count IG at that count."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import attribkit as ak
from attribkit.methods.auto_steps import AutoSteps, check_steps

TEXTS = ["the movie was good", "awful plot", "i love this film", "boring and bad", "a fine story", "never again"]


def explain_quietly(clf, texts, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ak.CompletenessWarning)
        return ak.explain(clf, texts, targets="all", **options)


def change(record) -> np.ndarray:
    """F(x) - F(x') per view: the unnormalised signed map's sum minus its completeness error."""
    return record.scores.sum(axis=1).astype(np.float64) - record.delta


# At 50 steps on this model the six texts' worst relative errors are 0.4-22 % (right and left Riemann,
# halving with each doubling) and 0.04-0.5 % (trapezoid, a quarter per doubling); Captum's trapezoid
# weights sum to 1 - 1/m, so every text is off by about 1/m there.
@pytest.mark.parametrize(
    ("method", "rule", "tolerance", "max_steps", "counts"),
    [
        ("fast_ig", "riemann_right", 0.02, 200, [50, 100, 200]),  # nested: 2m = mean of m and m midpoints
        ("fast_ig", "riemann_left", 0.02, 100, [50, 100]),
        ("fast_ig", "riemann_trapezoid", 8e-4, 197, [50, 99]),  # nested: 2m - 1 points
        ("integrated_gradients", "riemann_right", 0.02, 100, [50, 100]),  # Captum's midpoints refine its sums
        ("integrated_gradients", "riemann_trapezoid", 0.015, 150, [100]),  # Captum's weights: computed afresh
    ],
)
def test_each_input_gets_the_map_of_fixed_step_ig_at_the_count_it_took(
    tiny, method, rule, tolerance, max_steps, counts
):
    clf = tiny("bert", 2)
    auto = explain_quietly(clf, TEXTS, method=method, rule=rule, steps="auto", tolerance=tolerance, max_steps=max_steps)
    taken = [r.steps_taken for r in auto]
    assert sorted(set(taken)) == counts  # only the inputs that need more steps got them
    for record in auto:
        error, out = np.abs(record.delta), np.abs(change(record))
        met = bool(np.all((error <= tolerance * out) | (error <= 1e-4)))
        assert met or record.steps_taken == max_steps  # refined until the tolerance is met or the cap is reached
    for count in set(taken):  # the reference: the same rule at a fixed count, computed in one go
        rows = [i for i, n in enumerate(taken) if n == count]
        fixed = explain_quietly(clf, [TEXTS[i] for i in rows], method=method, rule=rule, steps=count)
        for i, reference in zip(rows, fixed):
            # records hold float32: agreement to its storage error (a wrong refinement is off by O(1))
            np.testing.assert_allclose(auto[i].scores, reference.scores, rtol=1e-6, atol=1e-8)
            np.testing.assert_allclose(auto[i].delta, reference.delta, rtol=1e-5, atol=1e-8)


def test_an_input_stops_at_the_first_count_that_meets_the_tolerance(tiny):
    clf = tiny("bert", 2)
    auto = explain_quietly(
        clf, TEXTS, method="fast_ig", rule="riemann_right", steps="auto", tolerance=1e-3, max_steps=800
    )
    for text, record in zip(TEXTS, auto):
        if record.steps_taken == 50:
            continue
        before = explain_quietly(clf, [text], method="fast_ig", rule="riemann_right", steps=record.steps_taken // 2)[0]
        error, out = np.abs(before.delta), np.abs(change(before))
        assert not np.all((error <= 1e-3 * out) | (error <= 1e-4))  # half the steps did not meet it


def test_a_loose_tolerance_costs_nothing_beyond_fifty_steps(tiny):
    clf = tiny("bert", 2)
    auto = explain_quietly(clf, TEXTS, method="fast_ig", steps="auto", tolerance=0.5)
    fixed = explain_quietly(clf, TEXTS, method="fast_ig", steps=50)
    assert [r.steps_taken for r in auto] == [50] * len(TEXTS) == [r.steps_taken for r in fixed]
    for a, b in zip(auto, fixed):
        np.testing.assert_allclose(a.scores, b.scores, rtol=1e-12, atol=1e-15)
    assert auto[0].options["steps"] == "auto" and auto[0].options["tolerance"] == 0.5
    assert auto[0].options["max_steps"] == 400 and "steps" in fixed[0].options and "tolerance" not in fixed[0].options
    assert (
        auto[0]
        .method_summary()
        .startswith("fast_ig: auto steps (gausslegendre, to 50 % completeness, at most 400; took 50)")
    )


def test_auto_is_the_default_of_both_ig_methods_and_the_record_keeps_the_count(tiny):
    clf = tiny("bert", 2)
    for method in ("fast_ig", "integrated_gradients"):
        [record] = ak.explain(clf, TEXTS[:1], method=method)
        assert record.options["steps"] == "auto" and record.steps_taken == 50
        assert ak.Attribution.from_dict(record.to_dict()).steps_taken == 50


def test_refined_maps_stay_differentiable_and_equal_fixed_steps_gradients(tiny):
    clf = tiny("bert", 2)
    batch = clf.collate([clf.tokenize(t) for t in TEXTS[:3]])
    targets = torch.zeros((3, 1), dtype=torch.long)
    grads = []
    for options in (
        {"steps": "auto", "rule": "riemann_right", "tolerance": 1e-9, "max_steps": 100},  # all refined to 100
        {"steps": 100, "rule": "riemann_right"},
    ):
        clf.model.zero_grad()
        maps = ak.attribute(clf, batch, targets=targets, method="fast_ig", create_graph=True, **options)
        maps.pow(2).sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in clf.model.parameters() if p.grad is not None]))
    assert grads[0].abs().max() > 0
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-9, atol=1e-12)


def test_the_step_schedule():
    auto = AutoSteps(tolerance=0.01, max_steps=400)
    assert auto.next_count("gausslegendre", 50, nests=True) == (100, None)
    assert auto.next_count("gausslegendre", 200, nests=True) == (400, None)
    assert auto.next_count("gausslegendre", 400, nests=True) is None
    assert AutoSteps(max_steps=300).next_count("gausslegendre", 200, nests=True) == (300, None)
    assert auto.next_count("riemann_right", 100, nests=True) == (200, 100)
    assert auto.next_count("riemann_trapezoid", 50, nests=True) == (99, 49)
    assert auto.next_count("riemann_trapezoid", 197, nests=True) == (393, 196)
    assert auto.next_count("riemann_trapezoid", 393, nests=True) is None
    assert auto.next_count("riemann_trapezoid", 50, nests=False) == (100, None)
    assert AutoSteps(max_steps=8).start == 8


@pytest.mark.parametrize(
    ("steps", "tolerance", "max_steps", "message"),
    [
        ("auto", 0, None, "tolerance must be a positive number"),
        ("auto", -0.1, None, "tolerance must be a positive number"),
        ("auto", float("nan"), None, "tolerance must be a positive number"),
        ("auto", "1%", None, "tolerance must be a positive number"),
        ("auto", None, 1, "max_steps must be an integer >= 2"),
        ("auto", None, 2.5, "max_steps must be an integer >= 2"),
        (50, 0.01, None, "tolerance and max_steps apply to steps='auto' only"),
        ("many", None, None, "steps must be 'auto' or an integer >= 1"),
        (0, None, None, "steps must be 'auto' or an integer >= 1"),
    ],
)
def test_bad_auto_settings_are_refused_in_one_line(steps, tolerance, max_steps, message):
    with pytest.raises(ak.OptionError, match=message):
        check_steps(steps, tolerance, max_steps)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--steps", "lots"], "error: --steps takes a number or auto; got 'lots'"),
        (["--steps", "auto", "-o", "tolerance=0"], "tolerance must be a positive number"),
        (["--steps", "auto", "-o", "max_steps=1"], "max_steps must be an integer >= 2"),
        (["--steps", "20", "-o", "max_steps=100"], "tolerance and max_steps apply to steps='auto' only"),
    ],
)
def test_the_cli_refuses_bad_step_settings_with_exit_2(cli_main, checkpoint_dir, args, message):
    code, out, err = cli_main("explain", "--model", checkpoint_dir("bert"), "--text", "good movie", *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_the_cli_takes_steps_auto_and_writes_the_count(cli_main, checkpoint_dir, tmp_path):
    out_file = tmp_path / "record.json"
    code, _, err = cli_main(
        "explain", "--model", checkpoint_dir("bert"), "--text", "good movie", "--steps", "auto", "--json", out_file
    )
    assert code == 0, err
    record = ak.load(out_file)[0]
    assert record.options["steps"] == "auto" and record.steps_taken == 50

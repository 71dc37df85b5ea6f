"""The leaderboard: bootstrap intervals against closed forms, cells against ak.explain + ak.faithfulness, resume, refusals."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
import torch

import attribkit as ak
from attribkit.leaderboard import Leaderboard, LeaderboardSetting, recommendation, summarize

WORDS = "the movie was good awful plot i love this film boring and bad a fine story never again".split()
SENTENCES = [" ".join(WORDS[(3 * i + j) % len(WORDS)] for j in range(3 + i % 5)) for i in range(12)]
SETTINGS = [LeaderboardSetting("gradient_x_input"), LeaderboardSetting("occlusion")]


def test_the_bootstrap_interval_matches_the_exact_resampling_distribution():
    values = [0.0, 1.0, 3.0]  # 27 equally likely resamples: their means' quantiles are known exactly
    means = sorted(sum(c) / 3 for c in itertools.product(values, repeat=3))
    interval = ak.bootstrap_mean(values, confidence=0.5, resamples=200_000, seed=1)
    # the inverse CDF of the 27 atoms: 0.25 * 27 = 6.75 and 0.75 * 27 = 20.25 fall well inside the 7th and 21st
    exact_low, exact_high = means[math.ceil(0.25 * 27) - 1], means[math.ceil(0.75 * 27) - 1]
    assert (interval.low, interval.high) == (pytest.approx(exact_low), pytest.approx(exact_high))
    assert interval.mean == pytest.approx(4 / 3) and interval.n == 3


def test_the_bootstrap_interval_of_a_large_sample_is_the_normal_one():
    values = np.random.default_rng(0).normal(2.0, 1.5, size=400)
    interval = ak.bootstrap_mean(values, seed=3)
    half = 1.959964 * values.std() / math.sqrt(len(values))  # the bootstrap's standard error is s / sqrt(n)
    assert interval.low == pytest.approx(values.mean() - half, abs=0.06 * half)
    assert interval.high == pytest.approx(values.mean() + half, abs=0.06 * half)


def test_a_paired_interval_resamples_sentences_not_scores():
    base = np.random.default_rng(1).uniform(0, 1, size=50)
    paired = ak.paired_difference(base + 0.1, base)  # the same sentences, always 0.1 apart
    assert (paired.low, paired.mean, paired.high) == pytest.approx((0.1, 0.1, 0.1))
    separate = ak.bootstrap_mean(base)
    assert separate.high - separate.low > 0.1  # unpaired intervals would overlap and call it a tie
    assert paired.excludes(0.0) and not paired.excludes(paired.mean)


@pytest.mark.parametrize(
    ("values", "message"),
    [([1.0], "at least 2 values"), ([1.0, float("nan")], "finite values")],
)
def test_bad_interval_input_is_refused(values, message):
    with pytest.raises(ak.InvalidInputError, match=message):
        ak.bootstrap_mean(values)


@pytest.fixture()
def board(tiny, tmp_path):
    clf = tiny("bert", 2)
    leaderboard = Leaderboard(tmp_path / "run", model_name="tiny", texts=SENTENCES, settings=SETTINGS, draws=3)
    leaderboard.run(clf)
    return clf, leaderboard


def test_each_method_cell_is_the_faithfulness_of_the_methods_own_maps(board):
    clf, leaderboard = board
    for setting in SETTINGS:
        cell = leaderboard.cell(setting.key)
        records = ak.explain(clf, SENTENCES, method=setting.method)
        reference = ak.faithfulness(clf, records)
        np.testing.assert_allclose(cell["comprehensiveness"], [s.aopc_comprehensiveness for s in reference], atol=1e-6)
        np.testing.assert_allclose(cell["sufficiency"], [s.aopc_sufficiency for s in reference], atol=1e-6)
        assert cell["seconds_per_sentence"] > 0 and cell["summary"] == records[0].method_summary()


def test_the_reversed_row_deletes_the_reference_maps_least_important_tokens_first(board):
    clf, leaderboard = board
    assert leaderboard.reference_key() == "gradient_x_input-default"  # no default IG in this run: the first
    records = ak.explain(clf, SENTENCES, method="gradient_x_input")
    negated = [ak.Attribution.from_dict({**r.to_dict(), "scores": (-r.scores).tolist()}) for r in records]
    expected = [s.aopc_comprehensiveness for s in ak.faithfulness(clf, negated)]
    np.testing.assert_allclose(leaderboard.cell("reversed")["comprehensiveness"], expected, atol=1e-6)


def test_the_random_row_averages_random_rankings_per_sentence(tiny, tmp_path):
    clf = tiny("bert", 2)
    pairs = [f"{a} {b}" for a, b in itertools.permutations(["good", "awful", "fine", "boring", "love"], 2)][:12]
    board = Leaderboard(tmp_path / "r", model_name="tiny", texts=pairs, settings=SETTINGS[:1], draws=40, seed=5)
    board.run(clf)
    random = board.cell("random")["comprehensiveness"]
    for text, value in zip(pairs, random):
        # two real tokens: every fraction deletes one of them, each first with probability 1/2
        probs = probabilities(clf, text)
        full, label = float(probs.max()), int(probs.argmax())
        without = [float(probabilities(clf, w)[label]) for w in text.split()]  # each word is one token
        outcomes = [full - p for p in without]
        expected, spread = float(np.mean(outcomes)), abs(outcomes[0] - outcomes[1]) / 2
        assert min(outcomes) - 1e-6 <= value <= max(outcomes) + 1e-6
        assert value == pytest.approx(expected, abs=4 * spread / math.sqrt(40) + 1e-6)  # 4 binomial SEs


def probabilities(clf, text: str) -> torch.Tensor:
    with torch.no_grad():
        return torch.softmax(clf.logits(clf.encode([text])), dim=-1)[0]


def test_rows_rank_by_comprehensiveness_and_compare_with_the_best_and_random(board):
    _, leaderboard = board
    rows = leaderboard.rows()
    assert [r.key for r in rows][-2:] == ["random", "reversed"]
    methods = rows[:-2]
    assert methods[0].comprehensiveness.mean >= methods[1].comprehensiveness.mean
    assert methods[0].versus_best.mean == 0.0 and methods[0].tied_best
    best, second = (leaderboard.cell(r.key)["comprehensiveness"] for r in methods)
    expected = ak.paired_difference(second, best)
    assert methods[1].versus_best == expected and methods[1].tied_best == (not expected.excludes(0.0))
    random = leaderboard.cell("random")["comprehensiveness"]
    assert rows[-1].versus_random == ak.paired_difference(leaderboard.cell("reversed")["comprehensiveness"], random)
    assert "Highest mean comprehensiveness: `" + methods[0].key in recommendation(rows)


def test_an_interrupted_run_resumes_only_its_missing_cells(board, tiny):
    clf, leaderboard = board
    kept = leaderboard.cell_path("occlusion-default").read_text()
    leaderboard.cell_path("gradient_x_input-default").unlink()
    leaderboard.cell_path("random").unlink()
    again = Leaderboard(leaderboard.folder, model_name="tiny", texts=SENTENCES, settings=SETTINGS, draws=3, resume=True)
    done = []
    again.run(clf, on_cell=lambda key, cell: done.append(key))
    assert done == ["gradient_x_input-default", "random"]
    assert again.cell_path("occlusion-default").read_text() == kept
    assert summarize([again.cell("random"), again.cell("reversed")])[0].key == "random"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({}, "holds a leaderboard run; add --resume"),
        ({"resume": True, "draws": 4}, "holds a run with other random_draws"),
        ({"resume": True, "texts": SENTENCES[::-1]}, "holds a run with other sentences_sha256"),
        ({"resume": True, "settings": SETTINGS[:1]}, "holds a run with other settings"),
    ],
)
def test_a_folder_holding_another_run_is_refused(board, change, message):
    _, leaderboard = board
    arguments = {"model_name": "tiny", "texts": SENTENCES, "settings": SETTINGS, "draws": 3, **change}
    with pytest.raises(ak.InvalidInputError, match=message):
        Leaderboard(leaderboard.folder, **arguments)


def test_too_few_sentences_or_a_foreign_folder_are_refused(tmp_path):
    with pytest.raises(ak.InvalidInputError, match="at least 10 sentences"):
        Leaderboard(tmp_path / "a", model_name="m", texts=SENTENCES[:9])
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "notes.txt").write_text("mine")
    with pytest.raises(ak.InvalidInputError, match="is not a leaderboard folder"):
        Leaderboard(tmp_path / "b", model_name="m", texts=SENTENCES)
    with pytest.raises(ak.OptionError, match="draws must be a positive integer"):
        Leaderboard(tmp_path / "c", model_name="m", texts=SENTENCES, draws=0)
    assert not (tmp_path / "c").exists() and not (tmp_path / "a").exists()  # nothing written for refused runs


def test_the_command_writes_cells_and_a_report_and_refuses_bad_input(cli_main, checkpoint_dir, tmp_path):
    sentences = tmp_path / "s.txt"
    sentences.write_text("\n".join(SENTENCES) + "\n")
    out = tmp_path / "lb"
    args = ("leaderboard", "--model", checkpoint_dir("bert"), "--input", sentences, "--out", out)
    code, stdout, err = cli_main(*args, "--methods", "gradient_x_input,saliency", "--draws", "2")
    assert code == 0, err
    meta = json.loads((out / "run.json").read_text())
    assert [s[0] for s in meta["settings"]] == ["gradient_x_input", "saliency"] and meta["sentences"] == 12
    page = (out / "report.html").read_text()
    for key in ("gradient_x_input-default", "saliency-default", "random (baseline)", "reversed (baseline)"):
        assert key in page or key.rsplit("-", 1)[0] in page
    assert "Highest mean comprehensiveness" in stdout
    few = tmp_path / "few.txt"
    few.write_text("\n".join(SENTENCES[:5]) + "\n")
    for bad, message in (
        (("--input", few, "--out", tmp_path / "x"), "at least 10 sentences"),
        (("--input", sentences, "--out", out), "add --resume"),
        (("--input", sentences, "--out", tmp_path / "y", "--methods", "nope"), "unknown method 'nope'"),
    ):
        code, _, err = cli_main("leaderboard", "--model", checkpoint_dir("bert"), *bad)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1

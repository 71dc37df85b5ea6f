"""Which explainer for *my* model? Every method scored on the same sentences, with intervals and baselines.

A leaderboard scores each (method, setting) by ERASER comprehensiveness and sufficiency (AOPC over
1-50 % of the tokens, :func:`attribkit.faithfulness`) on the user's sentences, and puts two
baselines beside them so that a score can be read:

- ``random``: uniformly random maps (``draws`` per sentence, averaged per sentence): what a map
  with no information scores;
- ``reversed``: the reference method's map negated (its least important tokens deleted first):
  what a map that is wrong on purpose scores.

Every mean comes with a 95 % percentile-bootstrap interval over sentences; each method is compared
with the best one and with the random maps by a *paired* interval (the same resampled sentences,
:mod:`attribkit.intervals`). "Tied with the best" means the paired interval includes zero.

A run lives in a folder: ``run.json`` (model, sentences and settings; a resumed run must match it)
and one JSON per finished cell, written as soon as it is computed, so an interrupted run continues
where it stopped and never mixes two runs' settings.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from attribkit.errors import InvalidInputError, OptionError
from attribkit.facade import list_methods
from attribkit.files import atomic_write_text
from attribkit.intervals import Interval, bootstrap_mean, paired_difference
from attribkit.leaderboard_cells import score_maps, score_random, score_setting, skeleton_records
from attribkit.model import Classifier, Text

#: Fewer sentences than this cannot support an interval worth reading.
MIN_SENTENCES = 10
#: Random maps per sentence (their scores are averaged per sentence).
RANDOM_DRAWS = 10
#: The reversed row negates this method's map (the first setting run when it is absent).
REFERENCE = "integrated_gradients-default"
BASELINES = ("random", "reversed")


@dataclass(frozen=True)
class LeaderboardSetting:
    """One row of the leaderboard: a method at one setting.

    Attributes:
        method: Registered method name.
        setting: ``default`` (the method as a user gets it) or a name for other options (``cheap``).
        options: The method's options for this setting.
    """

    method: str
    setting: str = "default"
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.method}-{self.setting}"


#: Every built-in method at its default, and at the cheap setting a user picks for speed.
SETTINGS: tuple[LeaderboardSetting, ...] = (
    LeaderboardSetting("integrated_gradients"),
    LeaderboardSetting("integrated_gradients", "cheap", {"steps": 8}),
    LeaderboardSetting("fast_ig"),
    LeaderboardSetting("fast_ig", "cheap", {"steps": 1}),
    LeaderboardSetting("gradient_x_input"),
    LeaderboardSetting("saliency"),
    LeaderboardSetting("gradient_shap"),
    LeaderboardSetting("gradient_shap", "cheap", {"n_samples": 5}),
    LeaderboardSetting("deeplift"),
    LeaderboardSetting("attnlrp"),
    LeaderboardSetting("occlusion"),
    LeaderboardSetting("feature_ablation"),
    LeaderboardSetting("shapley_sampling"),
    LeaderboardSetting("shapley_sampling", "cheap", {"n_samples": 5}),
    LeaderboardSetting("kernel_shap"),
    LeaderboardSetting("kernel_shap", "cheap", {"n_samples": 50}),
    LeaderboardSetting("lime"),
    LeaderboardSetting("lime", "cheap", {"n_samples": 50}),
)


def settings_for(methods: Sequence[str] | None) -> list[LeaderboardSetting]:
    """The settings of ``methods`` (all of :data:`SETTINGS` when None); a method not listed runs at its default."""
    if methods is None:
        return list(SETTINGS)
    known = list_methods()
    chosen: list[LeaderboardSetting] = []
    for name in methods:
        if name not in known:
            raise OptionError(f"unknown method {name!r}; choose from: {', '.join(known)}")
        chosen += [s for s in SETTINGS if s.method == name] or [LeaderboardSetting(name)]
    if not chosen:
        raise OptionError("give at least one method")
    return chosen


@dataclass(frozen=True)
class Row:
    """One row of the summary table.

    Attributes:
        key: ``method-setting``, or ``random`` / ``reversed``.
        summary: The method and its settings in words.
        seconds: Seconds per sentence through :func:`attribkit.explain` (None for the baselines).
        comprehensiveness: Mean AOPC comprehensiveness with its interval (higher is better).
        sufficiency: Mean AOPC sufficiency with its interval (lower is better).
        versus_best: Paired interval of this row's comprehensiveness minus the best method's.
        versus_random: Paired interval of this row's comprehensiveness minus the random maps'.
    """

    key: str
    summary: str
    seconds: float | None
    comprehensiveness: Interval
    sufficiency: Interval
    versus_best: Interval | None
    versus_random: Interval | None

    @property
    def tied_best(self) -> bool:
        return self.versus_best is not None and not self.versus_best.excludes(0.0)


def fingerprint(
    model: str, texts: Sequence[Text], settings: Sequence[LeaderboardSetting], draws: int, seed: int
) -> dict:
    """What a resumed run must share with the run it continues."""
    digest = hashlib.sha256(json.dumps(list(texts), ensure_ascii=False).encode()).hexdigest()[:16]
    return {
        "model": model,
        "sentences": len(texts),
        "sentences_sha256": digest,
        "settings": [[s.method, s.setting, dict(s.options)] for s in settings],
        "random_draws": draws,
        "seed": seed,
    }


class Leaderboard:
    """A leaderboard run in a folder: run it (resumably), then summarise and report it.

    Args:
        folder: Where ``run.json`` and the cells go.
        model_name: How the table names the model (a path or hub name).
        texts: The sentences (strings or ``(text, pair)``), at least :data:`MIN_SENTENCES`.
        settings: The rows to score (:data:`SETTINGS` by default).
        draws: Random maps per sentence.
        seed: Seed of the random maps and of the bootstrap.
        resume: Continue a folder that holds this run's cells (refused when its run differs).

    Raises:
        InvalidInputError: too few sentences, or a folder that holds another run (or this one without ``resume``).
    """

    def __init__(
        self,
        folder: str | Path,
        *,
        model_name: str,
        texts: Sequence[Text],
        settings: Sequence[LeaderboardSetting] | None = None,
        draws: int = RANDOM_DRAWS,
        seed: int = 0,
        resume: bool = False,
    ) -> None:
        if len(texts) < MIN_SENTENCES:
            raise InvalidInputError(
                f"a leaderboard needs at least {MIN_SENTENCES} sentences for its intervals; got {len(texts)}"
            )
        if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1:
            raise OptionError(f"draws must be a positive integer; got {draws!r}")
        self.folder = Path(folder)
        self.texts = list(texts)
        self.settings = list(settings) if settings is not None else list(SETTINGS)
        self.draws, self.seed = draws, seed
        self.model_name = model_name
        self.meta = fingerprint(model_name, self.texts, self.settings, draws, seed)
        self._check_folder(resume)

    def _check_folder(self, resume: bool) -> None:
        """Refuse a folder that holds another run, or this one without ``resume`` (nothing is written yet)."""
        run_file = self.folder / "run.json"
        if run_file.is_file():
            try:
                before = json.loads(run_file.read_text(encoding="utf-8"))
            except ValueError:
                raise InvalidInputError(f"{run_file} is not a leaderboard run file; choose another folder") from None
            if not resume:
                raise InvalidInputError(f"{self.folder} holds a leaderboard run; add --resume to continue it")
            differing = sorted(k for k in self.meta if before.get(k) != self.meta[k])
            if differing:
                raise InvalidInputError(
                    f"{self.folder} holds a run with other {', '.join(differing)}; resume it with the same "
                    "model, sentences, methods and seed, or choose another folder"
                )
            return
        if self.folder.exists() and (not self.folder.is_dir() or any(self.folder.iterdir())):
            raise InvalidInputError(f"{self.folder} exists and is not a leaderboard folder; choose another one")

    def _claim(self) -> None:
        """Write ``run.json`` (the first time a cell is about to be scored)."""
        run_file = self.folder / "run.json"
        if not run_file.is_file():
            self.folder.mkdir(parents=True, exist_ok=True)
            atomic_write_text(run_file, json.dumps(self.meta, indent=1, ensure_ascii=False))

    def cell_path(self, key: str) -> Path:
        return self.folder / "cells" / f"{key}.json"

    def pending(self) -> list[str]:
        """Keys of the cells not on disk yet, in run order (baselines after the methods)."""
        keys = [s.key for s in self.settings] + list(BASELINES)
        return [k for k in keys if not self.cell_path(k).is_file()]

    def run(
        self,
        classifier: Classifier,
        *,
        batch_size: int = 16,
        max_length: int | None = None,
        on_cell: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        """Score every pending cell, saving each as soon as it is done.

        Args:
            classifier: The model (the one named by ``model_name``).
            batch_size: Texts per batch.
            max_length: Truncate inputs to this many tokens.
            on_cell: Called with each finished cell's key and content (for progress output).
        """
        self._claim()
        pending = set(self.pending())
        for setting in self.settings:
            if setting.key in pending:
                cell = score_setting(
                    classifier,
                    self.texts,
                    setting.method,
                    setting.options,
                    batch_size=batch_size,
                    max_length=max_length,
                )
                self._save(setting.key, cell, on_cell)
        if pending & set(BASELINES):
            skeleton = skeleton_records(classifier, self.texts, batch_size=batch_size, max_length=max_length)
            if "random" in pending:
                cell = score_random(classifier, skeleton, draws=self.draws, seed=self.seed, max_length=max_length)
                self._save("random", cell, on_cell)
            if "reversed" in pending:
                reference = self.reference_key()
                maps = self.cell(reference)["maps"]
                cell = score_maps(classifier, skeleton, [-np.asarray(m) for m in maps], max_length=max_length)
                cell["summary"] = f"the {reference} map, negated (least important tokens deleted first)"
                self._save("reversed", cell, on_cell)

    def _save(self, key: str, cell: dict[str, Any], on_cell: Callable[[str, dict[str, Any]], None] | None) -> None:
        cell = {"key": key, **cell}
        self.cell_path(key).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.cell_path(key), json.dumps(cell))
        if on_cell is not None:
            on_cell(key, cell)

    def reference_key(self) -> str:
        keys = [s.key for s in self.settings]
        return REFERENCE if REFERENCE in keys else keys[0]

    def cell(self, key: str) -> dict[str, Any]:
        return json.loads(self.cell_path(key).read_text(encoding="utf-8"))

    def rows(self) -> list[Row]:
        """The summary of every finished cell: methods by mean comprehensiveness, then the baselines."""
        return summarize(
            [self.cell(k) for k in [s.key for s in self.settings] + list(BASELINES) if self.cell_path(k).is_file()],
            seed=self.seed,
        )


def summarize(cells: Sequence[Mapping[str, Any]], *, seed: int = 0) -> list[Row]:
    """Rows with intervals: the methods by mean comprehensiveness (best first), then the baselines.

    Each method's comprehensiveness is compared, sentence by sentence, with the best method's and
    with the random maps' (paired bootstrap intervals).
    """
    methods = [c for c in cells if c["key"] not in BASELINES]
    baselines = [c for c in cells if c["key"] in BASELINES]
    methods.sort(key=lambda c: -float(np.mean(c["comprehensiveness"])))
    best = methods[0] if methods else None
    random = next((c for c in baselines if c["key"] == "random"), None)
    rows = []
    for c in [*methods, *baselines]:
        is_method = c["key"] not in BASELINES
        rows.append(
            Row(
                key=c["key"],
                summary=c["summary"],
                seconds=c.get("seconds_per_sentence"),
                comprehensiveness=bootstrap_mean(c["comprehensiveness"], seed=seed),
                sufficiency=bootstrap_mean(c["sufficiency"], seed=seed),
                versus_best=paired_difference(c["comprehensiveness"], best["comprehensiveness"], seed=seed)
                if best is not None and is_method
                else None,
                versus_random=paired_difference(c["comprehensiveness"], random["comprehensiveness"], seed=seed)
                if random is not None and c is not random
                else None,
            )
        )
    return rows


def recommendation(rows: Sequence[Row]) -> str:
    """What the intervals support, in one paragraph: the tied-best methods and the cheapest of them."""
    methods = [r for r in rows if r.key not in BASELINES]
    if not methods:
        return "No method has been scored yet."
    tied = [r for r in methods if r.tied_best or r is methods[0]]
    timed = [r for r in tied if r.seconds is not None]
    cheapest = min(timed, key=lambda r: r.seconds or 0.0) if timed else tied[0]
    names = ", ".join(f"`{r.key}`" for r in tied)
    text = (
        f"Highest mean comprehensiveness: `{methods[0].key}` ({methods[0].comprehensiveness}). "
        f"Not distinguishable from it on these sentences (paired 95 % interval of the difference includes 0): "
        f"{names}. The cheapest of those: `{cheapest.key}`"
        + (f" ({cheapest.seconds:.3f} s per sentence)." if cheapest.seconds is not None else ".")
    )
    random = next((r for r in rows if r.key == "random"), None)
    if random is not None:
        below = [r.key for r in methods if r.versus_random is not None and not r.versus_random.low > 0]
        text += f" Random maps score {random.comprehensiveness}; " + (
            f"not clearly above them: {', '.join(f'`{k}`' for k in below)}."
            if below
            else "every method is clearly above them."
        )
    return text

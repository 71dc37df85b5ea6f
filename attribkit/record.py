"""The attribution record returned by :func:`attribkit.explain`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from attribkit.errors import InvalidInputError

SCHEMA_VERSION = 1


def _frozen_array(values: Any, *, name: str, ndim: int) -> np.ndarray:
    array = np.array(values, dtype=np.float32)
    if array.ndim != ndim:
        raise InvalidInputError(f"Attribution.{name} must have {ndim} dimension(s); got shape {array.shape}")
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class Attribution:
    """Token attributions for one input, with everything needed to reproduce and render them.

    Attributes:
        text: The input text.
        pair: The second text of a pair, or None.
        tokens: Token strings (words when ``options['word_level']``), special tokens included.
        offsets: ``(start, end)`` character offsets per token into ``text`` or ``pair``
            (``segments`` says which); ``(0, 0)`` for special tokens.
        segments: Per token: 0 = text, 1 = pair, -1 = special token.
        scores: ``[n_views, n_tokens]`` float32 scores, read-only.
        views: Name of the class each row of ``scores`` explains.
        labels: The model's class names (``("output",)`` for regression).
        probs: ``[n_labels]`` predicted probabilities (the raw output for regression).
        prediction: Predicted class name (for regression, the output as text).
        method: Registered name of the method.
        options: Every option that produced the scores (method and reduction).
        delta: ``[n_views]`` IG completeness error ``sum(scores before reduction) - (F(x) - F(x'))``,
            or None when the method has none.
        truncated: True if the input was cut (to ``max_length`` or the model's limit).
        gold: Gold label name, when given.
        model: The model that produced the map (``Classifier.name``: its path or hub name), when known.
        steps_taken: The integration steps this input took (IG methods; with ``steps="auto"`` they
            differ from input to input), or None.

    Shapes:
        scores ``[n_views, n_tokens]``; probs ``[n_labels]``; delta ``[n_views]``.
    """

    text: str
    pair: str | None
    tokens: tuple[str, ...]
    offsets: tuple[tuple[int, int], ...]
    segments: tuple[int, ...]
    scores: np.ndarray
    views: tuple[str, ...]
    labels: tuple[str, ...]
    probs: np.ndarray
    prediction: str
    method: str
    options: Mapping[str, Any] = field(default_factory=dict)
    delta: np.ndarray | None = None
    truncated: bool = False
    gold: str | None = None
    model: str | None = None
    steps_taken: int | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "tokens", tuple(str(t) for t in self.tokens))
        set_(self, "offsets", tuple((int(a), int(b)) for a, b in self.offsets))
        set_(self, "segments", tuple(int(s) for s in self.segments))
        set_(self, "views", tuple(str(v) for v in self.views))
        set_(self, "labels", tuple(str(v) for v in self.labels))
        set_(self, "scores", _frozen_array(self.scores, name="scores", ndim=2))
        set_(self, "probs", _frozen_array(self.probs, name="probs", ndim=1))
        set_(self, "options", dict(self.options))
        if self.steps_taken is not None:
            if isinstance(self.steps_taken, bool) or int(self.steps_taken) != self.steps_taken or self.steps_taken < 1:
                raise InvalidInputError(f"steps_taken must be a positive integer; got {self.steps_taken!r}")
            set_(self, "steps_taken", int(self.steps_taken))
        if self.delta is not None:
            set_(self, "delta", _frozen_array(self.delta, name="delta", ndim=1))
        n = len(self.tokens)
        if len(self.offsets) != n or len(self.segments) != n:
            raise InvalidInputError(
                f"tokens, offsets and segments must have the same length; got {n}, {len(self.offsets)}, {len(self.segments)}"
            )
        if self.scores.shape != (len(self.views), n):
            raise InvalidInputError(
                f"scores must be [n_views={len(self.views)}, n_tokens={n}]; got {self.scores.shape}"
            )
        if self.delta is not None and self.delta.shape != (len(self.views),):
            raise InvalidInputError(f"delta must have one value per view; got shape {self.delta.shape}")
        if len(self.probs) != len(self.labels):
            raise InvalidInputError(
                f"probs must have one value per label; got {len(self.probs)} for {len(self.labels)}"
            )
        if not np.all(np.isfinite(self.scores)):
            raise InvalidInputError("scores contain NaN or infinity")

    def view(self, name: str | int = 0) -> np.ndarray:
        """Scores of one view, by view name or row index. Shapes: ``[n_tokens]``."""
        if isinstance(name, int):
            return self.scores[name]
        if name not in self.views:
            raise InvalidInputError(f"no view {name!r}; this record has: {', '.join(self.views)}")
        return self.scores[self.views.index(name)]

    def method_summary(self) -> str:
        """The method and the settings that decide what its map means, in words.

        For example ``fast_ig: 50 steps (gausslegendre), baseline pad, layer word_embeddings, target logit``;
        with ``steps="auto"``: ``fast_ig: auto steps (gausslegendre, to 1 % completeness, at most 400; took 100), ...``.
        """
        o = self.options
        parts = []
        if o.get("steps") == "auto":
            detail = [o["rule"]] if o.get("rule") else []
            detail.append(f"to {100 * o.get('tolerance', 0.01):g} % completeness, at most {o.get('max_steps')}")
            took = f"; took {self.steps_taken}" if self.steps_taken is not None else ""
            parts.append(f"auto steps ({', '.join(detail)}{took})")
        elif "steps" in o:
            parts.append(
                f"{o['steps']} step{'s' if o['steps'] != 1 else ''}" + (f" ({o['rule']})" if o.get("rule") else "")
            )
        if "n_samples" in o:
            parts.append(f"{o['n_samples']} samples (seed {o.get('seed', 0)})")
        if o.get("stdevs"):
            parts.append(f"noise {o['stdevs']:g}")
        for key, label in (
            ("baseline", "baseline"),
            ("replacement", "replacement"),
            ("layer", "layer"),
            ("target_fn", "target"),
            ("dtype", "dtype"),
        ):
            if o.get(key) is not None:
                parts.append(f"{label} {o[key]}")
        return f"{self.method}: {', '.join(parts)}" if parts else self.method

    def _repr_html_(self) -> str:
        """Notebook display: the heatmap of every view (see :func:`attribkit.render_html`)."""
        from attribkit.render.html import render_html

        return render_html(self, full_page=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (lists and plain numbers); inverse of :meth:`from_dict`."""
        return {
            "schema": SCHEMA_VERSION,
            "text": self.text,
            "pair": self.pair,
            "tokens": list(self.tokens),
            "offsets": [list(o) for o in self.offsets],
            "segments": list(self.segments),
            "scores": self.scores.tolist(),
            "views": list(self.views),
            "labels": list(self.labels),
            "probs": self.probs.tolist(),
            "prediction": self.prediction,
            "method": self.method,
            "options": dict(self.options),
            "delta": None if self.delta is None else self.delta.tolist(),
            "truncated": self.truncated,
            "gold": self.gold,
            "model": self.model,
            "steps_taken": self.steps_taken,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Attribution:
        """Rebuild a record from :meth:`to_dict` output (validates it)."""
        fields = dict(data)
        schema = fields.pop("schema", SCHEMA_VERSION)
        if schema != SCHEMA_VERSION:
            raise InvalidInputError(f"record schema {schema} is not supported (expected {SCHEMA_VERSION})")
        try:
            return cls(**fields)
        except TypeError as exc:
            raise InvalidInputError(f"not an attribution record: {exc}") from exc

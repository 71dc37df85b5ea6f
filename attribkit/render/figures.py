"""Plotly figures: a record's views x tokens heatmap, teacher vs student, agreement histograms.

plotly is imported inside each function (it is only needed when a figure is asked for).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from attribkit.reduce import scaled_to_max
from attribkit.render.colors import color, is_signed, scale_of
from attribkit.render.html import token_labels

#: Distinct, colour-blind-safe series colours (Okabe & Ito).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00")

if TYPE_CHECKING:  # pragma: no cover
    import plotly.graph_objects as go

    from attribkit.comparison import Comparison
    from attribkit.record import Attribution


def _colorscale(signed: bool) -> list[list]:
    if signed:
        return [[0.0, color(-1, 1, signed=True)], [0.5, color(0, 1, signed=True)], [1.0, color(1, 1, signed=True)]]
    return [[t, color(t, 1, signed=False)] for t in (0.0, 0.5, 1.0)]


def _heatmap(z: np.ndarray, rows: Sequence[str], columns: Sequence[str], title: str, signed: bool) -> go.Figure:
    import plotly.graph_objects as go

    scale = scale_of(z.ravel()) or 1.0
    # unique x positions keep repeated tokens apart; tick labels show the tokens themselves
    x = list(range(len(columns)))
    figure = go.Figure(
        go.Heatmap(
            z=z,
            x=x,
            y=list(rows),
            colorscale=_colorscale(signed),
            zmin=-scale if signed else 0.0,
            zmax=scale,
            customdata=np.array([list(columns)] * len(rows), dtype=object),
            hovertemplate="%{y}<br>%{customdata}: %{z:+.4g}<extra></extra>",
            colorbar={"title": {"text": "score"}, "len": 1.0, "lenmode": "fraction", "thickness": 14},
        )
    )
    # height sized to its content (~70 px per row of cells above the tick labels); the width follows the
    # window (autosize), so a long text never makes the page wider than the screen
    figure.update_layout(
        title=title,
        xaxis={"tickmode": "array", "tickvals": x, "ticktext": list(columns), "tickangle": -45, "automargin": True},
        yaxis={"autorange": "reversed"},
        height=200 + 70 * max(len(rows), 2),
        autosize=True,
        margin={"t": 60, "b": 120, "l": 90, "r": 40},
    )
    return figure


def plot(record: Attribution, *, title: str | None = None) -> go.Figure:
    """Heatmap of every view (rows) over the tokens (columns), exact values on hover.

    Shapes:
        One row per ``record.views`` entry, one column per token.
    """
    heading = title or f"{record.method}: prediction {record.prediction}"
    z = np.asarray(record.scores, dtype=np.float64)
    return _heatmap(z, record.views, token_labels(record), heading, is_signed(z.ravel(), record.options))


def plot_comparison(comparison: Comparison, *, title: str | None = None) -> go.Figure:
    """Teacher and student maps on the aligned units, one row each (each row scaled to max |score| = 1)."""
    z = np.stack([scaled_to_max(comparison.teacher_scores), scaled_to_max(comparison.student_scores)])
    heading = title or f"teacher vs student (aligned by {comparison.aligned_by})"
    signed = is_signed(comparison.teacher_scores, comparison.teacher.options) or is_signed(
        comparison.student_scores, comparison.student.options
    )
    return _heatmap(z, ["teacher", "student"], comparison.units, heading, signed)


def agreement_histogram(
    scores: Mapping[str, Sequence[float]], *, title: str = "teacher-student agreement"
) -> go.Figure:
    """Overlaid histograms of agreement metrics (one trace per metric, nan values left out)."""
    import plotly.graph_objects as go

    figure = go.Figure()
    for i, (name, values) in enumerate(scores.items()):
        finite = [float(v) for v in values if np.isfinite(v)]
        figure.add_trace(
            go.Histogram(
                x=finite,
                name=name,
                marker={"color": PALETTE[i % len(PALETTE)]},
                xbins={"start": -1.0, "end": 1.0001, "size": 0.1},
            )
        )
    # bars side by side in clearly different colours: overlaid, four similar series were unreadable
    figure.update_layout(
        title=title,
        barmode="group",
        bargap=0.15,
        xaxis={"title": {"text": "score"}, "range": [-1.05, 1.05]},
        yaxis={"title": {"text": "examples"}},
        height=340,
    )
    return figure


def save_figure(figure: go.Figure, path: str) -> None:
    """Write a figure as standalone HTML with plotly.js inline (opens offline), atomically."""
    from pathlib import Path

    from attribkit.files import atomic_write_text

    page = figure.to_html(
        include_plotlyjs=True, full_html=True, default_width="100%", config={"responsive": True}
    )  # the width follows the window, also when it is resized
    atomic_write_text(Path(path), page)

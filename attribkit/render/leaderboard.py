"""A leaderboard's table (markdown and HTML) and its figure: means with 95 % intervals, baselines marked."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

from attribkit.intervals import Interval
from attribkit.leaderboard import BASELINES, Row, recommendation
from attribkit.render.html import esc

HEADER = (
    "method",
    "setting",
    "s / sentence",
    "comp. AOPC [95 % CI]",
    "vs best (paired)",
    "vs random (paired)",
    "suff. AOPC [95 % CI]",
)


def _interval(value: Interval | None, *, signed: bool = False) -> str:
    if value is None:
        return "—"
    fmt = "+.3f" if signed else ".3f"
    return f"{value.mean:{fmt}} [{value.low:{fmt}}, {value.high:{fmt}}]"


def row_cells(row: Row) -> list[str]:
    """The table's cells for one row, as text."""
    method = row.key if row.key in BASELINES else row.key.rsplit("-", 1)[0]
    return [
        f"{method} (baseline)" if row.key in BASELINES else method,
        row.summary,
        "—" if row.seconds is None else f"{row.seconds:.3f}",
        _interval(row.comprehensiveness),
        _interval(row.versus_best, signed=True) + (" tied" if row.tied_best and row.versus_best.mean != 0 else ""),  # type: ignore[union-attr]
        _interval(row.versus_random, signed=True),
        _interval(row.sufficiency),
    ]


def markdown_table(rows: Sequence[Row]) -> list[str]:
    """The leaderboard as markdown lines."""
    lines = ["| " + " | ".join(HEADER) + " |", "|---|---|---:|---:|---:|---:|---:|"]
    for row in rows:
        cells = row_cells(row)
        cells[0] = f"`{cells[0]}`" if row.key not in BASELINES else f"*{cells[0]}*"
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def figure(rows: Sequence[Row], title: str) -> go.Figure:
    """Mean comprehensiveness with its interval per row (baselines in grey), best at the top."""
    shown = list(reversed(rows))
    means = [r.comprehensiveness.mean for r in shown]
    fig = go.Figure(
        go.Bar(
            x=means,
            y=[r.key for r in shown],
            orientation="h",
            marker_color=["#9e9e9e" if r.key in BASELINES else "#3b6fb6" for r in shown],
            error_x={
                "type": "data",
                "symmetric": False,
                "array": [r.comprehensiveness.high - r.comprehensiveness.mean for r in shown],
                "arrayminus": [r.comprehensiveness.mean - r.comprehensiveness.low for r in shown],
            },
        )
    )
    fig.update_layout(
        title=title,
        xaxis_title="comprehensiveness AOPC (higher is better), 95 % bootstrap interval",
        height=max(300, 28 * len(rows) + 120),
        margin={"l": 220},
    )
    return fig


def leaderboard_html(rows: Sequence[Row], *, title: str, sentences: int) -> str:
    """A standalone page: the recommendation, the table and the figure (plotly bundled, works offline)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in HEADER)
    body = "".join(
        "<tr"
        + (' class="baseline"' if r.key in BASELINES else "")
        + ">"
        + "".join(f"<td>{esc(c)}</td>" for c in row_cells(r))
        + "</tr>"
        for r in rows
    )
    plot = figure(rows, title).to_html(include_plotlyjs=True, full_html=False, config={"responsive": True})
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em; max-width: 100%; }}
table {{ border-collapse: collapse; font-size: 0.9em; }}
td, th {{ border: 1px solid #ccc; padding: 0.3em 0.5em; vertical-align: top; }}
td:nth-child(n+3) {{ text-align: right; white-space: nowrap; }}
tr.baseline {{ color: #666; font-style: italic; }}
.table {{ overflow-x: auto; }}
</style></head><body>
<h1>{esc(title)}</h1>
<p>{esc(sentences)} sentences. ERASER comprehensiveness (higher is better) and sufficiency (lower is better), AOPC over
1-50 % of the tokens; intervals are 95 % percentile-bootstrap intervals over sentences; "vs best" and "vs random" are
paired intervals of the difference in comprehensiveness (the same resampled sentences).</p>
<p>{esc(recommendation(rows))}</p>
<div class="table"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>
{plot}
</body></html>
"""

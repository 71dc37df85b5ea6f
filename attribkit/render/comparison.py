"""The teacher/student case-study report: one standalone HTML page.

At the top: a summary table (prediction agreement, mean and spread of every agreement score)
and a plotly histogram of the agreement distribution (plotly.js inline, so the page opens
offline). Then every example: the gold label and both predictions, the two heatmaps aligned
unit by unit, the agreement scores, and the units where the maps differ most. A menu re-sorts
the examples (by disagreement, by each score, or back to input order) without any network.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from attribkit.errors import OptionError
from attribkit.evaluation.metrics import summarize
from attribkit.render.colors import color, is_signed, scale_of, text_color
from attribkit.render.html import esc, legend_html, options_footer, page, prediction_html

if TYPE_CHECKING:  # pragma: no cover
    from attribkit.comparison import Comparison
    from attribkit.record import Attribution

_SORT_SCRIPT = """
<script>
(function(){
  var select=document.getElementById('ak-sort');
  if(!select){return;}
  select.addEventListener('change',function(){
    var key=select.value, box=document.getElementById('ak-examples');
    var items=Array.prototype.slice.call(box.querySelectorAll('.ak-example'));
    items.sort(function(a,b){
      var x=parseFloat(a.dataset[key]), y=parseFloat(b.dataset[key]);
      if(isNaN(x)&&isNaN(y)){return a.dataset.order-b.dataset.order;}
      if(isNaN(x)){return 1;} if(isNaN(y)){return -1;}
      return key==='order' ? x-y : (x-y)||(a.dataset.order-b.dataset.order);
    });
    items.forEach(function(item){box.appendChild(item);});
  });
})();
</script>
"""

_EXTRA_STYLE = """
<style>
.ak-grid{display:flex;flex-wrap:wrap;gap:.25rem .15rem;margin:.4rem 0;font-size:.9rem;align-items:flex-start}
.ak-unit,.ak-rowlabels{display:flex;flex-direction:column;gap:.1rem}
.ak-rowlabels span{color:#555;font-size:.8rem;line-height:1.6rem;padding-right:.3rem}
.ak-unit .ak-tok{display:block;min-width:1.2rem;text-align:center;line-height:1.6rem;white-space:pre}
.ak-diff{font-size:.85rem}
.ak-warn{color:#8a4b00;font-size:.85rem}
.ak-controls{margin:1rem 0}
.ak-models td:first-child{color:#555}
</style>
"""


def _attr(value: float) -> str:
    return "nan" if not math.isfinite(value) else f"{value:.6g}"


def _cell(side: str, unit: str, index: int, score: float, scale: float, signed: bool) -> str:
    return (
        f'<span class="ak-tok ak-{side}" data-index="{index}" data-score="{score:.6g}" title="{side} {esc(unit)}: '
        f'{score:+.6g}" style="background:{color(score, scale, signed=signed)};color:{text_color(score, scale, signed=signed)}">'
        f"{esc(unit)}</span>"
    )


def _grid(
    units: Sequence[str], teacher: np.ndarray, student: np.ndarray, signed: bool, scales: tuple[float, float]
) -> str:
    """Teacher over student, one column per unit; the columns wrap to the width of the page."""
    columns = "".join(
        f'<div class="ak-unit">{_cell("teacher", u, i, float(t), scales[0], signed)}'
        f"{_cell('student', u, i, float(s), scales[1], signed)}</div>"
        for i, (u, t, s) in enumerate(zip(units, teacher, student))
    )
    return (
        f'<div class="ak-grid"><div class="ak-rowlabels"><span>teacher</span><span>student</span></div>{columns}</div>'
    )


def example_html(comparison: Comparison, index: int, *, shared_scale: bool = False) -> str:
    """One example: predictions, aligned heatmaps, scores and the most different units.

    Each row is coloured on its own scale (its max |score|) unless ``shared_scale``; when one
    map is far weaker than the other, the page says so next to it.
    """
    c = comparison
    scores = c.agreement
    data = " ".join(f'data-{name.replace("_", "")}="{_attr(value)}"' for name, value in scores.items())
    disagreement = 1 - scores.get("spearman", math.nan) if scores else math.nan
    same = "same prediction" if c.same_prediction else "<b>predictions differ</b>"
    score_text = " &middot; ".join(f"{esc(name)} {value:.3f}" for name, value in scores.items())
    text = esc(c.teacher.text) + (f" <b>||</b> {esc(c.teacher.pair)}" if c.teacher.pair is not None else "")
    diffs = ", ".join(f"<code>{esc(u)}</code> {d:+.2f}" for u, d in c.most_different(3))
    signed = is_signed(c.teacher_scores, c.teacher.options) or is_signed(c.student_scores, c.student.options)
    own = (scale_of(c.teacher_scores), scale_of(c.student_scores))
    scales = (max(own), max(own)) if shared_scale else own
    how = "both rows on one scale" if shared_scale else "each row scaled to its own max |score|"
    scale_note = legend_html(1.0, signed=signed, note=f"{how} (teacher {own[0]:.3g}, student {own[1]:.3g})")
    weak = ""
    if not shared_scale and min(own) > 0 and max(own) / min(own) >= 10:
        weaker = "teacher" if own[0] < own[1] else "student"
        weak = (
            f'<div class="ak-warn">the {weaker}\'s map is {max(own) / min(own):.0f}x weaker than the other: its colours '
            "are stretched to its own max (--shared-scale draws both on one scale)</div>"
        )
    return (
        f'<section class="ak-record ak-example" data-order="{index}" data-disagreement="{_attr(-disagreement)}" {data}>'
        f'<h2>example {index}</h2><div class="ak-meta">{text}</div>'
        f'<div class="ak-meta">teacher {prediction_html(c.teacher)}</div>'
        f'<div class="ak-meta">student {prediction_html(c.student)} &middot; {same}</div>'
        f'<div class="ak-meta">explaining <b>{esc(c.teacher.views[0])}</b> for both &middot; aligned by {esc(c.aligned_by)}'
        f" &middot; {score_text}</div>"
        f"{_grid(c.units, c.teacher_scores, c.student_scores, signed, scales)}"
        f'{scale_note}{weak}<div class="ak-diff">differ most (teacher - student, each scaled to max 1): {diffs}</div></section>'
    )


def summary_html(comparisons: Sequence[Comparison]) -> str:
    """Summary table: number of examples, prediction agreement, each score's mean, std and count."""
    n = len(comparisons)
    same = sum(c.same_prediction for c in comparisons)
    rows = [
        f"<tr><td>examples</td><td colspan=4>{n}</td></tr>",
        f"<tr><td>same prediction</td><td colspan=4>{same} ({100 * same / max(n, 1):.1f}%)</td></tr>",
        "<tr><th>score</th><th>mean</th><th>std</th><th>n</th><th>undefined</th></tr>",
    ]
    for name, stats in summarize([c.agreement for c in comparisons]).items():
        rows.append(
            f"<tr><td>{esc(name)}</td><td>{stats['mean']:.3f}</td><td>{stats['std']:.3f}</td>"
            f"<td>{stats['n']}</td><td>{stats['undefined']}</td></tr>"
        )
    return f'<table class="ak-table ak-summary">{"".join(rows)}</table>'


def models_html(models: tuple[str, str] | None, records: Sequence[Attribution]) -> str:
    """Which checkpoints were compared, and with which method and settings."""
    rows = []
    if models is not None:
        rows += [
            f"<tr><td>teacher</td><td><code>{esc(models[0])}</code></td></tr>",
            f"<tr><td>student</td><td><code>{esc(models[1])}</code></td></tr>",
        ]
    for summary in dict.fromkeys(r.method_summary() for r in records):
        rows.append(f"<tr><td>method</td><td>{esc(summary)}</td></tr>")
    return f'<table class="ak-table ak-models">{"".join(rows)}</table>' if rows else ""


def plotly_js_mode(plotly_js: str) -> bool | str:
    """``include_plotlyjs`` for plotly from our option: ``inline`` (the bundle in the page), ``cdn``, or the path/URL
    of a ``.js`` file the page loads (e.g. one ``plotly.min.js`` shared by several reports).

    Raises:
        OptionError: anything else.
    """
    if plotly_js == "inline":
        return True
    if plotly_js == "cdn" or plotly_js.endswith(".js"):
        return plotly_js
    raise OptionError(f"--plotly-js must be inline, cdn or the path of a .js file; got {plotly_js!r}")


def render_comparison(
    comparisons: Sequence[Comparison],
    *,
    title: str = "teacher vs student",
    full_page: bool = True,
    figure: bool = True,
    plotly_js: str = "inline",
    shared_scale: bool = False,
    models: tuple[str, str] | None = None,
) -> str:
    """The case-study report for a list of comparisons (see :func:`attribkit.compare`).

    Args:
        comparisons: From :func:`attribkit.compare` or :func:`attribkit.compare_records`.
        title: Page title.
        full_page: A complete document, or a fragment for notebooks.
        figure: Embed the plotly histogram of agreement.
        plotly_js: Where the figure's plotly.js comes from: ``inline`` (~4.8 MB in the page, works offline),
            ``cdn``, or the path/URL of a ``.js`` file, relative to the page (reports sharing one copy).
        shared_scale: Colour teacher and student on one scale (default: each on its own).
        models: The teacher's and the student's checkpoint names, shown at the top.

    Returns:
        HTML; standalone (no external resources) unless ``plotly_js`` points elsewhere.
    """
    include = plotly_js_mode(plotly_js)
    items = list(comparisons)
    keys = list(items[0].agreement) if items and items[0].agreement else []
    options = "".join(f'<option value="{k.replace("_", "")}">{esc(k)} (lowest first)</option>' for k in keys)
    controls = (
        '<div class="ak-controls"><label>sort examples: <select id="ak-sort"><option value="order">input order'
        f'</option><option value="disagreement">disagreement (most first)</option>{options}</select></label></div>'
    )
    plot = ""
    if figure and items:
        from attribkit.render.figures import agreement_histogram

        fig = agreement_histogram({k: [c.agreement.get(k, math.nan) for c in items] for k in keys})
        plot = f'<div class="ak-figure">{fig.to_html(include_plotlyjs=include, full_html=False)}</div>'
    body = "".join(example_html(c, i, shared_scale=shared_scale) for i, c in enumerate(items))
    records = [r for c in items for r in (c.teacher, c.student)]
    content = (
        f"<h1>{esc(title)}</h1>{models_html(models, records)}{summary_html(items)}{plot}{controls}"
        f'<div id="ak-examples">{body}</div>{options_footer(records)}{_SORT_SCRIPT}'
    )
    if not full_page:
        return f'<div class="ak-root">{_EXTRA_STYLE}{content}</div>'
    return page(title, content, head=_EXTRA_STYLE)

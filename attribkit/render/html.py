"""Standalone HTML heatmaps of attribution records (no network, inline CSS, every token escaped).

:func:`render_html` gives a full page (or a fragment for notebooks); :func:`save_html` writes it
atomically. Each token is one ``<span class="ak-tok">`` whose ``title`` and ``data-score`` hold
the exact score, so hovering shows the value.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attribkit.render.colors import color, gradient_css, is_signed, scale_of, text_color

if TYPE_CHECKING:  # pragma: no cover - the renderer never imports the record type back at run time
    from attribkit.record import Attribution

STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:1.5rem;color:#111;max-width:70rem}
h1{font-size:1.3rem}h2{font-size:1.05rem;margin:.2rem 0}
.ak-record{border:1px solid #ddd;border-radius:6px;padding:.8rem 1rem;margin:1rem 0}
.ak-meta{font-size:.9rem;color:#333;margin:.2rem 0 .5rem}
.ak-tokens{line-height:2.1;font-size:1rem;unicode-bidi:isolate}
.ak-tok{padding:.15rem .2rem;border-radius:3px;white-space:pre-wrap;unicode-bidi:isolate;cursor:default}
.ak-tok.ak-special{font-size:.75rem;color:#666;border:1px dashed #bbb}
.ak-sep{display:block;height:.3rem}
.ak-legend{display:flex;align-items:center;gap:.5rem;font-size:.8rem;color:#444;margin:.4rem 0}
.ak-bar{width:12rem;height:.7rem;border:1px solid #ccc}
.ak-top{font-size:.85rem;margin:.3rem 0}
table.ak-table{border-collapse:collapse;font-size:.85rem}
table.ak-table td,table.ak-table th{border:1px solid #ddd;padding:.2rem .5rem;text-align:left}
footer{font-size:.75rem;color:#666;margin-top:2rem;border-top:1px solid #eee;padding-top:.5rem}
code{white-space:pre-wrap;word-break:break-all}
"""


def esc(value: Any) -> str:
    """HTML-escape any value (quotes included)."""
    return html.escape(str(value), quote=True)


def token_labels(record: Attribution) -> list[str]:
    """What to show for each token: its exact source text (``##`` marks gone), or the special token."""
    labels = []
    for token, (start, end), segment in zip(record.tokens, record.offsets, record.segments):
        source = record.text if segment == 0 else (record.pair or "")
        labels.append(source[start:end] if segment >= 0 and end > start else token)
    return labels


def _gap_before(record: Attribution, index: int) -> bool:
    """True when the source text has whitespace between this token and the previous one."""
    if index == 0 or record.segments[index] < 0 or record.segments[index - 1] != record.segments[index]:
        return index > 0
    return record.offsets[index][0] > record.offsets[index - 1][1]


def tokens_html(
    record: Attribution, scores: Sequence[float], *, scale: float | None = None, signed: bool | None = None
) -> str:
    """The coloured token spans of one map (one ``span.ak-tok`` per token)."""
    signed = is_signed(scores, record.options) if signed is None else signed
    scale = scale_of(scores) if scale is None else scale
    parts = []
    labels = token_labels(record)
    for i, (label, score) in enumerate(zip(labels, scores)):
        if i > 0 and record.segments[i - 1] == 0 and record.segments[i] != 0 and 1 in record.segments[i:]:
            parts.append('<span class="ak-sep"></span>')
        if _gap_before(record, i):
            parts.append(" ")
        special = " ak-special" if record.segments[i] < 0 else ""
        style = f"background:{color(float(score), scale, signed=signed)};color:{text_color(float(score), scale, signed=signed)}"
        parts.append(
            f'<span class="ak-tok{special}" data-index="{i}" data-score="{float(score):.6g}" '
            f'title="{esc(record.tokens[i])}: {float(score):+.6g}" style="{style}">{esc(label)}</span>'
        )
    return "".join(parts)


def legend_html(scale: float, *, signed: bool, note: str = "") -> str:
    """Colour bar with its end values, and an optional note after it (escaped)."""
    low = f"-{scale:.3g} opposes" if signed else "0"
    high = f"+{scale:.3g} supports" if signed else f"{scale:.3g}"
    return (
        f'<div class="ak-legend"><span>{esc(low)}</span><span class="ak-bar" style="background:{gradient_css(signed=signed)}">'
        f"</span><span>{esc(high)}</span>" + (f"<span>{esc(note)}</span>" if note else "") + "</div>"
    )


def _top_html(record: Attribution, scores: Sequence[float], top: int) -> str:
    from attribkit.reduce import top_tokens

    labels = token_labels(record)
    specials = [seg < 0 for seg in record.segments]
    items = [
        f"<code>{esc(labels[i])}</code> {s:+.4f}" for i, _, s in top_tokens(scores, record.tokens, top, skip=specials)
    ]
    return f'<div class="ak-top">top tokens: {", ".join(items)}</div>'


def prediction_html(record: Attribution) -> str:
    """Prediction, class probabilities and gold label as one line."""
    probs = ", ".join(f"{esc(label)} {p:.3f}" for label, p in zip(record.labels, record.probs))
    gold = f" &middot; gold: <b>{esc(record.gold)}</b>" if record.gold is not None else ""
    warn = " &middot; <b>truncated</b>: tokens past the maximum length were dropped" if record.truncated else ""
    return f"prediction: <b>{esc(record.prediction)}</b> ({probs}){gold}{warn}"


def record_html(
    record: Attribution, *, views: Iterable[int | str] | None = None, top: int = 5, index: int | None = None
) -> str:
    """One record as an HTML ``<section>``: prediction, one heatmap per view, legend, top tokens."""
    chosen = range(len(record.views)) if views is None else views
    blocks = []
    for view in chosen:
        scores = [float(s) for s in record.view(view)]
        name = record.views[view] if isinstance(view, int) else view
        signed, scale = is_signed(scores, record.options), scale_of(scores)
        delta = ""
        if record.delta is not None:
            delta = f" &middot; completeness delta {float(record.delta[record.views.index(name)]):+.2e}"
        blocks.append(
            f'<div class="ak-view" data-view="{esc(name)}"><div class="ak-meta">explaining <b>{esc(name)}</b>{delta}</div>'
            f'<div class="ak-tokens">{tokens_html(record, scores, scale=scale, signed=signed)}</div>'
            f"{legend_html(scale, signed=signed)}{_top_html(record, scores, top)}</div>"
        )
    title = f"<h2>example {index}</h2>" if index is not None else ""
    return f'<section class="ak-record">{title}<div class="ak-meta">{prediction_html(record)}</div>{"".join(blocks)}</section>'


def options_footer(records: Sequence[Attribution], extra: dict[str, Any] | None = None) -> str:
    """The options that produced the records (method and every reduction option), as a footer."""
    seen: list[str] = []
    for record in records:
        text = json.dumps({"method": record.method, **record.options, **(extra or {})}, sort_keys=True, default=str)
        if text not in seen:
            seen.append(text)
    body = "<br>".join(f"<code>{esc(s)}</code>" for s in seen)
    return f"<footer>produced by attribkit with: {body}</footer>"


def page(title: str, body: str, *, head: str = "") -> str:
    """A complete standalone HTML document."""
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style>{head}</head>'
        f"<body>{body}</body></html>\n"
    )


def render_html(
    records: Attribution | Sequence[Attribution],
    *,
    views: Iterable[int | str] | None = None,
    title: str = "attribkit explanations",
    top: int = 5,
    full_page: bool = True,
) -> str:
    """Heatmaps of one or more records as standalone HTML.

    Args:
        records: One record or a list.
        views: Which views to draw (names or indices); all by default.
        title: Page title.
        top: How many top tokens to list under each map.
        full_page: A complete document (True) or a fragment with its own ``<style>`` (notebooks).

    Returns:
        The HTML text. Opens offline: no scripts, no external resources.
    """
    items: list[Attribution] = (
        [records]  # type: ignore[list-item]
        if hasattr(records, "tokens") and hasattr(records, "scores")
        else list(records)
    )  # one record, or many
    numbered = len(items) > 1
    body = "".join(record_html(r, views=views, top=top, index=i if numbered else None) for i, r in enumerate(items))
    footer = options_footer(items)
    methods = list(dict.fromkeys(r.method_summary() for r in items))
    models = list(dict.fromkeys(r.model for r in items if r.model))
    meta = [f'<p class="ak-meta ak-model">model: {esc(m)}</p>' for m in models]
    meta += [f'<p class="ak-meta ak-method">method: {esc(m)}</p>' for m in methods]
    body = "".join(meta) + body
    if not full_page:
        return f'<div class="ak-root"><style>{STYLE.replace("body{", ".ak-root{")}</style>{body}{footer}</div>'
    return page(title, f"<h1>{esc(title)}</h1>{body}{footer}")


def save_html(text: str, path: str | Path) -> Path:
    """Write HTML atomically (the file appears only once complete)."""
    from attribkit.files import atomic_write_text

    return atomic_write_text(path, text)

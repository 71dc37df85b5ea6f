"""HTML pages, plotly figures and notebook display of records and comparisons."""

from __future__ import annotations

import html
import re

import numpy as np
import pytest

import attribkit as ak
from attribkit.render.colors import color

NASTY = 'good <script>alert("x")</script> & "quoted" \u200fshalom\u200f \'fun\''


@pytest.fixture()
def records(tiny):
    clf = tiny("bert", 3)
    return ak.explain(clf, [NASTY, ("a cat sat", "on the mat")], method="gradient_x_input", targets="all")


def _spans(page: str) -> list[str]:
    return re.findall(r'<span class="ak-tok[^"]*"[^>]*>(.*?)</span>', page)


def test_every_token_is_one_escaped_span_with_its_exact_value(records):
    page = ak.render_html(records)
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page  # no script at all on a plain page
    assert "http://" not in page and "https://" not in page  # nothing to fetch
    spans = _spans(page)
    assert len(spans) == sum(len(r.tokens) * len(r.views) for r in records)
    first = records[0]
    shown = [html.unescape(s) for s in spans[: len(first.tokens)]]
    assert "<" in shown and "&" in shown and '"' in shown and "shalom" in "".join(shown)  # BERT drops the RLM marks
    assert "&lt;" in page and "&amp;" in page and "&quot;" in page
    for value in first.scores[0]:
        assert f'data-score="{float(value):.6g}"' in page
    assert "gradient_x_input" in page.split("<footer>")[1]  # options in the footer


def test_colours_follow_the_sign_and_scale():
    assert color(0.0, 1.0, signed=True) == "rgb(255,255,255)"
    assert color(1.0, 1.0, signed=True) == "rgb(214,39,40)" and color(-1.0, 1.0, signed=True) == "rgb(31,119,180)"
    assert color(2.0, 1.0, signed=True) == color(1.0, 1.0, signed=True)  # saturates
    assert color(1.0, 1.0, signed=False) == "rgb(165,0,38)" and color(0.0, 0.0, signed=False) == "rgb(255,255,255)"


def test_fragment_for_notebooks(records):
    fragment = records[0]._repr_html_()
    assert not fragment.startswith("<!DOCTYPE") and fragment.startswith('<div class="ak-root">')
    assert len(_spans(fragment)) == len(records[0].tokens) * 3


def test_plot_is_a_views_by_tokens_heatmap(records):
    figure = ak.plot(records[0])
    heat = figure.data[0]
    np.testing.assert_allclose(np.asarray(heat.z, dtype=float), records[0].scores, rtol=1e-6)
    assert list(heat.y) == list(records[0].views)
    assert list(figure.layout.xaxis.ticktext)[1] == "good"


def test_comparison_page_shows_both_models(records, tmp_path):
    comparison = ak.compare_records(records[0], records[0])
    page = ak.render_comparison([comparison, comparison], figure=False)
    assert page.count('class="ak-record ak-example"') == 2
    units = len(comparison.units)
    assert page.count('<div class="ak-unit">') == 2 * units
    assert page.count('class="ak-tok ak-teacher"') == 2 * units == page.count('class="ak-tok ak-student"')
    assert "<script>alert" not in page and 'data-spearman="1"' in page
    assert "\u200fshalom\u200f" in page  # the text line keeps right-to-left marks, literally
    fig = ak.plot_comparison(comparison)
    assert list(fig.data[0].y) == ["teacher", "student"]
    hist = ak.agreement_histogram({"spearman": [0.5, float("nan"), 1.0]})
    assert list(hist.data[0].x) == [0.5, 1.0]
    assert comparison._repr_html_().startswith('<div class="ak-root">')
    path = ak.save_html(page, tmp_path / "c.html")
    assert path.read_text(encoding="utf-8") == page and not (tmp_path / "c.html.partial").exists()


def test_scale_follows_the_options_not_the_data(records):
    import dataclasses

    positive = dataclasses.replace(records[0], scores=np.abs(records[0].scores))  # options still say sign=signed
    page = ak.render_html(positive, views=[0])
    assert "rgb(214,39,40)" in page and "rgb(165,0,38)" not in page  # diverging red at the max, not sequential
    unsigned = dataclasses.replace(positive, options={**positive.options, "sign": "absolute"})
    assert "rgb(165,0,38)" in ak.render_html(unsigned, views=[0])
    comparison = ak.compare_records(positive, records[0])
    page = ak.render_comparison([comparison], figure=False)
    assert "each row scaled to its own max" in page and "rgb(165,0,38)" not in page


def test_comparison_figure_loads_plotly_from_where_it_is_told(records):
    comparison = ak.compare_records(records[0], records[0])
    inline = ak.render_comparison([comparison])
    shared = ak.render_comparison([comparison], plotly_js="plotly.min.js")
    assert len(inline) > 3_000_000 and 'src="plotly.min.js"' not in inline  # the bundle itself
    assert len(shared) < 100_000 and 'src="plotly.min.js"' in shared
    assert 'src="https://cdn.plot.ly/' in ak.render_comparison([comparison], plotly_js="cdn")
    with pytest.raises(ak.OptionError, match="--plotly-js"):
        ak.render_comparison([comparison], plotly_js="nearby")

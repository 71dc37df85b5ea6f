"""The HTML reports in a real headless Chromium: no console errors, no network, one element per token."""

from __future__ import annotations

import attribkit as ak
from browser import open_page
from test_render import NASTY


def test_explain_page_in_chromium(tiny, tmp_path):
    clf = tiny("bert", 3)
    records = ak.explain(clf, [NASTY, ("a cat sat", "on the mat")], method="gradient_x_input", targets="all")
    path = ak.save_html(ak.render_html(records), tmp_path / "explain.html")
    report = open_page(path, tmp_path / "explain.png", selectors=(".ak-tok", ".ak-record", "script"),
                       actions=lambda page, r: r.texts.__setitem__("title", [page.locator(".ak-tok").nth(1).get_attribute("title")]))
    assert report.errors == [] and report.external_requests == []
    assert report.counts[".ak-tok"] == sum(len(r.tokens) * len(r.views) for r in records)
    assert report.counts[".ak-record"] == 2 and report.counts["script"] == 0  # the injected <script> stayed text
    shown = "".join(report.texts[".ak-tok"][: len(records[0].tokens)])
    assert '<script>alert("x")</script>' in shown and "&" in shown
    assert report.texts["title"][0] == f"good: {float(records[0].scores[0][1]):+.6g}"  # exact value on hover
    assert (tmp_path / "explain.png").stat().st_size > 1000


def test_comparison_report_in_chromium_sorts_by_disagreement(checkpoint_dir, tmp_path):
    teacher = ak.load_classifier(checkpoint_dir("bert", 2), device="cpu")
    student = ak.load_classifier(checkpoint_dir("bert", 2, seed=1, layers=1), device="cpu")
    texts = ["the movie was good", "awful plot", "i love this film", "boring and bad", NASTY]
    comparisons = ak.compare(teacher, student, texts, method="gradient_x_input")
    path = ak.save_html(ak.render_comparison(comparisons), tmp_path / "compare.html")

    def sort(page, report):
        page.select_option("#ak-sort", "spearman")
        report.texts["sorted"] = page.locator(".ak-example").evaluate_all("els => els.map(e => e.dataset.order)")

    report = open_page(path, tmp_path / "compare.png", actions=sort,
                       selectors=(".ak-example", ".ak-row-teacher .ak-tok", ".ak-row-student .ak-tok", ".js-plotly-plot", ".ak-summary"))
    assert report.errors == [] and report.external_requests == []
    assert report.counts[".ak-example"] == 5 and report.counts[".js-plotly-plot"] == 1 and report.counts[".ak-summary"] == 1
    units = sum(len(c.units) for c in comparisons)
    assert report.counts[".ak-row-teacher .ak-tok"] == units == report.counts[".ak-row-student .ak-tok"]
    expected = sorted(range(5), key=lambda i: (comparisons[i].agreement["spearman"], i))
    assert [int(i) for i in report.texts["sorted"]] == expected
    assert (tmp_path / "compare.png").stat().st_size > 1000

"""The HTML reports in a real headless Chromium: no console errors, no network, one element per token."""

from __future__ import annotations

from browser import open_page
from test_render import NASTY

import attribkit as ak


def test_explain_page_in_chromium(tiny, tmp_path):
    clf = tiny("bert", 3)
    records = ak.explain(clf, [NASTY, ("a cat sat", "on the mat")], method="gradient_x_input", targets="all")
    path = ak.save_html(ak.render_html(records), tmp_path / "explain.html")
    report = open_page(
        path,
        tmp_path / "explain.png",
        selectors=(".ak-tok", ".ak-record", "script"),
        actions=lambda page, r: r.texts.__setitem__("title", [page.locator(".ak-tok").nth(1).get_attribute("title")]),
    )
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

    report = open_page(
        path,
        tmp_path / "compare.png",
        actions=sort,
        selectors=(".ak-example", ".ak-tok.ak-teacher", ".ak-tok.ak-student", ".js-plotly-plot", ".ak-summary"),
    )
    assert report.errors == [] and report.external_requests == []
    assert (
        report.counts[".ak-example"] == 5
        and report.counts[".js-plotly-plot"] == 1
        and report.counts[".ak-summary"] == 1
    )
    units = sum(len(c.units) for c in comparisons)
    assert report.counts[".ak-tok.ak-teacher"] == units == report.counts[".ak-tok.ak-student"]
    expected = sorted(range(5), key=lambda i: (comparisons[i].agreement["spearman"], i))
    assert [int(i) for i in report.texts["sorted"]] == expected
    assert (tmp_path / "compare.png").stat().st_size > 1000


LONG = (
    "the first half of this film is a slow , careful and often beautiful portrait of a family that slowly "
    "comes apart , and the second half , sadly , throws all of that away for a string of loud set pieces"
)


def overflow(page) -> int:
    """How far the page is wider than the window (0 = nothing sticks out)."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def test_reports_fit_the_window_at_1400_and_800_pixels(checkpoint_dir, tmp_path):
    """Long token rows wrap inside their card; the plot follows the window's width (screenshots kept in tmp_path)."""
    teacher = ak.load_classifier(checkpoint_dir("bert", 2), device="cpu")
    student = ak.load_classifier(checkpoint_dir("bert", 2, seed=1, layers=1), device="cpu")
    comparisons = ak.compare(teacher, student, [LONG, LONG + " , again and again"], method="gradient_x_input")
    record = ak.explain(teacher, LONG, method="gradient_x_input")[0]
    assert len(record.tokens) >= 45  # the case: 45 tokens drew a 1476 px figure in a 1000 px window
    pages = {
        "compare": ak.save_html(
            ak.render_comparison(comparisons, models=("teacher-ckpt", "student-ckpt")), tmp_path / "compare.html"
        ),
        "explain": ak.save_html(ak.render_html([record]), tmp_path / "explain.html"),
    }
    from attribkit.render.figures import save_figure

    save_figure(ak.plot(record), str(tmp_path / "plot.html"))
    pages["plot"] = tmp_path / "plot.html"
    for width in (1400, 800):
        for name, path in pages.items():

            def measure(page, report):
                report.texts["overflow"] = [str(overflow(page))]
                if name == "plot":
                    box = page.locator(".nsewdrag").first.bounding_box()
                    report.texts["plot_height"] = [str(box["height"])]

            report = open_page(
                path, tmp_path / f"{name}-{width}.png", selectors=(".ak-tok",), actions=measure, viewport=(width, 1000)
            )
            assert report.errors == [], (name, width)
            assert int(report.texts["overflow"][0]) <= 0, (name, width)
            if name == "plot":
                assert float(report.texts["plot_height"][0]) >= 60  # the heatmap row is visible, not ~8 px
    page = pages["compare"].read_text()
    assert "teacher-ckpt" in page and "student-ckpt" in page and "method: gradient_x_input" not in page
    assert "gradient_x_input: layer word_embeddings, target logit" in page

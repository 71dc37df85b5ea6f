"""Which explainer should I use? Every registered method on SST-2 dev sentences, with intervals and baselines.

The same cells as ``attribkit leaderboard`` (:mod:`attribkit.leaderboard`, scored by :mod:`attribkit.leaderboard_cells`): per (method, setting),
seconds per sentence through ``ak.explain`` and per-sentence ERASER comprehensiveness and
sufficiency (AOPC over 1-50 %); a random-map row and a reversed-map row; 95 % bootstrap intervals
over sentences and paired intervals against the best method and the random maps. Each model's run
lives in ``bench/results/leaderboard-v2/<name>/`` (one JSON per cell, written as it finishes, so a
killed run resumes); ``report`` writes docs/leaderboard.md and its figures from them. The tables of
the first leaderboard (no intervals; ``bench/results/leaderboard/``) stay below on the page.

Usage:
    python bench/explainer_leaderboard.py run --data-dir GLUE_DIR [--model CKPT --name NAME] [--n 100]
    python bench/explainer_leaderboard.py report
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from provenance import library_versions, portable

import attribkit as ak
from attribkit.leaderboard import Leaderboard, recommendation, summarize
from attribkit.render.leaderboard import figure, markdown_table

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "leaderboard-v2"
DOC = ROOT / "docs" / "leaderboard.md"
FIGURES = ROOT / "docs" / "figures"
EARLIER = "<!-- leaderboard: earlier runs -->"


def read_sentences(data_dir: Path | None, n: int) -> list[str]:
    path = None if data_dir is None else data_dir / "SST-2" / "dev.tsv"
    if path is None or not path.is_file():
        sys.exit("error: this bench needs --data-dir DIR with DIR/SST-2/dev.tsv (the GLUE layout)")
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    return [line.split("\t")[0] for line in lines[:n]]


def default_name(clf: ak.Classifier) -> str:
    """The shipped model's table name, with its shape: a new default model gets a new table, never a mixed one."""
    config = clf.model.config
    return f"shipped-default-{config.num_hidden_layers}x{config.hidden_size}"


def run(args: argparse.Namespace) -> None:
    texts = read_sentences(args.data_dir, args.n)
    clf = ak.load_classifier(args.model or ak.default_model_path(), device=args.device)
    name = args.name or (default_name(clf) if args.model is None else Path(args.model).name)
    model = "attribkit's shipped default model" if args.model is None else str(portable(args.model, args.data_dir))
    folder = RESULTS / name
    try:
        board = Leaderboard(folder, model_name=model, texts=texts, resume=True)
    except ak.AttribkitError as exc:
        sys.exit(f"error: {exc}")
    print(f"{name}: {len(board.pending())} cell(s) to score", flush=True)

    def finished(key: str, cell: dict) -> None:
        provenance = folder / "provenance.json"  # beside run.json, once the run has claimed its folder
        if not provenance.is_file():
            about = {"sentences": f"GLUE_DIR/SST-2/dev.tsv, first {len(texts)}", "threads": torch.get_num_threads()}
            provenance.write_text(json.dumps({**about, "versions": library_versions()}, indent=1))
        seconds = cell.get("seconds_per_sentence")
        mean = sum(cell["comprehensiveness"]) / len(cell["comprehensiveness"])
        print(f"  {key}: comp {mean:.3f}" + (f", {seconds:.3f} s/sentence" if seconds else ""), flush=True)

    board.run(clf, on_cell=finished)


def report() -> None:
    lines = [
        "# Which explainer should I use?",
        "",
        "Run it on your own model: `attribkit leaderboard --model CKPT --input sentences.txt --out DIR` (the same",
        "cells as below, resumable with `--resume`; DIR/report.html holds the table, the recommendation and the",
        "figure). This page is `python bench/explainer_leaderboard.py run --data-dir GLUE_DIR [--model CKPT --name",
        "NAME]` and `report`, on SST-2 dev sentences.",
        "",
        "Columns: seconds per sentence through `ak.explain` (2 CPU threads; the runs of 2026-12-04 shared the",
        "machine with other jobs, so compare seconds within a table; docs/benchmarks.md has idle timings); ERASER comprehensiveness AOPC (higher",
        "is better) and sufficiency AOPC (lower is better) over 1-50 % of the tokens, each with a 95 % percentile",
        "bootstrap interval over sentences; *vs best* and *vs random*: paired intervals of the difference in",
        "comprehensiveness against the best method and against random maps (the same resampled sentences).",
        "Baselines: *random*, uniformly random maps (10 per sentence, averaged); *reversed*, the default IG map",
        "negated, so its least important tokens go first. A method whose *vs best* interval includes 0 is tied",
        "with the best on these sentences.",
        "",
    ]
    for folder in sorted(p for p in RESULTS.iterdir() if p.is_dir()) if RESULTS.is_dir() else []:
        meta = json.loads((folder / "run.json").read_text())
        cells = [json.loads(p.read_text()) for p in sorted((folder / "cells").glob("*.json"))]
        if not cells:
            continue
        rows = summarize(cells, seed=meta["seed"])
        done = f"{len(cells)} of {len(meta['settings']) + 2} cells" if len(cells) < len(meta["settings"]) + 2 else ""
        versions = json.loads((folder / "provenance.json").read_text())["versions"]
        lines += [
            f"## {folder.name} ({meta['sentences']} sentences{'; ' + done if done else ''})",
            "",
            f"Model: {meta['model']}. Versions: "
            + ", ".join(f"{k} {v}" for k, v in versions.items() if k in ("torch", "transformers", "captum"))
            + ".",
            "",
            *markdown_table(rows),
            "",
            "**What the intervals support:** " + recommendation(rows),
            "",
        ]
        FIGURES.mkdir(parents=True, exist_ok=True)
        fig = figure(rows, f"{folder.name}: comprehensiveness with 95 % intervals")
        fig.write_html(FIGURES / f"leaderboard-v2-{folder.name}.html", include_plotlyjs="directory")
        lines += [
            f'<iframe src="../figures/leaderboard-v2-{folder.name}.html" width="100%" '
            f'height="{max(300, 28 * len(rows) + 140)}" frameborder="0"></iframe>',
            "",
        ]
    text = DOC.read_text() if DOC.is_file() else ""
    earlier = text.split(EARLIER, 1)[1] if EARLIER in text else "\n"
    DOC.write_text("\n".join(lines) + "\n" + EARLIER + earlier)
    print(f"wrote {DOC}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["run", "report"])
    parser.add_argument("--data-dir", type=Path, default=None, help="GLUE folder with SST-2/dev.tsv.")
    parser.add_argument("--model", default=None, help="Classifier checkpoint (default: the shipped model).")
    parser.add_argument("--name", default=None, help="Name of the model's results folder.")
    parser.add_argument("--n", type=int, default=100, help="SST-2 dev sentences.")
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    if args.action == "report":
        report()
    else:
        run(args)


if __name__ == "__main__":
    main()

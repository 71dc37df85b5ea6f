"""Which explainer should I use? Every registered method, at its default and its cheap setting, scored side by side.

For each model and (method, setting): seconds per sentence through ``ak.explain``; ERASER
comprehensiveness and sufficiency (AOPC over 1-50 %); soft comprehensiveness and sufficiency (Zhao
& Aletras, 2023); the model-randomisation sanity check (median Spearman with the maps of a
re-initialised model: low is good); and the Spearman agreement between methods. Each cell is a JSON
under ``bench/results/leaderboard/<model>/`` written as soon as it is computed, so a killed run
continues where it stopped; ``report`` writes docs/leaderboard.md and its figures from the JSONs.

Usage:
    python bench/explainer_leaderboard.py run --data-dir GLUE_DIR [--model CKPT --name NAME] [--n 200]
    python bench/explainer_leaderboard.py report
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

import attribkit as ak
from attribkit.metrics import spearman

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "leaderboard"
DOC = ROOT / "docs" / "leaderboard.md"
FIGURES = ROOT / "docs" / "figures"

# (method, setting name, options): the default a user gets, and the cheap setting a user would pick for speed
SETTINGS: list[tuple[str, str, dict[str, Any]]] = [
    ("integrated_gradients", "default", {}),
    ("integrated_gradients", "cheap", {"steps": 8}),
    ("fast_ig", "default", {}),
    ("fast_ig", "cheap", {"steps": 1}),
    ("gradient_x_input", "default", {}),
    ("saliency", "default", {}),
    ("gradient_shap", "default", {}),
    ("gradient_shap", "cheap", {"n_samples": 5}),
    ("deeplift", "default", {}),
    ("attnlrp", "default", {}),
    ("occlusion", "default", {}),
    ("feature_ablation", "default", {}),
    ("shapley_sampling", "default", {}),
    ("shapley_sampling", "cheap", {"n_samples": 5}),
    ("kernel_shap", "default", {}),
    ("kernel_shap", "cheap", {"n_samples": 50}),
    ("lime", "default", {}),
    ("lime", "cheap", {"n_samples": 50}),
]
SANITY_TEXTS = 50  # the randomisation check re-explains this many sentences with a re-initialised model


def read_sentences(data_dir: Path | None, n: int) -> list[str]:
    path = None if data_dir is None else data_dir / "SST-2" / "dev.tsv"
    if path is None or not path.is_file():
        sys.exit("error: this bench needs --data-dir DIR with DIR/SST-2/dev.tsv (the GLUE layout)")
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    return [line.split("\t")[0] for line in lines[:n]]


def cell_path(model_name: str, method: str, setting: str) -> Path:
    return RESULTS / model_name / f"{method}-{setting}.json"


def run_cell(clf: ak.Classifier, texts: list[str], method: str, options: dict[str, Any]) -> dict[str, Any]:
    """Explain, time, and score one (method, setting) on ``texts``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # low step counts warn about completeness: measured here instead
        ak.explain(clf, texts[:2], method=method, **options)  # warm-up
        start = time.perf_counter()
        records = ak.explain(clf, texts, method=method, **options)
        seconds = time.perf_counter() - start
        hard = ak.faithfulness(clf, records)
        soft = ak.soft_faithfulness(clf, records, n_samples=5)
        sanity = ak.randomization_check(clf, texts[:SANITY_TEXTS], method=method, **options)
    return {
        "method": method,
        "options": records[0].options,
        "summary": records[0].method_summary(),
        "sentences": len(texts),
        "seconds_per_sentence": seconds / len(texts),
        "threads": torch.get_num_threads(),
        "aopc_comprehensiveness": statistics.fmean(s.aopc_comprehensiveness for s in hard),
        "aopc_sufficiency": statistics.fmean(s.aopc_sufficiency for s in hard),
        "soft_comprehensiveness": statistics.fmean(s.soft_comprehensiveness for s in soft),
        "soft_sufficiency": statistics.fmean(s.soft_sufficiency for s in soft),
        "randomization_spearman": sanity.median[0],
        "maps": [[float(v) for v in r.scores[0]] for r in records],
    }


def default_name(clf: ak.Classifier) -> str:
    """The shipped model's table name, with its shape: a new default model gets a new table, never a mixed one."""
    config = clf.model.config
    return f"shipped-default-{config.num_hidden_layers}x{config.hidden_size}"


def run(args: argparse.Namespace) -> None:
    texts = read_sentences(args.data_dir, args.n)
    clf = ak.load_classifier(args.model or ak.default_model_path(), device=args.device)
    name = args.name or (default_name(clf) if args.model is None else Path(args.model).name)
    for method, setting, options in SETTINGS:
        path = cell_path(name, method, setting)
        if path.is_file():
            done = json.loads(path.read_text())["sentences"]
            if done != len(texts):  # one table, one set of sentences: never mix a resumed run's settings
                sys.exit(
                    f"error: {path.parent.name} was scored on {done} sentences; rerun with --n {done} or --name NEW"
                )
            continue
        print(f"{name}: {method} ({setting}) ...", flush=True)
        result = run_cell(clf, texts, method, options)
        result.update(model=name, setting=setting)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".partial")
        tmp.write_text(json.dumps(result))
        tmp.replace(path)
        print(
            f"  {result['seconds_per_sentence']:.3f} s/sentence, comp {result['aopc_comprehensiveness']:.3f}, "
            f"suff {result['aopc_sufficiency']:.3f}, sanity {result['randomization_spearman']:.2f}",
            flush=True,
        )


def agreement(cells: list[dict[str, Any]]) -> np.ndarray:
    """Median over sentences of the Spearman between every two cells' maps (real tokens are where maps differ)."""
    n = len(cells)
    matrix = np.eye(n)
    for i in range(n):
        for j in range(i + 1, n):
            values = [spearman(a[1:-1], b[1:-1]) for a, b in zip(cells[i]["maps"], cells[j]["maps"]) if len(a) > 3]
            finite = [v for v in values if not np.isnan(v)]
            matrix[i, j] = matrix[j, i] = statistics.median(finite) if finite else float("nan")
    return matrix


def report() -> None:
    import plotly.graph_objects as go

    lines = [
        "# Which explainer should I use?",
        "",
        "`python bench/explainer_leaderboard.py run --data-dir GLUE_DIR` scores every registered method at",
        "its default and its cheap setting on SST-2 dev sentences; `report` rebuilds this page from the",
        "JSONs in `bench/results/leaderboard/`. Columns: seconds per sentence through `ak.explain` (2 CPU",
        "threads); ERASER comprehensiveness (higher is better) and sufficiency (lower is better), AOPC over",
        "1-50 % of the tokens; soft comprehensiveness and sufficiency (Zhao & Aletras 2023, both higher is",
        "better); the randomisation sanity check, the median Spearman between a map and the map of the same",
        "model with re-drawn weights (Adebayo et al. 2018: near 0 is good, near 1 means the map shows the",
        "input rather than the model).",
        "",
    ]
    for model_dir in sorted(p for p in RESULTS.iterdir() if p.is_dir()) if RESULTS.is_dir() else []:
        cells = [json.loads(p.read_text()) for p in sorted(model_dir.glob("*.json"))]
        order = {(m, s): i for i, (m, s, _) in enumerate(SETTINGS)}
        cells.sort(key=lambda c: order.get((c["method"], c["setting"]), len(order)))
        if not cells:
            continue
        lines += [
            f"## {model_dir.name} ({cells[0]['sentences']} sentences)",
            "",
            "| method | setting | s / sentence | comp. AOPC | suff. AOPC | soft comp. | soft suff. | randomisation ρ |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for c in cells:
            lines.append(
                f"| `{c['method']}` | {c['setting']}: {c['summary']} | {c['seconds_per_sentence']:.3f} | "
                f"{c['aopc_comprehensiveness']:.3f} | {c['aopc_sufficiency']:.3f} | {c['soft_comprehensiveness']:.3f} | "
                f"{c['soft_sufficiency']:.3f} | {c['randomization_spearman']:.2f} |"
            )
        labels = [f"{c['method']} ({c['setting']})" for c in cells]
        matrix = agreement(cells)
        figure = go.Figure(go.Heatmap(z=matrix, x=labels, y=labels, zmin=-1, zmax=1, colorscale="RdBu"))
        figure.update_layout(title=f"{model_dir.name}: median Spearman between methods' maps", height=700)
        FIGURES.mkdir(parents=True, exist_ok=True)
        figure.write_html(FIGURES / f"leaderboard-{model_dir.name}.html", include_plotlyjs="directory")
        lines += [
            "",
            f'<iframe src="../figures/leaderboard-{model_dir.name}.html" width="100%" height="720" '
            'frameborder="0"></iframe>',
            "",
        ]
    text = DOC.read_text() if DOC.is_file() else ""
    marker = "<!-- leaderboard: conclusions -->"
    conclusion = text.split(marker, 1)[1] if marker in text else "\n"
    DOC.write_text("\n".join(lines) + "\n" + marker + conclusion)
    print(f"wrote {DOC}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["run", "report"])
    parser.add_argument("--data-dir", type=Path, default=None, help="GLUE folder with SST-2/dev.tsv.")
    parser.add_argument("--model", default=None, help="Classifier checkpoint (default: the shipped model).")
    parser.add_argument("--name", default=None, help="Name of the model's results folder.")
    parser.add_argument("--n", type=int, default=200, help="SST-2 dev sentences.")
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    if args.action == "report":
        report()
    else:
        run(args)


if __name__ == "__main__":
    main()

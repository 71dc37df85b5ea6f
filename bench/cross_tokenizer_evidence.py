"""KD vs AD-KD into a student with *another tokenizer*, at CPU scale (docs/distillation.md).

The teacher is a fine-tuned BERT-family SST-2 classifier (WordPiece). The student is a small randomly
initialised GPT-2-shaped decoder (2 layers, hidden 128, 4 heads) over a byte-level BPE vocabulary of
8,000 tokens trained here on SST-2 *train* sentences, so teacher and student share no token ids. For each
seed one initial student is made and both rows start from it (paired seeds: same initialisation, data order
and dropout); each row is one ``attribkit distill --student-init`` command on a fixed 8,000-sentence
subset. Reported per run: final-epoch and best dev accuracy, and the attribution gap on dev — the mean
squared distance between the student's and the teacher's L2-normalised unit maps (the cross-tokenizer
AD-KD distance over all 872 dev sentences, of the saved best-on-dev student).

Usage:
    python bench/cross_tokenizer_evidence.py run --teacher TEACHER_DIR --data-dir GLUE_DIR [--seeds 1,2,3]
    python bench/cross_tokenizer_evidence.py report      # the table for docs/distillation.md

Runs resume after a kill (``--resume``); each result lands in
``bench/results/cross-tokenizer/<row>/seed<N>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "cross-tokenizer"
RUNS = ROOT / "runs" / "cross-tokenizer"
ROWS = {"kd": ("--objective", "kd"), "adkd": ("--objective", "adkd")}
TRAINING = ("--epochs", "4", "--lr", "5e-4", "--batch-size", "32", "--train-limit", "8000", "--subset-seed", "0")
STUDENT = {"n_embd": 128, "n_layer": 2, "n_head": 4, "n_positions": 128}
VOCAB = 8000


def glue_sentences(data_dir: Path, split: str) -> list[str]:
    path = data_dir / "SST-2" / f"{split}.tsv"
    if not path.is_file():
        raise SystemExit(f"error: {path} not found; --data-dir must hold SST-2/train.tsv and SST-2/dev.tsv")
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    return [line.split("\t")[0] for line in lines if line.strip()]


def tokenizer(data_dir: Path):
    """Byte-level BPE over SST-2 train sentences (cached in the runs folder)."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    folder = RUNS / "tokenizer"
    if (folder / "tokenizer.json").is_file():
        return AutoTokenizer.from_pretrained(folder)
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB,
        special_tokens=["<|endoftext|>"],
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(glue_sentences(data_dir, "train"), trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", model_max_length=128)
    fast.save_pretrained(folder)
    return fast


def initial_student(data_dir: Path, seed: int) -> Path:
    """The seed's random GPT-2-shaped student with the SST-2 BPE, shared by both rows."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    folder = RUNS / f"init-seed{seed}"
    if (folder / "config.json").is_file():
        return folder
    tok = tokenizer(data_dir)
    config = AutoConfig.for_model(
        "gpt2",
        vocab_size=len(tok),
        num_labels=2,
        id2label={0: "negative", 1: "positive"},
        label2id={"negative": 0, "positive": 1},
        pad_token_id=tok.eos_token_id,
        bos_token_id=tok.eos_token_id,
        eos_token_id=tok.eos_token_id,
        **STUDENT,
    )
    torch.manual_seed(seed)
    AutoModelForSequenceClassification.from_config(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def attribution_gap(student_dir: Path, teacher_dir: Path, data_dir: Path) -> float:
    """Mean squared distance per unit between student and teacher unit maps over SST-2 dev."""
    import torch

    import attribkit as ak
    from attribkit_distill import CrossTokenizerAttributionLoss, encode_cross_examples
    from attribkit_distill.tasks import get_task, load_examples

    student, teacher = ak.load_classifier(student_dir, device="cpu"), ak.load_classifier(teacher_dir, device="cpu")
    examples = load_examples(get_task("SST-2"), "dev", data_dir=data_dir)
    data = encode_cross_examples(student.tokenizer, teacher.tokenizer, examples, max_length=128)
    loss_fn = CrossTokenizerAttributionLoss()
    total, units = 0.0, 0
    for start in range(0, len(data), 64):
        batch = data.batch(range(start, min(start + 64, len(data))))
        out = loss_fn.compute(student.model.eval(), teacher.model.eval(), batch)
        n = int(batch["unit_mask"].sum())
        total += float(out.loss.detach()) * n
        units += n
        del out
        torch.cuda.empty_cache() if torch.cuda.is_available() else None
    return total / units


def run_one(row: str, seed: int, teacher: Path, data_dir: Path) -> dict:
    result = RESULTS / row / f"seed{seed}.json"
    if result.is_file():
        return json.loads(result.read_text())
    out = RUNS / f"{row}-seed{seed}"
    init = initial_student(data_dir, seed)
    argv = [
        sys.executable, "-m", "attribkit.cli", "distill", "--teacher", str(teacher), "--student-init", str(init),
        "--task", "SST-2", "--data-dir", str(data_dir), "--out", str(out), "--seed", str(seed),
        "--save-every", "50", "--no-progress", *TRAINING, *ROWS[row],
    ]  # fmt: skip
    if (out / "checkpoint").is_dir():
        argv.append("--resume")
    elif out.exists() and not (out / "results.json").is_file():
        import shutil

        shutil.rmtree(out)  # killed before its first checkpoint
    if not (out / "results.json").is_file():
        with (RUNS / "log.txt").open("a") as log:
            log.write("$ " + " ".join(argv) + "\n")
            log.flush()
            subprocess.run(
                argv, check=True, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"}
            )
    results = json.loads((out / "results.json").read_text())
    record = {
        "row": row,
        "seed": seed,
        "final": results["last"]["score"],
        "best": results["best"]["score"],
        "steps": results["step"],
        "seconds": results["seconds"],
        "attribution_gap": attribution_gap(out, teacher, data_dir),
        "settings": json.loads((out / "run.json").read_text()),
        "student": {"arch": "gpt2", **STUDENT, "bpe_vocab": VOCAB},
    }
    result.parent.mkdir(parents=True, exist_ok=True)
    result.write_text(json.dumps(record, indent=1))
    return record


def report() -> str:
    from study_v2_report import paired_summary

    table: dict[str, dict[int, dict]] = {row: {} for row in ROWS}
    for path in sorted(RESULTS.glob("*/seed*.json")):
        record = json.loads(path.read_text())
        table[record["row"]][record["seed"]] = record
    lines = [
        "| row | seeds | final dev acc. | best dev acc. | attribution gap (dev) | minutes per run |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row, runs in table.items():
        if not runs:
            continue
        values = list(runs.values())

        def cell(key: str, digits: int = 1, values: list = values) -> str:
            xs = [r[key] for r in values]
            return f"{statistics.fmean(xs):.{digits}f}" + (
                f" ± {statistics.stdev(xs):.{digits}f}" if len(xs) > 1 else ""
            )

        lines.append(
            f"| {row.upper().replace('ADKD', 'AD-KD')} | {len(values)} | {cell('final')} | {cell('best')} | "
            f"{cell('attribution_gap', 4)} | {statistics.fmean(r['seconds'] for r in values) / 60:.0f} |"
        )
    seeds = sorted(set(table["kd"]) & set(table["adkd"]))
    if len(seeds) >= 2:
        for key, name in (("final", "final dev accuracy"), ("attribution_gap", "attribution gap")):
            s = paired_summary([table["adkd"][x][key] - table["kd"][x][key] for x in seeds])
            lines.append(
                f"\nAD-KD − KD, {name}: {s['mean']:+.4g} [95 % t interval {s['low']:+.4g}, {s['high']:+.4g}], "
                f"paired t p = {s['p_t']:.3f}, sign-flip p = {s['p_sign_flip']:.3f} ({len(seeds)} paired seeds)."
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["run", "report"])
    parser.add_argument("--teacher", type=Path, help="Fine-tuned SST-2 teacher (a folder or hub name).")
    parser.add_argument("--data-dir", type=Path, help="GLUE folder with SST-2/train.tsv and SST-2/dev.tsv.")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--rows", default="kd,adkd")
    args = parser.parse_args()
    if args.action == "report":
        print(report())
        return
    if args.teacher is None or args.data_dir is None:
        raise SystemExit("error: run needs --teacher TEACHER_DIR and --data-dir GLUE_DIR")
    glue_sentences(args.data_dir, "dev")  # one clear line when the data is missing
    RUNS.mkdir(parents=True, exist_ok=True)
    for seed in (int(s) for s in args.seeds.split(",")):
        for row in args.rows.split(","):
            print(f"{row} seed {seed} ...", flush=True)
            record = run_one(row, seed, args.teacher, args.data_dir)
            print(f"  -> final {record['final']:.2f}, gap {record['attribution_gap']:.4f}", flush=True)


if __name__ == "__main__":
    main()

"""A tiny GLUE-layout data folder (SST-2, STS-B, MNLI) in the tiny models' vocabulary."""

from __future__ import annotations

import random
from pathlib import Path

POSITIVE = "good great fine fun love like".split()
NEGATIVE = "bad awful terrible boring hate dislike".split()
FILLER = "the movie film story plot was is really very so".split()


def _sentence(rng: random.Random, label: int) -> str:
    words = rng.sample(FILLER, rng.randint(2, 6)) + [rng.choice(POSITIVE if label else NEGATIVE)]
    rng.shuffle(words)
    return " ".join(words)


def write_tiny_glue(root: Path, *, train: int = 48, dev: int = 16, seed: int = 0) -> Path:
    """Write ``root/{SST-2,STS-B,MNLI}`` TSV files laid out as GLUE's; returns ``root``."""
    rng = random.Random(seed)
    for name in ("SST-2", "STS-B", "MNLI"):
        (root / name).mkdir(parents=True, exist_ok=True)
    for split, n in (("train", train), ("dev", dev)):
        labels = [i % 2 for i in range(n)]
        rows = ["sentence\tlabel"] + [f"{_sentence(rng, y)} \t{y}" for y in labels]
        (root / "SST-2" / f"{split}.tsv").write_text("\n".join(rows) + "\n")
        header = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore"
        rows = [header] + [
            f"{i}\tg\tf\t2012\t{i}\ts\ts\t{_sentence(rng, i % 2)}\t{_sentence(rng, 1)}\t{(i % 6) * 0.8:.1f}"
            for i in range(n)
        ]
        (root / "STS-B" / f"{split}.tsv").write_text("\n".join(rows) + "\n")
    names = ("entailment", "neutral", "contradiction")
    for split, n in (("train", train), ("dev_matched", dev), ("dev_mismatched", dev)):
        rows = ["index\tsentence1\tsentence2\tgold_label"] + [
            f"{i}\t{_sentence(rng, 1)}\t{_sentence(rng, i % 2)}\t{names[i % 3]}" for i in range(n)
        ]
        (root / "MNLI" / f"{split}.tsv").write_text("\n".join(rows) + "\n")
    return root

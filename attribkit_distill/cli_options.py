"""The typer options that ``attribkit finetune``, ``distill`` and ``evaluate`` share (one help text each)."""

from __future__ import annotations

import typer

DEFAULT_DATA_HELP = "Local GLUE folder holding <TASK>/{train,dev}.tsv (default: the hub, nyu-mll/glue)."

DATA_DIR = typer.Option(None, "--data-dir", help=DEFAULT_DATA_HELP)
MAX_STEPS = typer.Option(None, "--max-steps", help="Stop after N steps (overrides --epochs).")
TRAIN_LIMIT = typer.Option(None, "--train-limit", help="Train on a seeded random subset of N examples.")
SUBSET_SEED = typer.Option(
    None,
    "--subset-seed",
    help="Seed of the --train-limit subset (default: --seed); fix it to train every seed on the same examples.",
)
MAX_LENGTH = typer.Option(128, "--max-length", help="Truncate inputs to this many tokens.")
EVAL_EVERY = typer.Option(None, "--eval-every", help="Evaluate every N steps (default: each epoch).")
SAVE_EVERY = typer.Option(200, "--save-every", help="Checkpoint every N steps.")
SEED = typer.Option(42, "--seed", help="Seeds the data order, dropout, the subset and any new head.")
DEVICE = typer.Option(None, "--device", help="cpu, cuda, cuda:N (default: cuda if available).")
RESUME = typer.Option(False, "--resume", help="Continue the run in --out from its last checkpoint.")
PROGRESS = typer.Option(True, "--progress/--no-progress")

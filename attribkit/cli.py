"""The ``attribkit`` command line (typer). Plugins add commands through ``attribkit.plugins``."""

from __future__ import annotations

import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Which tokens made a transformer classifier decide?")


class UsageError(Exception):
    """Bad command-line input: printed as one line, exit code 2."""


@app.command()
def explain(
    text: str = typer.Option(..., "--text", help="Text to explain."),
    model: Optional[str] = typer.Option(None, "--model", help="Checkpoint directory or hub name."),
    pair: Optional[str] = typer.Option(None, "--pair", help="Second text of a sentence pair."),
    method: str = typer.Option("integrated_gradients", "--method", help="Attribution method (see `attribkit methods`)."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Integration steps (IG methods)."),
    target: str = typer.Option("pred", "--target", help="pred, all, or a class index or name."),
    target_fn: str = typer.Option("logit", "--target-fn", help="logit, prob or log_prob."),
    layer: str = typer.Option("word_embeddings", "--layer", help="word_embeddings or embeddings."),
    sign: str = typer.Option("signed", "--sign", help="signed or absolute."),
    top_k: Optional[int] = typer.Option(None, "--top-k", help="Keep the K largest |A| over hidden dims per token."),
    aggregate: str = typer.Option("sum", "--aggregate", help="sum or l2 over hidden dims."),
    normalize: Optional[str] = typer.Option(None, "--normalize", help="l2, l1 or max."),
    word_level: bool = typer.Option(False, "--word-level", help="Merge sub-words into words."),
    num_labels: Optional[int] = typer.Option(None, "--num-labels", help="Attach a fresh random head (untrained encoders)."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, cuda:N (default: cuda if available)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the record(s) to this JSONL file."),
) -> None:
    """Explain one prediction: coloured tokens in the terminal, JSONL on request."""
    import attribkit as ak
    from rich.console import Console

    from attribkit.render.terminal import render_terminal

    if model is None:
        raise UsageError("no default model is shipped yet: pass --model CHECKPOINT")
    options: dict = {"target_fn": target_fn}
    if method != "occlusion":
        options["layer"] = layer
    if steps is not None:
        options["steps"] = steps
    clf = ak.load_classifier(model, device=device, num_labels=num_labels)
    spec: str | int = int(target) if target.lstrip("-").isdigit() else target
    records = ak.explain(clf, [(text, pair) if pair is not None else text], method=method, targets=spec,
                         sign=sign, top_k=top_k, aggregate=aggregate, normalize=normalize, word_level=word_level,
                         **options)
    console = Console()
    for record in records:
        for view in range(len(record.views)):
            console.print(render_terminal(record, view=view))
    if json_out is not None:
        ak.save(records, json_out)
        console.print(f"wrote {json_out}")


@app.command("methods")
def methods() -> None:
    """List the registered attribution methods and their options."""
    import inspect

    import attribkit as ak

    for name in ak.list_methods():
        cls = ak.get_method(name)
        params = [p for p in inspect.signature(cls.__init__).parameters.values() if p.name not in ("self", "classifier")]
        opts = ", ".join(f"{p.name}={p.default!r}" for p in params)
        summary = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        typer.echo(f"{name}: {summary}\n    options: {opts}")


def _load_plugins() -> None:
    for ep in entry_points(group="attribkit.plugins"):
        register = ep.load()
        register(app)


def main() -> None:
    """Console-script entry point: one-line errors on stderr with exit code 2, no tracebacks."""
    from attribkit.errors import AttribkitError

    _load_plugins()
    try:
        app(standalone_mode=False)
    except (AttribkitError, UsageError) as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("interrupted: finished work is saved (--resume continues a training run)", err=True)
        sys.exit(130)
    except Exception as exc:
        # click's usage errors (typer may vendor click, so match by interface, not by class)
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):
            typer.echo(f"error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code or 2)
        raise

if __name__ == "__main__":
    main()

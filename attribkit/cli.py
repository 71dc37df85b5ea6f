"""The ``attribkit`` command line (typer). Plugins add commands through ``attribkit.plugins``."""

from __future__ import annotations

import sys
from importlib.metadata import entry_points
from typing import Any

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Which tokens made a transformer classifier decide?")


class UsageError(Exception):
    """Bad command-line input: printed as one line, exit code 2."""


@app.command("methods")
def methods() -> None:
    """List the registered attribution methods and their options."""
    import inspect

    import attribkit as ak

    for name in ak.list_methods():
        cls = ak.get_method(name)
        params = [
            p for p in inspect.signature(cls.__init__).parameters.values() if p.name not in ("self", "classifier")
        ]
        opts = ", ".join(f"{p.name}={p.default!r}" for p in params)
        summary = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        typer.echo(f"{name}: {summary}\n    options: {opts}")


def _hide_flag_types() -> None:
    """In ``--help``, on/off flags show no ``<bool>`` type after them (they take no value)."""
    try:
        from typer.core import TyperOption
    except ImportError:  # pragma: no cover - other typer layouts keep their default display
        return
    original = getattr(TyperOption, "display_type_rich", None)
    if original is None or getattr(original, "_attribkit", False):
        return

    def display_type_rich(self: Any, ctx: Any) -> Any:
        return None if getattr(self, "is_flag", False) else original(self, ctx)

    display_type_rich._attribkit = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_hide_flag_types()


def _register_builtin() -> None:
    from attribkit.commands import compare, explain, export, faithfulness, leaderboard, plausibility

    for module in (explain, compare, faithfulness, leaderboard, plausibility, export):
        module.register(app)


_register_builtin()


def _load_plugins() -> None:
    for ep in entry_points(group="attribkit.plugins"):
        register = ep.load()
        register(app)


def _one_line_warning(
    message: Warning | str, category: type[Warning], filename: str, lineno: int, line: str | None = None
) -> str:
    """Warnings as the user reads them: ``warning: <message>``, without a source path."""
    return f"warning: {message}\n"


def main() -> None:
    """Console-script entry point: one-line errors on stderr with exit code 2, no tracebacks."""
    import warnings

    from attribkit.errors import AttribkitError

    warnings.formatwarning = _one_line_warning
    _load_plugins()
    try:
        code = app(standalone_mode=False)
    except (AttribkitError, UsageError) as exc:
        from attribkit.distributed import launched_group

        group = launched_group()
        if group is None or group.is_main:  # several processes agree on one error: say it once
            typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except OSError as exc:  # an output that cannot be written (read-only folder, full disk ...)
        from attribkit.distributed import launched_group

        group = launched_group()
        if group is None or group.is_main:
            where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
            typer.echo(f"error: {where}{exc.strerror or exc}", err=True)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        _interrupted()
    except Exception as exc:
        # click's usage errors (typer may vendor click, so match by interface, not by class)
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):
            typer.echo(f"error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code or 2)
        raise
    # Under standalone_mode=False typer turns Ctrl-C into Exit(130) and returns the code instead of raising:
    # a returned code is the command's exit status, never dropped.
    if code == INTERRUPTED:
        _interrupted()
    if isinstance(code, int) and not isinstance(code, bool) and code != 0:
        sys.exit(code)


INTERRUPTED = 130  # the shell's code for a process stopped by SIGINT (128 + 2)


def _interrupted() -> None:
    typer.echo("interrupted: finished work is saved (--resume continues the run)", err=True)
    sys.exit(INTERRUPTED)


if __name__ == "__main__":
    main()

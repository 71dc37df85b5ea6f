"""The built-in subcommands of ``attribkit`` (each module registers its commands on the typer app)."""

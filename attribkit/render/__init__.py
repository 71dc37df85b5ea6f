"""Renderers of attribution records (terminal now; HTML and plotly follow)."""

from attribkit.render.terminal import render_terminal

__all__ = ["render_terminal"]

"""Renderers of attribution records: terminal (rich), standalone HTML, plotly figures."""

from attribkit.render.html import render_html, save_html
from attribkit.render.terminal import render_terminal

__all__ = ["render_html", "render_terminal", "save_html"]

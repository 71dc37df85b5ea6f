"""Terminal rendering with rich: tokens coloured by score, a legend and the top tokens."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from attribkit.record import Attribution
from attribkit.reduce import top_tokens


def _style(score: float, scale: float, signed: bool) -> str:
    strength = 0.0 if scale == 0 else min(abs(score) / scale, 1.0)
    level = round(255 - 175 * strength)
    if signed and score < 0:
        return f"black on rgb({level},{level},255)"
    return f"black on rgb(255,{level},{level})"


def render_terminal(record: Attribution, *, view: int | str = 0, top: int = 5) -> Group:
    """A rich renderable: prediction, coloured tokens for one view, legend, top tokens.

    Positive scores are red, negative blue; colour strength is |score| / max |score|.
    """
    scores = record.view(view)
    name = record.views[view] if isinstance(view, int) else view
    scale = float(abs(scores).max()) if len(scores) else 0.0
    signed = bool((scores < 0).any())
    probs = ", ".join(f"{label} {p:.3f}" for label, p in zip(record.labels, record.probs))
    header = Text.assemble(("prediction: ", "bold"), (record.prediction, "bold green"), f"  ({probs})")
    header.append(f"\nexplaining: {name}  method: {record.method_summary()}")
    if record.delta is not None:
        header.append(f"  completeness delta: {float(record.delta[record.views.index(name)]):+.2e}")
    if record.truncated:
        header.append("\nwarning: the input was truncated; tokens past the maximum length were dropped", style="yellow")
    line = Text()
    for token, score in zip(record.tokens, scores):
        line.append(token, style=_style(float(score), scale, signed))
        line.append(" ")
    legend = Text.assemble(
        ("  + supports ", _style(1, 1, True)),
        " ",
        ("  - opposes ", _style(-1, 1, True)),
        f"   (max |score| = {scale:.3g})",
    )
    table = Table(title=f"top {top} tokens", show_header=True, header_style="bold")
    table.add_column("position", justify="right")
    table.add_column("token")
    table.add_column("score", justify="right")
    for position, token, score in top_tokens(scores, record.tokens, top, skip=[seg < 0 for seg in record.segments]):
        table.add_row(str(position), token, f"{score:+.4f}")
    return Group(header, line, legend, table)

"""Colour scales shared by the HTML renderers.

Signed maps use a diverging scale (red = supports the explained class, blue = opposes it,
white = 0); unsigned maps a sequential one (white -> orange -> dark red). Colour strength is
``|score| / scale`` where ``scale`` is the largest ``|score|`` of the row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

# end colours (RGB) of the scales; white is the zero point
_POSITIVE = (214, 39, 40)
_NEGATIVE = (31, 119, 180)
_SEQUENTIAL = ((255, 255, 255), (253, 174, 97), (165, 0, 38))


def _mix(low: tuple[int, int, int], high: tuple[int, int, int], t: float) -> tuple[int, int, int]:
    return tuple(round(a + (b - a) * t) for a, b in zip(low, high))  # type: ignore[return-value]


def is_signed(scores: Sequence[float] | np.ndarray, options: Mapping[str, Any] | None = None) -> bool:
    """Whether a map is drawn on the diverging scale.

    From the options that produced it when they say (``sign='absolute'`` or ``aggregate='l2'``
    give unsigned maps, anything else signed ones, even if every score happens to be positive);
    otherwise True when any score is negative.
    """
    if options is not None and "sign" in options:
        return options.get("sign") != "absolute" and options.get("aggregate") != "l2"
    return any(float(s) < 0 for s in scores)


def scale_of(scores: Sequence[float] | np.ndarray) -> float:
    """The largest ``|score|``, the value at which the colour saturates (0 for an empty or zero map)."""
    return max((abs(float(s)) for s in scores), default=0.0)


def color(score: float, scale: float, *, signed: bool) -> str:
    """CSS ``rgb()`` colour of one score."""
    t = 0.0 if scale <= 0 else min(abs(float(score)) / scale, 1.0)
    if signed:
        rgb = _mix((255, 255, 255), _NEGATIVE if score < 0 else _POSITIVE, t)
    elif t <= 0.5:
        rgb = _mix(_SEQUENTIAL[0], _SEQUENTIAL[1], t * 2)
    else:
        rgb = _mix(_SEQUENTIAL[1], _SEQUENTIAL[2], t * 2 - 1)
    return "rgb({},{},{})".format(*rgb)


def text_color(score: float, scale: float, *, signed: bool) -> str:
    """Black on light backgrounds, white on saturated ones (readable either way)."""
    t = 0.0 if scale <= 0 else min(abs(float(score)) / scale, 1.0)
    return "#fff" if t > (0.75 if signed else 0.7) else "#111"


def gradient_css(*, signed: bool) -> str:
    """A CSS ``linear-gradient`` of the scale, for the legend bar."""
    if signed:
        stops = [color(-1, 1, signed=True), color(0, 1, signed=True), color(1, 1, signed=True)]
    else:
        stops = [color(0, 1, signed=False), color(0.5, 1, signed=False), color(1, 1, signed=False)]
    return "linear-gradient(to right, " + ", ".join(stops) + ")"

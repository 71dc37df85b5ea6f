"""Integrated Gradients' completeness check: which maps do not add up to F(x) - F(x'), and the warning.

IG promises ``sum(A) = F(x) - F(x')``; a finite number of steps breaks the promise by the
completeness error ``delta``. :func:`incomplete_inputs` finds the inputs whose error is large,
:func:`completeness_warning` words one warning for a whole run (how many inputs, the worst one by
number and text, the step count in use and the next to try), and :class:`CompletenessTally` gathers
the warnings of several ``explain`` calls (a batch run) into that one warning.

With a fixed step count an error above 10 % of ``|F(x) - F(x')|`` is flagged; with ``steps="auto"``
every input that missed the run's own ``tolerance`` at ``max_steps`` is (see
:mod:`attribkit.methods.auto_steps`).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from attribkit.errors import CompletenessWarning
from attribkit.methods.auto_steps import AUTO, NOISE_FLOOR

if TYPE_CHECKING:  # pragma: no cover
    from torch import Tensor

#: A completeness error above this share of |F(x) - F(x')| gets a warning ...
TOLERANCE = 0.1
#: ... when it is also above this absolute size (float noise on a flat output is not a defect).
ABSOLUTE_FLOOR = 1e-3
#: Below this |F(x) - F(x')| the relative error is ill-conditioned: the output barely moves.
ILL_CONDITIONED = 1e-2


@dataclass(frozen=True)
class IncompleteInput:
    """One input whose map does not add up: its position, text, error and output change (worst view)."""

    index: int
    text: str
    delta: float
    change: float

    @property
    def relative(self) -> float:
        return abs(self.delta) / max(abs(self.change), 1e-30)


def incomplete_inputs(
    attributions: Tensor,
    delta: Tensor,
    indices: Sequence[int],
    texts: Sequence[str],
    *,
    tolerance: float = TOLERANCE,
    floor: float = ABSOLUTE_FLOOR,
) -> list[IncompleteInput]:
    """The inputs of a batch whose completeness error is large (worst view of each).

    Args:
        attributions: ``[batch, views, seq(, hidden)]`` attributions before any reduction.
        delta: ``[batch, views]`` completeness errors ``sum(A) - (F(x) - F(x'))``.
        indices: Each batch row's position among the caller's inputs.
        texts: The caller's input texts (first text of a pair), by position.
        tolerance: Flag errors above this share of ``|F(x) - F(x')|`` ...
        floor: ... that are also above this absolute size.
    """
    dims = tuple(range(2, attributions.dim()))
    change = attributions.sum(dim=dims) - delta  # F(x) - F(x')
    off = (delta.abs() > tolerance * change.abs()) & (delta.abs() > floor)
    found = []
    for row in off.any(dim=1).nonzero().flatten().tolist():
        ratio = (delta[row].abs() / change[row].abs().clamp_min(1e-30)).masked_fill(~off[row], -1.0)
        view = int(ratio.argmax())
        index = int(indices[row])
        found.append(IncompleteInput(index, texts[index], float(delta[row, view]), float(change[row, view])))
    return found


def check_settings(options: dict[str, Any]) -> dict[str, Any]:
    """What :func:`incomplete_inputs` and :func:`completeness_warning` need from a method's options.

    Returns:
        ``{"steps", "tolerance", "max_steps", "floor"}``: the run's own tolerance with ``steps="auto"``,
        the fixed 10 % (and 1e-3 floor) otherwise.
    """
    steps = options.get("steps")
    if steps == AUTO:
        return {
            "steps": AUTO,
            "tolerance": options["tolerance"],
            "max_steps": options["max_steps"],
            "floor": NOISE_FLOOR,
        }
    return {"steps": steps, "tolerance": TOLERANCE, "max_steps": None, "floor": ABSOLUTE_FLOOR}


def completeness_warning(
    flagged: Sequence[IncompleteInput],
    total: int,
    *,
    method: str,
    steps: int | str | None,
    tolerance: float = TOLERANCE,
    max_steps: int | None = None,
) -> CompletenessWarning:
    """One warning for a run: how many inputs, the worst by number and text, and what to try next.

    Args:
        flagged: The inputs whose maps do not add up.
        total: How many inputs were checked.
        method: The method's name.
        steps: Its step count, ``"auto"`` or None (a method without steps).
        tolerance: The share of ``|F(x) - F(x')|`` the flagged errors exceed.
        max_steps: With ``steps="auto"``, the cap the flagged inputs reached.
    """
    flagged = sorted(flagged, key=lambda f: f.index)
    worst = max(flagged, key=lambda f: f.relative)
    snippet = worst.text if len(worst.text) <= 40 else worst.text[:40] + "..."
    if steps == AUTO:
        uses = f"{method}, steps=auto reached its cap of {max_steps}"
    elif steps is not None:
        uses = f"{method}, {steps} step{'s' if steps != 1 else ''}"
    else:
        uses = method
    message = (
        f"completeness error above {tolerance:.0%} of F(x) - F(x') on {len(flagged)} of {total} input(s) ({uses}); "
        f"worst: input {worst.index + 1} ({snippet!r}), error {worst.delta:+.3g} for an output change of "
        f"{worst.change:+.3g}"
    )
    if abs(worst.change) < ILL_CONDITIONED:
        message += (
            f" (F(x) - F(x') is below {ILL_CONDITIONED:g} there, so the relative error is ill-conditioned: "
            "judge the absolute error)"
        )
    message += "; those maps do not add up to the output change"
    if steps == AUTO and max_steps is not None:
        message += f": try max_steps={2 * max_steps} (-o max_steps={2 * max_steps})"
    elif isinstance(steps, int):
        following = 50 if steps < 50 else 2 * steps
        message += f": try steps={following} (--steps {following}) or steps='auto' (--steps auto)"
    return CompletenessWarning(
        message,
        flagged=tuple(flagged),
        total=total,
        method=method,
        steps=steps,
        tolerance=tolerance,
        max_steps=max_steps,
    )


class CompletenessTally:
    """Gathers the completeness warnings of several ``explain`` calls into one (a batch run's).

    Example:
        >>> tally = CompletenessTally()
        >>> with tally.watch(positions_of_this_chunk):  # doctest: +SKIP
        ...     ak.explain(...)
        >>> tally.warn()  # doctest: +SKIP
    """

    def __init__(self) -> None:
        self.flagged: list[IncompleteInput] = []
        self.total = 0
        self.method = ""
        self.steps: int | str | None = None
        self.tolerance = TOLERANCE
        self.max_steps: int | None = None

    @contextlib.contextmanager
    def watch(self, positions: Sequence[int]) -> Iterator[None]:
        """Hold back the completeness warning of the calls inside, renumbering its inputs by ``positions``."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
        self.total += len(positions)
        for item in caught:
            warning = item.message
            if isinstance(warning, CompletenessWarning) and warning.flagged:
                self.method, self.steps = warning.method, warning.steps
                self.tolerance, self.max_steps = warning.tolerance, warning.max_steps
                self.flagged += [
                    IncompleteInput(int(positions[f.index]), f.text, f.delta, f.change) for f in warning.flagged
                ]
            else:  # every other warning goes on as it came
                warnings.warn_explicit(item.message, item.category, item.filename, item.lineno)

    def warn(self, *, stacklevel: int = 2) -> None:
        """Issue the one warning for everything watched (nothing when every map added up)."""
        if self.flagged:
            warnings.warn(
                completeness_warning(
                    self.flagged,
                    self.total,
                    method=self.method,
                    steps=self.steps,
                    tolerance=self.tolerance,
                    max_steps=self.max_steps,
                ),
                stacklevel=stacklevel,
            )

"""Errors raised by attribkit.

Every error is an :class:`AttribkitError`; its message says what is wrong and what to do.
Subclasses also derive from the matching built-in (``ValueError``, ``KeyError`` ...) so that
callers who catch the built-in keep working.
"""

from __future__ import annotations


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none): one-line errors."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class AttribkitError(Exception):
    """Base class of every error attribkit raises on purpose."""


class InvalidInputError(AttribkitError, ValueError):
    """A text, batch or tensor given to attribkit cannot be used as it is."""


class OptionError(AttribkitError, ValueError):
    """An option has a value outside its allowed set or range."""


class UnknownNameError(AttribkitError, KeyError):
    """A registry lookup failed; the message lists the registered names."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class DuplicateNameError(AttribkitError, ValueError):
    """A name was registered twice in the same registry."""


class TargetError(AttribkitError, ValueError):
    """A requested attribution target (class index, name, gold label) does not exist."""


class ModelLoadError(AttribkitError, OSError):
    """A path or hub name is not a usable sequence-classification checkpoint."""


class TruncationWarning(UserWarning):
    """A text was longer than the model's limit and was truncated."""


class CompletenessWarning(UserWarning):
    """Integrated Gradients' completeness error is large: the map does not add up to F(x) - F(x').

    Attributes:
        flagged: The inputs concerned (``attribkit.completeness.IncompleteInput``: position, text,
            error and output change).
        total: How many inputs were checked.
        method: The method's registered name.
        steps: Its integration steps (``"auto"`` for per-input step counts), or None.
        tolerance: The completeness error judged too large, as a share of ``|F(x) - F(x')|``.
        max_steps: With ``steps="auto"``, the cap the flagged inputs reached; else None.
    """

    def __init__(
        self,
        message: str,
        *,
        flagged: tuple = (),
        total: int = 0,
        method: str = "",
        steps: int | str | None = None,
        tolerance: float = 0.1,
        max_steps: int | None = None,
    ) -> None:
        super().__init__(message)
        self.flagged = flagged
        self.total = total
        self.method = method
        self.steps = steps
        self.tolerance = tolerance
        self.max_steps = max_steps

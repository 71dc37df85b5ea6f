"""Old module paths that keep working: a moved module's old name forwards to its new home, with a warning.

A shim module is two lines (``attribkit/types.py`` is one)::

    from attribkit.deprecation import moved_module
    __getattr__ = moved_module(__name__, "attribkit.record")
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from typing import Any


def moved_module(old: str, new: str) -> Callable[[str], Any]:
    """A module ``__getattr__`` (PEP 562) that serves ``old``'s names from ``new`` with a DeprecationWarning.

    Args:
        old: The module path that moved (the shim's ``__name__``).
        new: Where it lives now.

    Returns:
        The function to assign to the shim's ``__getattr__``; ``from old import name`` and ``old.name`` both
        reach it, and an unknown name raises AttributeError naming the old module.
    """

    def forward(name: str) -> Any:
        if name.startswith("__"):  # import machinery probes (__path__, __file__ ...): not a user's name
            raise AttributeError(name)
        try:
            value = getattr(importlib.import_module(new), name)
        except AttributeError:
            raise AttributeError(f"module {old!r} has no attribute {name!r}") from None
        warnings.warn(
            f"{old} moved to {new}: import {name} from {new} (or from attribkit)", DeprecationWarning, stacklevel=2
        )
        return value

    return forward

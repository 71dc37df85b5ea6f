"""Moved to :mod:`attribkit.evaluation.metrics` (also ``ak.metrics``); this path keeps working, with a warning.

It is a public module reachable as ``ak.metrics``, so the old path is the new module itself (not a
forwarding shim): ``ak.metrics`` stays the same object whichever path was imported first.
"""

import sys
import warnings

from attribkit.evaluation import metrics as _metrics
from attribkit.evaluation.metrics import *  # noqa: F403 - the names, for type checkers

warnings.warn(
    "attribkit.metrics moved to attribkit.evaluation.metrics: import it from there (or use ak.metrics)",
    DeprecationWarning,
    stacklevel=2,
)
sys.modules[__name__] = _metrics

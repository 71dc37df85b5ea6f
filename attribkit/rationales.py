"""Moved to :mod:`attribkit.evaluation.rationales`; this path keeps working, with a DeprecationWarning."""

from attribkit.deprecation import moved_module

__getattr__ = moved_module(__name__, "attribkit.evaluation.rationales")

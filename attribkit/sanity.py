"""Moved to :mod:`attribkit.evaluation.sanity`; this path keeps working, with a DeprecationWarning."""

from attribkit.deprecation import moved_module

__getattr__ = moved_module(__name__, "attribkit.evaluation.sanity")

"""Moved to :mod:`attribkit_distill.training_loop`; this path keeps working, with a DeprecationWarning."""

from attribkit.deprecation import moved_module

__getattr__ = moved_module(__name__, "attribkit_distill.training_loop")

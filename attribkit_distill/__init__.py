"""attribkit_distill: attribution-driven knowledge distillation (AD-KD) on top of attribkit.

Placeholder package: the losses, GLUE tasks and commands arrive with their own issue. It may
import only attribkit's public API; attribkit never imports it.
"""

__all__: list[str] = []

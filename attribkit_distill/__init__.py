"""attribkit_distill: attribution-driven (AD-KD) and causal (interchange intervention) distillation on top of attribkit.

It imports only attribkit's public API; attribkit never imports it. Names resolve lazily, so
``import attribkit_distill`` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "CrossTokenizerAttributionLoss": "attribkit_distill.cross_tokenizer",
    "cross_tokenizer_batch": "attribkit_distill.cross_tokenizer",
    "CrossTokenizerCollator": "attribkit_distill.cross_tokenizer",
    "CrossEncodedData": "attribkit_distill.cross_data",
    "encode_cross_examples": "attribkit_distill.cross_data",
    "AttributionLoss": "attribkit_distill.loss",
    "AttributionLossOutput": "attribkit_distill.loss",
    "check_shared_vocabulary": "attribkit_distill.loss",
    "KDLoss": "attribkit_distill.objective",
    "DistillationObjective": "attribkit_distill.objective",
    "ObjectiveOutput": "attribkit_distill.objective",
    "TeacherOutputs": "attribkit_distill.objective",
    "AttributionDistillationTrainer": "attribkit_distill.hf_trainer",
    "TeacherCache": "attribkit_distill.cache",
    "student_from_layers": "attribkit_distill.students",
    "narrow_student": "attribkit_distill.students",
    "student_from_pretrained": "attribkit_distill.students",
    "InterchangeInterventionLoss": "attribkit_distill.iit",
    "interchange": "attribkit_distill.iit",
    "uniform_layer_map": "attribkit_distill.iit",
    "get_task": "attribkit_distill.tasks",
    "attribution_gap": "attribkit_distill.evaluation",
    "forward_with_maps": "attribkit_distill.maps",
    "ForwardMaps": "attribkit_distill.maps",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'attribkit_distill' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from attribkit_distill.cache import TeacherCache
    from attribkit_distill.cross_data import CrossEncodedData, encode_cross_examples
    from attribkit_distill.cross_tokenizer import (
        CrossTokenizerAttributionLoss,
        CrossTokenizerCollator,
        cross_tokenizer_batch,
    )
    from attribkit_distill.evaluation import attribution_gap
    from attribkit_distill.hf_trainer import AttributionDistillationTrainer
    from attribkit_distill.iit import InterchangeInterventionLoss, interchange, uniform_layer_map
    from attribkit_distill.loss import AttributionLoss, AttributionLossOutput, check_shared_vocabulary
    from attribkit_distill.maps import ForwardMaps, forward_with_maps
    from attribkit_distill.objective import DistillationObjective, KDLoss, ObjectiveOutput, TeacherOutputs
    from attribkit_distill.students import narrow_student, student_from_layers, student_from_pretrained
    from attribkit_distill.tasks import get_task

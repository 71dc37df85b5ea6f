"""Attribution methods: one module per family, registered by name on import."""

from attribkit.methods.base import METHODS, AttributionMethod, MethodResult, register_method
from attribkit.methods.captum_ig import CaptumIntegratedGradients
from attribkit.methods.fast_ig import FastIntegratedGradients
from attribkit.methods.gradient import GradientXInput
from attribkit.methods.occlusion import Occlusion

__all__ = [
    "METHODS",
    "AttributionMethod",
    "CaptumIntegratedGradients",
    "FastIntegratedGradients",
    "GradientXInput",
    "MethodResult",
    "Occlusion",
    "register_method",
]

"""Attribution methods: one module per family, registered by name on import."""

from attribkit.methods.attnlrp import AttnLRP
from attribkit.methods.base import METHODS, AttributionMethod, MethodResult, register_method
from attribkit.methods.captum_ig import CaptumIntegratedGradients
from attribkit.methods.deeplift import DeepLift
from attribkit.methods.fast_ig import FastIntegratedGradients
from attribkit.methods.gradient import GradientXInput
from attribkit.methods.gradient_shap import GradientShap
from attribkit.methods.occlusion import Occlusion
from attribkit.methods.perturbation import FeatureAblation, KernelShap, Lime, ShapleySampling
from attribkit.methods.saliency import Saliency

__all__ = [
    "METHODS",
    "AttnLRP",
    "AttributionMethod",
    "CaptumIntegratedGradients",
    "DeepLift",
    "FastIntegratedGradients",
    "FeatureAblation",
    "GradientShap",
    "GradientXInput",
    "KernelShap",
    "Lime",
    "MethodResult",
    "Occlusion",
    "Saliency",
    "ShapleySampling",
    "register_method",
]

"""attribkit: which tokens made a transformer text classifier decide?

The public API is re-exported here. Names resolve lazily, so ``import attribkit`` stays cheap
(torch and transformers load on first use).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "load_classifier": "attribkit.loading",
    "resolve_device": "attribkit.loading",
    "ArchitectureSpec": "attribkit.architectures",
    "register_architecture": "attribkit.architectures",
    "architecture_of": "attribkit.architectures",
    "architectures": "attribkit.architectures",
    "architectures_supporting": "attribkit.architectures",
    "find_layer_list": "attribkit.architectures",
    "Classifier": "attribkit.model",
    "explain": "attribkit.facade",
    "attribute": "attribkit.facade",
    "list_methods": "attribkit.facade",
    "get_method": "attribkit.facade",
    "register_method": "attribkit.methods.base",
    "AttributionMethod": "attribkit.methods.base",
    "MethodResult": "attribkit.methods.base",
    "Attribution": "attribkit.record",
    "save": "attribkit.io",
    "load": "attribkit.io",
    "reduce_dims": "attribkit.reduce",
    "normalize_scores": "attribkit.reduce",
    "merge_words": "attribkit.reduce",
    "top_tokens": "attribkit.reduce",
    "integration_points": "attribkit.methods.integration",
    "apply_target_fn": "attribkit.targets",
    "two_class_view_scales": "attribkit.targets",
    "view_gradients": "attribkit.targets",
    "run_with_layer": "attribkit.layer_hooks",
    "read_layer": "attribkit.layer_hooks",
    "render_html": "attribkit.render.html",
    "save_html": "attribkit.render.html",
    "render_comparison": "attribkit.render.comparison",
    "plot": "attribkit.render.figures",
    "plot_comparison": "attribkit.render.figures",
    "agreement_histogram": "attribkit.render.figures",
    "render_terminal": "attribkit.render.terminal",
    "compare": "attribkit.comparison",
    "compare_records": "attribkit.comparison",
    "Comparison": "attribkit.comparison",
    "align": "attribkit.alignment",
    "Unit": "attribkit.units",
    "shared_units": "attribkit.units",
    "unit_members": "attribkit.units",
    "Alignment": "attribkit.alignment",
    "faithfulness": "attribkit.evaluation.erasure",
    "FaithfulnessScores": "attribkit.evaluation.erasure",
    "soft_faithfulness": "attribkit.evaluation.soft_erasure",
    "plausibility": "attribkit.evaluation.rationales",
    "randomization_check": "attribkit.evaluation.sanity",
    "RandomizationCheck": "attribkit.evaluation.sanity",
    "PlausibilityScores": "attribkit.evaluation.rationales",
    "rationale_from_spans": "attribkit.evaluation.rationales",
    "rationale_from_word_mask": "attribkit.evaluation.rationales",
    "SoftFaithfulnessScores": "attribkit.evaluation.soft_erasure",
    "Leaderboard": "attribkit.leaderboard",
    "LeaderboardSetting": "attribkit.leaderboard",
    "leaderboard_html": "attribkit.render.leaderboard",
    "bootstrap_mean": "attribkit.intervals",
    "paired_difference": "attribkit.intervals",
    "Interval": "attribkit.intervals",
    "read_inputs": "attribkit.inputs",
    "explain_to_file": "attribkit.batch_explain",
    "BatchResult": "attribkit.batch_explain",
    "progress_bar": "attribkit.progress",
    "save_model_files": "attribkit.files",
    "load_dataset_split": "attribkit.hub",
    "shrink_vocabulary": "attribkit.vocabulary",
    "InputRow": "attribkit.inputs",
    "default_model_path": "attribkit.assets",
    "AttribkitError": "attribkit.errors",
    "InvalidInputError": "attribkit.errors",
    "OptionError": "attribkit.errors",
    "CompletenessWarning": "attribkit.errors",
    "TargetError": "attribkit.errors",
    "ModelLoadError": "attribkit.errors",
    "UnknownNameError": "attribkit.errors",
    "DuplicateNameError": "attribkit.errors",
    "TruncationWarning": "attribkit.errors",
}

__all__ = [*sorted(_EXPORTS), "__version__", "metrics"]


_SUBMODULES = {
    "metrics": "attribkit.evaluation.metrics"
}  # public modules reachable as attributes (ak.metrics.spearman)


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return import_module(_SUBMODULES[name])
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'attribkit' has no attribute {name!r}")
    if module in (
        "attribkit.facade",
        "attribkit.comparison",
        "attribkit.evaluation.erasure",
        "attribkit.leaderboard",
        "attribkit.render.leaderboard",
        "attribkit.batch_explain",
    ) or module.startswith("attribkit.methods"):
        import_module("attribkit.methods")  # registers the built-in methods
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from attribkit.alignment import Alignment, align
    from attribkit.architectures import (
        ArchitectureSpec,
        architecture_of,
        architectures,
        architectures_supporting,
        find_layer_list,
        register_architecture,
    )
    from attribkit.assets import default_model_path
    from attribkit.batch_explain import BatchResult, explain_to_file
    from attribkit.comparison import Comparison, compare, compare_records
    from attribkit.errors import (
        AttribkitError,
        CompletenessWarning,
        DuplicateNameError,
        InvalidInputError,
        ModelLoadError,
        OptionError,
        TargetError,
        TruncationWarning,
        UnknownNameError,
    )
    from attribkit.evaluation.erasure import FaithfulnessScores, faithfulness
    from attribkit.evaluation.rationales import (
        PlausibilityScores,
        plausibility,
        rationale_from_spans,
        rationale_from_word_mask,
    )
    from attribkit.evaluation.sanity import RandomizationCheck, randomization_check
    from attribkit.evaluation.soft_erasure import SoftFaithfulnessScores, soft_faithfulness
    from attribkit.facade import attribute, explain, get_method, list_methods
    from attribkit.files import save_model_files
    from attribkit.hub import load_dataset_split
    from attribkit.inputs import InputRow, read_inputs
    from attribkit.intervals import Interval, bootstrap_mean, paired_difference
    from attribkit.io import load, save
    from attribkit.layer_hooks import read_layer, run_with_layer
    from attribkit.leaderboard import Leaderboard, LeaderboardSetting
    from attribkit.loading import load_classifier, resolve_device
    from attribkit.methods.base import AttributionMethod, MethodResult, register_method
    from attribkit.methods.integration import integration_points
    from attribkit.model import Classifier
    from attribkit.progress import progress_bar
    from attribkit.record import Attribution
    from attribkit.reduce import merge_words, normalize_scores, reduce_dims, top_tokens
    from attribkit.render.comparison import render_comparison
    from attribkit.render.figures import agreement_histogram, plot, plot_comparison
    from attribkit.render.html import render_html, save_html
    from attribkit.render.leaderboard import leaderboard_html
    from attribkit.render.terminal import render_terminal
    from attribkit.targets import apply_target_fn, two_class_view_scales, view_gradients
    from attribkit.units import Unit, shared_units, unit_members
    from attribkit.vocabulary import shrink_vocabulary

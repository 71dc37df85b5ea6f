"""Model-parameter randomisation test (Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS 2018).

An explanation that reflects what the model learned must change when the learned weights are
destroyed. The check explains the same texts with the trained model and with a copy whose weights
are re-drawn from the architecture's initialisation (Hugging Face ``_init_weights``, seeded), and
reports the Spearman rank correlation of each pair of maps over the real tokens. Near 1: the method
mostly shows the input (or the architecture), not the model; near 0: it depends on the weights.

``cascade=False`` randomises every layer at once; ``cascade=True`` reports one correlation per
step, randomising from the classifier head down to the embeddings as in the paper's cascading test.
"""

from __future__ import annotations

import copy
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from attribkit.architectures import find_layer_list
from attribkit.errors import OptionError
from attribkit.evaluation.metrics import spearman
from attribkit.model import Classifier, Text


@dataclass(frozen=True)
class RandomizationCheck:
    """Rank correlations between the maps of the trained and of the randomised model.

    Attributes:
        method: The explained method.
        steps: What was randomised at each step (``["all"]`` without ``cascade``).
        correlations: ``[step][text]`` Spearman over real tokens (nan for a constant map).
    """

    method: str
    steps: tuple[str, ...]
    correlations: tuple[tuple[float, ...], ...]

    @property
    def median(self) -> tuple[float, ...]:
        """Median correlation per step (texts with a constant map left out)."""
        return tuple(_median(row) for row in self.correlations)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "method": self.method,
            "steps": list(self.steps),
            "median": list(self.median),
            "correlations": [[None if np.isnan(v) else v for v in row] for row in self.correlations],
        }


def _median(values: Sequence[float]) -> float:
    finite = [v for v in values if not np.isnan(v)]
    return statistics.median(finite) if finite else float("nan")


def randomization_check(
    classifier: Classifier,
    texts: Sequence[Text],
    *,
    method: str = "integrated_gradients",
    cascade: bool = False,
    seed: int = 0,
    **explain_options: Any,
) -> RandomizationCheck:
    """Spearman between each text's map under the trained and under a randomised copy of the model.

    Args:
        classifier: The trained model (left untouched; a copy is randomised).
        texts: Texts (or ``(text, pair)`` tuples) to explain.
        method: Attribution method.
        cascade: Randomise block by block from the head down, one result per step.
        seed: Seed of the re-drawn weights.
        **explain_options: Passed to :func:`attribkit.explain` for both models (``steps``, ``targets`` ...).

    Returns:
        A :class:`RandomizationCheck`.
    """
    from attribkit.facade import explain

    if not texts:
        raise OptionError("give at least one text")
    trained = explain(classifier, list(texts), method=method, **explain_options)
    blocks = randomization_blocks(classifier.model)
    order = [blocks[: i + 1] for i in range(len(blocks))] if cascade else [[("all", [""])]]
    names, rows = [], []
    for chosen in order:
        model = copy.deepcopy(classifier.model)
        prefixes = [p for _, block in chosen for p in block]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for name, module in model.named_modules():
                if any(p == "" or name == p or name.startswith(p + ".") for p in prefixes):
                    model._init_weights(module)
        random_clf = Classifier(model.to(classifier.device).eval(), classifier.tokenizer)
        random_maps = explain(random_clf, list(texts), method=method, **explain_options)
        rows.append(tuple(_correlation(a, b) for a, b in zip(trained, random_maps)))
        names.append(chosen[-1][0])
    return RandomizationCheck(method, tuple(names), tuple(rows))


def _correlation(a: Any, b: Any) -> float:
    real = [s >= 0 for s in a.segments]
    x = [v for v, r in zip(a.scores[0], real) if r]
    y = [v for v, r in zip(b.scores[0], real) if r]
    return float(spearman(x, y))


def randomization_blocks(model: Any) -> list[tuple[str, list[str]]]:
    """``(label, module prefixes)`` from the output down: the head (and pooler), each encoder layer (last
    first), the embeddings (with modules every layer shares, e.g. DeBERTa's relative position embeddings).

    Raises:
        OptionError: A model without ``_init_weights`` (not a Hugging Face pre-trained model).
    """
    if not hasattr(model, "_init_weights"):
        raise OptionError(f"{type(model).__name__} has no _init_weights: cannot re-draw its weights")
    base = model.base_model_prefix
    names = [name for name, _ in model.named_modules()]
    found = find_layer_list(getattr(model, base), model.config)  # where the architecture table says the blocks are
    if found is None:
        raise OptionError(
            f"cannot find the blocks of {type(model).__name__}; describe its family with ak.register_architecture"
        )
    owner, attribute, _ = found
    owner_name = {id(module): name for name, module in model.named_modules()}[id(owner)]
    layers = [f"{owner_name}.{attribute}.{i}" for i in range(len(getattr(owner, attribute)))]
    embeddings = [n for n in names if n.count(".") == 1 and n.startswith(base + ".") and n.endswith("embeddings")]
    holders = {n.rsplit(".", 1)[0] for n in layers}  # the ModuleLists and their parents hold no weights of their own
    holders |= {h.rsplit(".", 1)[0] for h in holders}
    head = [n for n, _ in model.named_children() if n != base]
    head += [n for n in names if n.count(".") == 1 and n.startswith(base + ".") and n not in {*embeddings, *holders}]
    # modules the layers share (DeBERTa's relative position embeddings and their norm) go with the embeddings
    shared = [
        n
        for n in names
        if n.rsplit(".", 1)[0] in holders
        and n not in holders
        and n.rsplit(".", 1)[1] != "layer"
        and not n.rsplit(".", 1)[1].isdigit()
    ]
    blocks = [("head", head)] + [(f"layer {n.rsplit('.', 1)[1]}", [n]) for n in reversed(layers)]
    return [*blocks, ("embeddings", embeddings + shared)]

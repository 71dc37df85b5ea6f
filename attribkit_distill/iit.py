"""Interchange intervention training (causal distillation) with forward hooks.

For a base batch and a source batch (an in-batch shuffle), an aligned layer pair (student layer
``i`` <-> teacher layer ``j``) and a span of real-token positions, each model runs on the source,
its layer output at the span is kept, and it runs on the base with those activations written into
the same site. The student learns to react to the intervention as the teacher does:
``T^2 * KL(teacher counterfactual || student counterfactual)``.

Wu, Geiger, Rozner, Kreiss, Lu, Icard, Potts and Goodman, "Causal Distillation for Language
Models", NAACL 2022.

The source is another row of the same batch, so one forward per model does both: a forward hook
on the encoder layer replaces the span of each base row with that layer's output for its source
row (nothing below the layer changes, so those are exactly the source activations). The hooks
are never patched model code and are removed in ``finally`` blocks (also when the forward raises).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attribkit import InvalidInputError, OptionError
from attribkit_distill.maps import is_regression, model_inputs, unwrap
from attribkit_distill.students import layer_list


def _hidden(output: Any) -> Tensor:
    return output[0] if isinstance(output, tuple) else output


def _replace(output: Any, hidden: Tensor) -> Any:
    return (hidden, *output[1:]) if isinstance(output, tuple) else hidden


@contextlib.contextmanager
def interchange(model: nn.Module, layer: int, source: Tensor, mask: Tensor) -> Iterator[None]:
    """While active, encoder layer ``layer`` outputs, at ``mask``, the activations of row ``source[b]``.

    The base and source inputs are rows of the same batch, and nothing below ``layer`` is
    changed, so the source activations are the layer's own output for the source rows: one
    forward pass computes them and runs the intervened base (gradients flow through both).

    Args:
        model: A Hugging Face encoder classifier (wrappers such as DDP are looked through).
        layer: Index of the encoder layer whose output is intervened on.
        source: ``[batch]`` the source row of each base row.
        mask: ``[batch, seq]`` bool, the intervened positions (the same site in base and source).
    """
    layers, _ = layer_list(model)

    def hook(_module: nn.Module, _inputs: Any, output: Any) -> Any:
        hidden = _hidden(output)
        return _replace(output, torch.where(mask.unsqueeze(-1), hidden[source], hidden))

    handle = layers[layer].register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def uniform_layer_map(student_layers: int, teacher_layers: int) -> dict[int, int]:
    """Student layer ``i`` <-> teacher layer ``(i + 1) * L_t / L_s - 1`` (the last layers align)."""
    return {i: (i + 1) * teacher_layers // student_layers - 1 for i in range(student_layers)}


def derangement(n: int, generator: torch.Generator | None = None) -> Tensor:
    """A random permutation with no fixed point (a random cycle); the identity when ``n == 1``."""
    order = torch.randperm(n, generator=generator)
    source = torch.empty(n, dtype=torch.long)
    source[order] = order.roll(-1)
    return source


def span_mask(real: Tensor, source: Tensor, fraction: float, generator: torch.Generator | None = None) -> Tensor:
    """Per example, a random span of about ``fraction`` of the real (non-special) positions shared by base and source.

    Args:
        real: ``[batch, seq]`` bool, the real-token positions of the base batch.
        source: ``[batch]`` source row of each base row.
        fraction: Share of the shorter real length to intervene on (at least one token).

    Returns:
        ``[batch, seq]`` bool mask.
    """
    both = real & real[source]
    mask = torch.zeros_like(both)
    for row in range(both.shape[0]):
        positions = both[row].nonzero().flatten()
        if positions.numel() == 0:
            continue
        # contiguous runs only: spans are cut from the common real positions in order
        width = max(1, round(fraction * positions.numel()))
        start = int(torch.randint(0, positions.numel() - width + 1, (1,), generator=generator))
        mask[row, positions[start : start + width]] = True
    return mask


class InterchangeInterventionLoss(nn.Module):
    """The interchange intervention objective (Wu et al., NAACL 2022) for any BERT-style encoder.

    Args:
        layer_map: ``"uniform"`` (student layer ``i`` <-> teacher layer ``(i+1) L_t / L_s - 1``, the
            student's last layer left out, see :meth:`pairs`) or ``{student_layer: teacher_layer}``;
            one pair is drawn per call.
        span_fraction: Share of the shorter real length (of base and source) to intervene on.
        temperature: Softmax temperature T of the KL term (multiplied by T^2).
        generator: Random source for pairing, layer and span (default: torch's global RNG, so
            ``torch.manual_seed`` makes it deterministic and checkpoints capture its state).

    Calling ``loss(student, teacher, batch)`` returns the scalar loss; gradients reach only the
    student (the teacher runs under ``no_grad``). Regression heads use the MSE of the outputs.
    """

    def __init__(
        self,
        *,
        layer_map: str | Mapping[int, int] = "uniform",
        span_fraction: float = 0.3,
        temperature: float = 2.0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(layer_map, Mapping) and layer_map != "uniform":
            raise OptionError(
                f"layer_map must be 'uniform' or a dict {{student_layer: teacher_layer}}; got {layer_map!r}"
            )
        if not 0 < span_fraction <= 1:
            raise OptionError(f"span_fraction must be in (0, 1]; got {span_fraction!r}")
        if temperature <= 0:
            raise OptionError(f"temperature must be positive; got {temperature!r}")
        self.layer_map: str | dict[int, int] = (
            "uniform" if isinstance(layer_map, str) else {int(k): int(v) for k, v in dict(layer_map).items()}
        )
        self.span_fraction, self.temperature, self.generator = float(span_fraction), float(temperature), generator

    def pairs(self, student: nn.Module, teacher: nn.Module) -> dict[int, int]:
        """The aligned layer pairs to draw from, checked against both models.

        ``"uniform"`` leaves out the student's last layer: a sequence classifier reads only the
        first position of the last layer, which the span never covers, so intervening there would
        change nothing.
        """
        n_student, n_teacher = len(layer_list(student)[0]), len(layer_list(teacher)[0])
        if self.layer_map == "uniform":
            if n_student < 2:
                raise OptionError(
                    "a 1-layer student has no layer whose intervention reaches its classifier head; "
                    "give layer_map={0: j} to intervene on its only layer anyway"
                )
            pairs = {i: j for i, j in uniform_layer_map(n_student, n_teacher).items() if i < n_student - 1}
        else:
            pairs = cast(dict[int, int], self.layer_map)
        bad = [(i, j) for i, j in pairs.items() if not (0 <= i < n_student and 0 <= j < n_teacher)]
        if bad or not pairs:
            raise OptionError(
                f"layer_map pairs {bad or 'none'} are out of range: the student has {n_student} layers, "
                f"the teacher {n_teacher}"
            )
        return dict(pairs)

    @staticmethod
    def counterfactual(
        model: nn.Module, batch: Mapping[str, Tensor], layer: int, source: Tensor, mask: Tensor
    ) -> Tensor:
        """Logits of ``model`` on the base batch with layer ``layer`` at ``mask`` taken from the source rows.

        Shapes:
            ``[batch, num_labels]``.
        """
        with interchange(model, layer, source, mask):
            return model(**model_inputs(dict(batch))).logits

    def options(self) -> dict[str, Any]:
        """JSON-ready options (for run.json)."""
        layer_map = (
            self.layer_map if isinstance(self.layer_map, str) else {str(k): v for k, v in self.layer_map.items()}
        )
        return {"layer_map": layer_map, "span_fraction": self.span_fraction, "temperature": self.temperature}

    def forward(self, student: nn.Module, teacher: nn.Module | None, batch: Mapping[str, Tensor]) -> Tensor:
        if teacher is None:
            raise InvalidInputError(
                "the interchange intervention loss needs the teacher model (not only cached outputs)"
            )
        pairs = self.pairs(unwrap(student), unwrap(teacher))
        device = batch["input_ids"].device
        n = batch["input_ids"].shape[0]
        source = derangement(n, self.generator).to(device)
        keys = sorted(pairs)
        student_layer = keys[int(torch.randint(0, len(keys), (1,), generator=self.generator))]
        real = (
            batch["attention_mask"].bool()
            if "attention_mask" in batch
            else torch.ones_like(batch["input_ids"], dtype=torch.bool)
        )
        if "special_tokens_mask" in batch:
            real = real & ~batch["special_tokens_mask"].bool()
        else:  # [CLS] ... [SEP]: first and last real positions are special
            lengths = real.sum(dim=1)
            real = real.clone()
            real[:, 0] = False
            real[torch.arange(n, device=device), (lengths - 1).clamp(min=0)] = False
        mask = span_mask(real.cpu(), source.cpu(), self.span_fraction, self.generator).to(device)
        with torch.no_grad():
            teacher_logits = self.counterfactual(teacher, batch, pairs[student_layer], source, mask)
        student_logits = self.counterfactual(student, batch, student_layer, source, mask)  # through any DDP wrapper
        if is_regression(student):
            return F.mse_loss(student_logits.view(-1), teacher_logits.to(student_logits.dtype).view(-1))
        t = self.temperature
        return (
            F.kl_div(
                F.log_softmax(student_logits / t, dim=-1),
                F.log_softmax(teacher_logits.to(student_logits.dtype) / t, dim=-1),
                reduction="batchmean",
                log_target=True,
            )
            * t
            * t
        )

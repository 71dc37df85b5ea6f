"""The distillation objective's terms by name: ``--objective kd+adkd+iit`` is parsed here, not matched by hand.

KD (and CE, weighted ``alpha`` / ``1 - alpha``) is always part of the objective; the other terms
are registered: ``adkd`` (the attribution loss, weight ``beta``) and ``iit`` (interchange
intervention, weight ``gamma``). A new term is one module: a function that builds its loss from
the command's settings, registered with :func:`register_term`, e.g.::

    @register_term("my_term", summary="what it adds", one_tokenizer=True, live_teacher=True)
    def my_term(settings: TermSettings) -> tuple[float, nn.Module]:
        return settings.options.get("my_weight", 1.0), MyLoss()

Its module must be imported before the objective is parsed (import it where the term is used,
or from ``attribkit_distill/__init__.py`` for a built-in one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from attribkit import DuplicateNameError, OptionError

#: The base of every objective: KD on the teacher's logits (with CE on the labels).
BASE = "kd"


@dataclass(frozen=True)
class TermSettings:
    """What a term's builder may use: the command's options and the facts of the run.

    Attributes:
        options: The command's options by name (``iit_weight``, ``iit_span`` ...).
        cross_tokenizer: Teacher and student tokenize differently.
    """

    options: dict[str, Any] = field(default_factory=dict)
    cross_tokenizer: bool = False


@dataclass(frozen=True)
class Term:
    """A registered objective term: its name, what it adds, whether it needs one shared tokenizer, and whether
    it runs the teacher on every step (then a teacher cache cannot stand in for the teacher)."""

    name: str
    summary: str
    one_tokenizer: bool
    build: Callable[[TermSettings], tuple[float, nn.Module]] | None
    live_teacher: bool = False


TERMS: dict[str, Term] = {}


def register_term(
    name: str, *, summary: str, one_tokenizer: bool = False, live_teacher: bool = False
) -> Callable[[Callable[[TermSettings], tuple[float, nn.Module]]], Callable[[TermSettings], tuple[float, nn.Module]]]:
    """Decorator: register a term builder ``settings -> (weight, module)`` under ``name``.

    Raises:
        DuplicateNameError: ``name`` is taken, or is not snake_case.
    """

    def decorate(
        build: Callable[[TermSettings], tuple[float, nn.Module]],
    ) -> Callable[[TermSettings], tuple[float, nn.Module]]:
        _add(Term(name, summary, one_tokenizer, build, live_teacher))
        return build

    return decorate


def _add(term: Term) -> None:
    if not term.name.isidentifier() or term.name.lower() != term.name or "+" in term.name:
        raise DuplicateNameError(f"objective term names are snake_case identifiers; got {term.name!r}")
    if term.name in TERMS:
        raise DuplicateNameError(f"an objective term named {term.name!r} is already registered; choose another name")
    TERMS[term.name] = term


def parse_objective(text: str) -> tuple[str, ...]:
    """``"adkd+iit"`` -> ``("kd", "adkd", "iit")``: registered names joined by ``+``; KD is always included.

    Raises:
        OptionError: an unknown or repeated name (the message lists the registered ones).
    """
    names = [part.strip() for part in text.split("+")]
    if not all(names):
        raise OptionError(f"--objective {text!r} has an empty term; join registered terms with '+', e.g. kd+adkd+iit")
    unknown = [name for name in names if name not in TERMS]
    if unknown:
        raise OptionError(
            f"unknown --objective {text!r}: {', '.join(repr(n) for n in unknown)} is not a term; "
            f"join registered terms with '+' ({', '.join(sorted(TERMS))}), e.g. kd+adkd+iit"
        )
    if len(set(names)) != len(names):
        raise OptionError(f"--objective {text!r} names a term twice")
    return (BASE, *[name for name in names if name != BASE])


def check_tokenizers(terms: tuple[str, ...], cross_tokenizer: bool) -> None:
    """Refuse terms that align hidden states token by token when the two models tokenize differently."""
    needing = [name for name in terms if TERMS[name].one_tokenizer]
    if cross_tokenizer and needing:
        raise OptionError(
            f"--objective {'+'.join(terms)}: {', '.join(needing)} swaps hidden states token by token, which needs "
            "one tokenizer; this student tokenizes differently from the teacher (use kd or kd+adkd)"
        )


def check_cached_teacher(terms: tuple[str, ...]) -> None:
    """Refuse terms that run the teacher on every step when only a teacher cache is given."""
    needing = [name for name in terms if TERMS[name].live_teacher]
    if needing:
        raise OptionError(
            f"--objective {'+'.join(terms)}: {', '.join(needing)} runs the teacher on every step, which a teacher "
            "cache cannot replace; give --teacher (or use kd or kd+adkd)"
        )


def extra_terms(terms: tuple[str, ...], settings: TermSettings) -> dict[str, tuple[float, nn.Module]]:
    """The weighted modules of every registered term beyond KD and the attribution loss."""
    return {name: build(settings) for name in terms if (build := TERMS[name].build) is not None}


_add(Term(BASE, "KD on the teacher's logits with CE on the labels (alpha, T)", False, None))
_add(Term("adkd", "attribution distillation, AD-KD (beta; the map options)", False, None))


@register_term(
    "iit",
    summary="interchange intervention, causal distillation (gamma = --iit-weight)",
    one_tokenizer=True,
    live_teacher=True,
)
def interchange_intervention(settings: TermSettings) -> tuple[float, nn.Module]:
    """Wu et al., NAACL 2022: the teacher's counterfactual logits as the student's target."""
    from attribkit_distill.iit import InterchangeInterventionLoss

    options = settings.options
    module = InterchangeInterventionLoss(
        span_fraction=options.get("iit_span", 0.3), temperature=options.get("iit_temperature", 2.0)
    )
    return float(options.get("iit_weight", 1.0)), module

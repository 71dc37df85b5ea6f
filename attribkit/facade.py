"""The facade: texts -> length-bucketed batches -> method -> :class:`Attribution` records."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from attribkit.completeness import IncompleteInput, check_settings, completeness_warning, incomplete_inputs
from attribkit.errors import InvalidInputError, OptionError
from attribkit.methods import METHODS, AttributionMethod
from attribkit.model import Classifier, Text, TokenizedText, as_classifier
from attribkit.record import Attribution
from attribkit.reduce import check_reduction, merge_words, normalize_scores, reduce_dims
from attribkit.targets import TargetSpec, fixed_targets, view_names

Progress = Callable[[int], None]


def get_method(name: str) -> type[AttributionMethod]:
    """The method class registered under ``name`` (lists the choices when unknown)."""
    return METHODS.get(name)


def list_methods() -> list[str]:
    """Names of every registered method, built-in and plugged in."""
    return METHODS.names()


def make_method(clf: Classifier, name: str, options: dict[str, Any]) -> AttributionMethod:
    """Instantiate method ``name`` with ``options``; unknown options raise :class:`OptionError`."""
    cls = get_method(name)
    try:
        return cls(clf, **options)
    except TypeError as exc:
        import inspect

        accepted = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "classifier")]
        raise OptionError(f"method {name!r} got an unknown option ({exc}); it takes: {', '.join(accepted)}") from None


def attribute(
    model: Classifier | nn.Module,
    batch: dict[str, Tensor],
    *,
    targets: Tensor | str = "pred",
    method: str = "fast_ig",
    create_graph: bool = False,
    return_delta: bool = False,
    return_logits: bool = False,
    **options: Any,
) -> Tensor | tuple[Tensor, Tensor | None] | tuple[Tensor, Tensor | None, Tensor | None]:
    """Tensor-level attribution for training code.

    Args:
        model: A Hugging Face sequence classifier (or a :class:`Classifier`).
        batch: ``input_ids``, ``attention_mask`` (optional ``token_type_ids``), ``[batch, seq]``.
        targets: ``[batch, views]`` class indices, ``"pred"`` or ``"all"``.
        method: Registered method name (``fast_ig``, ``gradient_x_input``, ``saliency`` and ``attnlrp`` are differentiable).
        create_graph: Keep the graph so a loss on the result reaches the model's parameters.
        return_delta: Also return the IG completeness error ``[batch, views]``.
        return_logits: Also return the model's logits on the input ``[batch, labels]`` from the method's
            own forward pass, or None where it ran none on the input. With ``create_graph=True`` they keep
            their graph where that pass is the differentiated one (single-step ``fast_ig``,
            ``gradient_x_input``, ``attnlrp``), so a training loop's KD or CE term needs no second forward.
        **options: The method's options (``steps``, ``layer``, ``target_fn``, ``baseline`` ...).

    Returns:
        Attributions ``[batch, views, seq, dims]`` (``[batch, views, seq]`` for token-level
        methods), zero at padding; with ``return_delta`` a tuple ``(attributions, delta)``; with
        ``return_logits`` the logits last: ``(attributions, logits)`` or ``(attributions, delta, logits)``.
    """
    clf = as_classifier(model)
    runner = make_method(clf, method, options)
    if isinstance(targets, str):
        fixed = fixed_targets(clf, targets, batch["input_ids"].shape[0])
        targets = "pred" if fixed is None else fixed.to(batch["input_ids"].device)
    result = runner.compute(batch, targets, create_graph=create_graph, return_delta=return_delta)
    if return_logits:
        return (
            (result.attributions, result.delta, result.logits) if return_delta else (result.attributions, result.logits)
        )
    return (result.attributions, result.delta) if return_delta else result.attributions


def explain(
    classifier: Classifier,
    texts: Sequence[Text] | Text,
    *,
    method: str = "integrated_gradients",
    targets: TargetSpec = "pred",
    labels: Sequence[int | str] | None = None,
    sign: str = "signed",
    top_k: int | None = None,
    aggregate: str = "sum",
    normalize: str | None = None,
    word_level: bool = False,
    batch_size: int = 16,
    max_length: int | None = None,
    completeness: bool = True,
    dtype: str | None = None,
    progress: Progress | None = None,
    **options: Any,
) -> list[Attribution]:
    """Explain a classifier's outputs on texts, token by token.

    Args:
        classifier: From :func:`attribkit.load_classifier`.
        texts: Strings or ``(text, pair)`` tuples (a single one is accepted too).
        method: Registered method name; see :func:`list_methods`.
        targets: ``pred``, ``gold`` (with ``labels``), a class index or name, or ``all``.
        labels: Gold labels, one per text (indices or names).
        sign: ``signed`` (sum over dims) or ``absolute`` (|A|).
        top_k: Keep the K largest |A| over the hidden dims per token before aggregating.
        aggregate: ``sum`` or ``l2`` over the (kept) dims.
        normalize: ``l2``, ``l1``, ``max`` or None, over the real tokens of each map.
        word_level: Merge sub-word tokens into words.
        batch_size: Texts per batch; batches are formed from texts of similar length.
        max_length: Truncate longer inputs (default: the model's limit).
        completeness: Report the IG completeness error ``delta`` (IG methods; costs one forward
            pass on the baselines). False skips it.
        dtype: ``bfloat16`` or ``float16`` runs an inference-only method (occlusion) under
            ``torch.autocast`` in that precision (for CUDA; recorded in the options); None or
            ``float32`` = the model's own precision. Gradient methods refuse it.
        progress: Called with the number of texts finished after each batch.
        **options: The method's own options (``steps``, ``layer``, ``target_fn``, ...).

    Returns:
        One :class:`Attribution` per text, in input order.
    """
    texts = (
        [texts]  # type: ignore[list-item]  # a (text, pair) tuple is one input
        if isinstance(texts, str)
        or (isinstance(texts, tuple) and len(texts) == 2 and all(isinstance(t, str) for t in texts))
        else list(texts)
    )
    if not texts:
        raise InvalidInputError("no texts to explain")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise OptionError(f"batch_size must be a positive integer; got {batch_size!r}")
    if not isinstance(completeness, bool):
        raise OptionError(f"completeness must be True or False; got {completeness!r}")
    if labels is not None and len(labels) != len(texts):
        raise InvalidInputError(f"got {len(labels)} labels for {len(texts)} texts; give exactly one per text")
    gold_names = None if labels is None else [classifier.gold_name(label) for label in labels]  # checked up front
    if isinstance(targets, (list, tuple)) and len(targets) != len(texts):
        raise InvalidInputError(f"got {len(targets)} targets for {len(texts)} texts; give exactly one per text")
    runner = make_method(classifier, method, options)
    precision = autocast_dtype(dtype, runner)
    if runner.granularity == "dims":
        hidden = classifier.layer_width(runner.layer)
        check_reduction(sign=sign, aggregate=aggregate, top_k=top_k, normalize=normalize, hidden=hidden)
    elif top_k is not None or aggregate != "sum":
        raise OptionError(f"method {method!r} scores whole tokens: top_k and aggregate do not apply")
    else:
        check_reduction(sign=sign, aggregate=aggregate, top_k=None, normalize=normalize)
    items = [classifier.tokenize(t, max_length=max_length) for t in texts]
    reduction = {
        "targets": targets if isinstance(targets, (str, int)) else "per-example",
        "sign": sign,
        "top_k": top_k,
        "aggregate": aggregate,
        "normalize": normalize,
        "word_level": word_level,
    }
    recorded = {**runner.options(), **reduction, **({"dtype": dtype} if precision is not None else {})}
    autocast = (
        torch.autocast(device_type=classifier.device.type, dtype=precision)
        if precision is not None
        else contextlib.nullcontext()
    )
    records: list[Attribution | None] = [None] * len(texts)
    flagged: list[IncompleteInput] = []
    check = check_settings(runner.options())
    first_texts = [t if isinstance(t, str) else t[0] for t in texts]  # how the completeness warning names inputs
    done = 0
    for order in length_buckets([len(it.input_ids) for it in items], batch_size):
        batch = classifier.collate([items[i] for i in order])
        spec = [targets[i] for i in order] if isinstance(targets, (list, tuple)) else targets
        gold = [labels[i] for i in order] if labels is not None else None
        fixed = fixed_targets(classifier, spec, len(order), labels=gold)
        # "pred" is resolved from the method's own forward pass where it runs on the input itself
        with autocast:
            result = runner.compute(
                batch,
                "pred" if fixed is None else fixed.to(classifier.device),
                return_delta=runner.computes_delta and completeness,
                with_logits=True,
            )
        assert result.logits is not None and result.targets is not None  # with_logits=True guarantees both
        logits, names = result.logits, view_names(classifier, result.targets)
        if result.delta is not None:
            flagged += incomplete_inputs(
                result.attributions.detach(),
                result.delta.detach(),
                order,
                first_texts,
                tolerance=check["tolerance"],
                floor=check["floor"],
            )
        scores = result.attributions.detach()
        if runner.granularity == "dims":
            scores = reduce_dims(scores, sign=sign, top_k=top_k, aggregate=aggregate)
        elif sign == "absolute":
            scores = scores.abs()
        for row, i in enumerate(order):
            records[i] = _record(
                classifier,
                texts[i],
                items[i],
                scores[row],
                logits[row],
                names[row],
                None if result.delta is None else result.delta[row],
                steps_taken=None if result.steps is None else int(result.steps[row]),
                gold=None if gold_names is None else gold_names[i],
                method=method,
                options=recorded,
                normalize=normalize,
                word_level=word_level,
                word_aggregate=aggregate,
            )
        done += len(order)
        if progress is not None:
            progress(done)
    if flagged:  # one warning for the call, naming the worst input and the steps to try next
        warnings.warn(
            completeness_warning(
                flagged,
                len(texts),
                method=runner.name,
                steps=check["steps"],
                tolerance=check["tolerance"],
                max_steps=check["max_steps"],
            ),
            stacklevel=2,
        )
    return [r for r in records if r is not None]


def autocast_dtype(dtype: str | None, runner: AttributionMethod) -> torch.dtype | None:
    """The autocast precision for ``dtype`` (None: run as the model is).

    Raises:
        OptionError: an unknown precision, or reduced precision for a method that takes gradients.
    """
    if dtype is None or dtype == "float32":
        return None
    choices = {"bfloat16": torch.bfloat16, "float16": torch.float16}
    if dtype not in choices:
        raise OptionError(f"unknown dtype {dtype!r}; choose one of: float32, bfloat16, float16")
    if not runner.inference_only:
        inference = [m for m in METHODS.names() if METHODS.get(m).inference_only]
        raise OptionError(
            f"dtype={dtype!r} is for inference-only methods ({', '.join(inference)}); "
            f"{runner.name!r} takes gradients, which need the model's full precision"
        )
    return choices[dtype]


def length_buckets(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (longest first), so padding is minimal."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[s : s + batch_size] for s in range(0, len(order), batch_size)]


def _record(
    clf: Classifier,
    text: Text,
    item: TokenizedText,
    scores: Tensor,
    logits: Tensor,
    views: list[str],
    delta: Tensor | None,
    *,
    steps_taken: int | None,
    gold: str | None,
    method: str,
    options: dict[str, Any],
    normalize: str | None,
    word_level: bool,
    word_aggregate: str,
) -> Attribution:
    """Trim one example's scores to its tokens, merge words, normalize, and build the record."""
    n = len(item.input_ids)
    token_scores = scores[:, :n].to(torch.float64)
    tokens, offsets, segments = list(item.tokens), list(item.offsets), list(item.segments)
    first, second = (text, None) if isinstance(text, str) else text
    if word_level:
        groups, tokens, offsets, segments = _word_groups(item, first, second)
        token_scores = merge_words(token_scores, groups, aggregate=word_aggregate)
    token_scores = normalize_scores(token_scores, method=normalize)
    if clf.is_regression:
        probs = logits.detach().float().cpu().numpy()
        prediction = f"{float(probs[0]):.4g}"
    else:
        probs = torch.softmax(logits.detach().float(), dim=-1).cpu().numpy()
        prediction = clf.labels[int(np.argmax(probs))]
    return Attribution(
        text=first,
        pair=second,
        tokens=tuple(tokens),
        offsets=tuple(offsets),
        segments=tuple(segments),
        scores=token_scores.cpu().numpy(),
        views=tuple(views),
        labels=clf.labels if not clf.is_regression else ("output",),
        probs=probs,
        prediction=prediction,
        method=method,
        options=options,
        delta=None if delta is None else delta.detach().float().cpu().numpy(),
        truncated=item.truncated,
        gold=gold,
        model=clf.name,
        steps_taken=steps_taken,
    )


def _word_groups(
    item: TokenizedText, first: str, second: str | None
) -> tuple[list[int], list[str], list[tuple[int, int]], list[int]]:
    """Group tokens into words: specials alone, sub-words by (segment, word id)."""
    groups: list[int] = []
    tokens: list[str] = []
    offsets: list[tuple[int, int]] = []
    segments: list[int] = []
    seen: dict[tuple[int, int], int] = {}
    for token, (start, end), segment, word in zip(item.tokens, item.offsets, item.segments, item.word_ids):
        key = (segment, word) if segment >= 0 and word is not None else None
        if key is not None and key in seen:
            g = seen[key]
            offsets[g] = (min(offsets[g][0], start), max(offsets[g][1], end))
        else:
            g = len(tokens)
            tokens.append(token)
            offsets.append((start, end))
            segments.append(segment)
            if key is not None:
                seen[key] = g
        groups.append(g)
    for g, ((start, end), segment) in enumerate(zip(offsets, segments)):
        if segment >= 0:
            source = first if segment == 0 else (second or "")
            tokens[g] = source[start:end]
    return groups, tokens, offsets, segments

"""A Hugging Face sequence classifier and its tokenizer behind a few methods.

:class:`Classifier` is all the attribution methods need: ``encode`` texts into a padded batch,
read a layer's output (``layer_output``), run the model with that layer's output replaced
(``forward_with_layer``), and the label names. Layer substitution uses a forward hook, so
every architecture whose embedding modules are reachable works without patched model code.
"""

from __future__ import annotations

import contextlib
import inspect
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from attribkit.architectures import max_positions, pad_with_eos
from attribkit.errors import InvalidInputError, ModelLoadError, OptionError, TruncationWarning
from attribkit.layer_hooks import find_layer, is_block_input, read_layer, run_with_layer
from attribkit.quiet import quiet_transformers

Text = str | tuple[str, str]


@dataclass(frozen=True)
class TokenizedText:
    """One tokenized input before padding.

    Attributes:
        input_ids: Token ids, special tokens included.
        token_type_ids: Segment ids, or None if the model takes none.
        tokens: Token strings.
        offsets: ``(start, end)`` character offsets into the text (or the pair, see
            ``segments``); ``(0, 0)`` for special tokens.
        segments: 0 for the text, 1 for the pair, -1 for special tokens.
        word_ids: Index of the word each token belongs to within its segment (None for specials).
        truncated: True if the input was cut (to ``max_length`` or the model's limit).
    """

    input_ids: tuple[int, ...]
    token_type_ids: tuple[int, ...] | None
    tokens: tuple[str, ...]
    offsets: tuple[tuple[int, int], ...]
    segments: tuple[int, ...]
    word_ids: tuple[int | None, ...]
    truncated: bool


class Classifier:
    """A sequence classifier with its tokenizer.

    Args:
        model: Any ``AutoModelForSequenceClassification`` model.
        tokenizer: Its (fast) tokenizer; may be None for tensor-level use from training code.

    Attributes:
        labels: Class names from ``config.id2label``, index-aligned with the logits.
        is_regression: True for a single-output regression head (e.g. STS-B).
        name: What the records and pages name the model by: the path or hub name it was loaded
            from (``config.name_or_path``), else the model's class name; assignable.
    """

    def __init__(self, model: nn.Module, tokenizer: Any | None = None) -> None:
        if not hasattr(model, "config") or not hasattr(model, "get_input_embeddings"):
            raise ModelLoadError("expected a Hugging Face model with a .config; got " + type(model).__name__)
        # Any: a Hugging Face model, whose config and methods nn.Module's typing would call Tensor | Module
        self.model: Any = model
        self.tokenizer: Any = tokenizer
        config: Any = model.config
        pad_with_eos(config, tokenizer)
        n = int(config.num_labels)
        id2label = getattr(config, "id2label", None) or {}
        self.labels: tuple[str, ...] = tuple(str(id2label.get(i, f"LABEL_{i}")) for i in range(n))
        self.is_regression = n == 1 or getattr(config, "problem_type", None) == "regression"
        self.name: str = str(getattr(config, "name_or_path", "") or type(model).__name__)
        params = inspect.signature(model.forward).parameters
        # a classifier needs no key-value cache (decoders build one by default; Captum cannot copy it)
        self.forward_flags: dict[str, Any] = {"use_cache": False} if "use_cache" in params else {}
        self.uses_token_types = (
            "token_type_ids" in params and getattr(config, "type_vocab_size", 0) > 1
        )  # GPT-2 takes them but has no such table

    # ------------------------------------------------------------------ properties
    @property
    def device(self) -> torch.device:
        """Device of the model's parameters."""
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """Floating dtype of the model's parameters."""
        return next(self.model.parameters()).dtype

    @property
    def num_labels(self) -> int:
        """Number of model outputs (1 for regression)."""
        return len(self.labels)

    @property
    def max_length(self) -> int:
        """Longest input, in tokens, that the model accepts."""
        limit = getattr(self.tokenizer, "model_max_length", None)
        positions = max_positions(self.model.config)
        candidates = [v for v in (limit, positions) if isinstance(v, int) and 0 < v < 1_000_000]
        return min(candidates) if candidates else 512

    @property
    def pad_token_id(self) -> int:
        """Padding id: the model's (a decoder head pools the last token that is not it), else the tokenizer's, else 0."""
        pad = getattr(self.model.config, "pad_token_id", None)
        if pad is None:
            pad = getattr(self.tokenizer, "pad_token_id", None)
        return int(pad or 0)

    def label_index(self, label: int | str) -> int:
        """Class index for a class index or name.

        Raises:
            TargetError: no such class.
        """
        from attribkit.errors import TargetError

        if isinstance(label, bool):
            raise TargetError(f"target {label!r} is not a class index or name")
        if isinstance(label, int):
            if not 0 <= label < self.num_labels:
                raise TargetError(
                    f"target class {label} is out of range: the model has {self.num_labels} "
                    f"output(s), indices 0..{self.num_labels - 1}"
                )
            return label
        if isinstance(label, str):
            if label in self.labels:
                return self.labels.index(label)
            if label.lstrip("-").isdigit():
                return self.label_index(int(label))
        raise TargetError(f"unknown target class {label!r}; the model's classes are: {', '.join(self.labels)}")

    def gold_name(self, label: int | float | str) -> str:
        """How a record names a gold label: the class name, or for regression the score as text.

        Raises:
            TargetError: no such class, or a regression label that is not a number.
        """
        from attribkit.errors import TargetError

        if not self.is_regression:
            return self.labels[self.label_index(label)]  # type: ignore[arg-type]  # a float is refused there
        try:
            value = float(label)
        except (TypeError, ValueError):
            raise TargetError(f"a regression model's gold labels are numbers (scores); got {label!r}") from None
        if isinstance(label, bool) or value != value:
            raise TargetError(f"a regression model's gold labels are numbers (scores); got {label!r}")
        return f"{value:.4g}"

    # ------------------------------------------------------------------ text -> ids
    def tokenize(self, text: Text, *, max_length: int | None = None) -> TokenizedText:
        """Tokenize one text or (text, pair) with offsets, truncating to ``max_length``.

        Raises:
            InvalidInputError: empty or whitespace-only text, or no tokenizer.
            OptionError: ``max_length`` not a positive integer, or too short for the special tokens and one token
                per text.
        """
        if self.tokenizer is None:
            raise InvalidInputError("this classifier has no tokenizer; load it with load_classifier(path)")
        first, second = _split_text(text)
        if max_length is not None and (
            isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1
        ):
            raise OptionError(f"max_length must be a positive number of tokens; got {max_length!r}")
        limit = min(max_length or self.max_length, self.max_length)
        needed = self.tokenizer.num_special_tokens_to_add(pair=second is not None) + (1 if second is None else 2)
        if limit < needed:
            raise OptionError(
                f"max_length {limit} leaves no room for the text: this input needs at least {needed} "
                "tokens (special tokens plus one per text)"
            )
        enc = self.tokenizer(
            first,
            second,
            truncation=True,
            max_length=limit,
            return_offsets_mapping=True,
            return_special_tokens_mask=True,
        )
        ids = enc["input_ids"]
        full_length = self._untruncated_length(first, second) if len(ids) >= limit else len(ids)
        truncated = full_length > limit
        if truncated:
            source = " (the model's limit)" if limit == self.max_length else ""
            warnings.warn(
                f"input of {full_length} tokens truncated to {limit}{source}: {first[:40]!r}...",
                TruncationWarning,
                stacklevel=3,
            )
        special = enc["special_tokens_mask"]
        seq_ids = enc.sequence_ids() if hasattr(enc, "sequence_ids") else [None if s else 0 for s in special]
        segments = tuple(-1 if (s is None or sp) else int(s) for s, sp in zip(seq_ids, special))
        words = enc.word_ids() if hasattr(enc, "word_ids") else [None] * len(ids)
        types = enc.get("token_type_ids") if self.uses_token_types else None
        return TokenizedText(
            input_ids=tuple(ids),
            token_type_ids=tuple(types) if types is not None else None,
            tokens=tuple(self.tokenizer.convert_ids_to_tokens(ids)),
            offsets=tuple(
                (int(a), int(b)) if seg >= 0 else (0, 0) for (a, b), seg in zip(enc["offset_mapping"], segments)
            ),
            segments=segments,
            word_ids=tuple(w if seg >= 0 else None for w, seg in zip(words, segments)),
            truncated=truncated,
        )

    def _untruncated_length(self, first: str, second: str | None) -> int:
        with quiet_transformers():
            return len(self.tokenizer(first, second, truncation=False)["input_ids"])

    def collate(self, items: Sequence[TokenizedText]) -> dict[str, Tensor]:
        """Right-pad tokenized texts into model inputs on the model's device.

        Returns:
            ``input_ids``, ``attention_mask`` and, where the model uses them, ``token_type_ids``;
            each ``[batch, max_len]``. Also ``special_tokens_mask`` (``[batch, max_len]``, True at
            special and padding positions), which :meth:`model_inputs` strips before the model.
        """
        width = max(len(it.input_ids) for it in items)
        pad = self.pad_token_id
        ids = torch.full((len(items), width), pad, dtype=torch.long)
        mask = torch.zeros((len(items), width), dtype=torch.long)
        special = torch.ones((len(items), width), dtype=torch.bool)
        types = torch.zeros((len(items), width), dtype=torch.long) if self.uses_token_types else None
        for i, it in enumerate(items):
            n = len(it.input_ids)
            ids[i, :n] = torch.tensor(it.input_ids)
            mask[i, :n] = 1
            special[i, :n] = torch.tensor([s < 0 for s in it.segments])
            if types is not None and it.token_type_ids is not None:
                types[i, :n] = torch.tensor(it.token_type_ids)
        batch = {"input_ids": ids, "attention_mask": mask, "special_tokens_mask": special}
        if types is not None:
            batch["token_type_ids"] = types
        return {k: v.to(self.device) for k, v in batch.items()}

    def encode(self, texts: Sequence[Text], *, max_length: int | None = None) -> dict[str, Tensor]:
        """Tokenize and pad texts in one step (see :meth:`tokenize` and :meth:`collate`)."""
        return self.collate([self.tokenize(t, max_length=max_length) for t in texts])

    @staticmethod
    def model_inputs(batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """The keys of ``batch`` that the model's forward takes."""
        return {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")}

    def special_mask(self, batch: dict[str, Tensor]) -> Tensor:
        """``[batch, seq]`` bool: True at special tokens and padding.

        Uses ``special_tokens_mask`` when the batch carries one, else the tokenizer's (or the
        config's) special ids.
        """
        if "special_tokens_mask" in batch:
            return batch["special_tokens_mask"].bool()
        ids = batch["input_ids"]
        specials = set(getattr(self.tokenizer, "all_special_ids", []) or [])
        for key in ("pad_token_id", "bos_token_id", "eos_token_id", "sep_token_id", "cls_token_id"):
            value = getattr(self.model.config, key, None)
            if isinstance(value, int):
                specials.add(value)
        special = torch.isin(ids, torch.tensor(sorted(specials), device=ids.device))
        return special | (batch["attention_mask"] == 0)

    # ------------------------------------------------------------------ layers
    def layer_module(self, layer: str) -> nn.Module:
        """The module whose output (or, for :meth:`layer_is_block_input`, input) is attributed.

        ``word_embeddings``: the token embedding table. ``embeddings``: the input of the first
        block, which is the embedding module's output on encoders (BERT, RoBERTa, ELECTRA,
        DeBERTa-v2, ModernBERT ...) and the first block's input on decoders (GPT-2: token +
        position embeddings; Llama, Qwen2, Mistral: the token embeddings).

        Raises:
            OptionError: unknown layer name or a model whose first block cannot be found.
        """
        return find_layer(self.model, layer)

    def layer_is_block_input(self, layer: str) -> bool:
        """True when ``layer`` is read at the *input* of :meth:`layer_module` (decoders' ``embeddings``)."""
        return is_block_input(self.model, layer)

    def layer_output(self, batch: dict[str, Tensor], layer: str) -> Tensor:
        """Output of ``layer`` for ``batch``; keeps the autograd graph to the parameters.

        Runs the model only up to that layer (the forward stops there).

        Shapes:
            returns ``[batch, seq, hidden]`` (``hidden`` of that layer).
        """
        return read_layer(self.model, layer, lambda: self.model(**self.model_inputs(batch), **self.forward_flags))

    @torch.no_grad()
    def layer_width(self, layer: str) -> int:
        """Size of the last dimension of ``layer``'s output (from a one-token forward)."""
        one = torch.full((1, 1), self.pad_token_id, dtype=torch.long, device=self.device)
        batch = {"input_ids": one, "attention_mask": torch.ones_like(one)}
        if self.uses_token_types:
            batch["token_type_ids"] = torch.zeros_like(one)
        return int(self.layer_output(batch, layer).shape[-1])

    def forward_with_layer(
        self, batch: dict[str, Tensor], layer: str, replace: Any, *, capture: list[Tensor] | None = None
    ) -> Tensor:
        """Run the model with ``layer``'s output replaced by ``replace(output)``.

        Args:
            batch: Model inputs ``[rows, seq]``.
            layer: ``word_embeddings`` or ``embeddings``.
            replace: Function from the layer's output ``[rows, seq, hidden]`` to the tensor the
                rest of the model should see instead (same shape).
            capture: If given, the substituted tensor is appended to it.

        Returns:
            Logits ``[rows, num_labels]``.
        """
        return run_with_layer(
            self.model,
            layer,
            replace,
            lambda: self.model(**self.model_inputs(batch), **self.forward_flags).logits,
            capture=capture,
        )

    def logits(self, batch: dict[str, Tensor]) -> Tensor:
        """Plain forward pass. Shapes: ``[batch, num_labels]``."""
        return self.model(**self.model_inputs(batch), **self.forward_flags).logits

    @contextlib.contextmanager
    def double_backward(self) -> Iterator[None]:
        """Context in which second-order gradients through attention work.

        PyTorch's fused SDPA kernels (flash on CPU, flash/efficient on CUDA) have no double
        backward; under this context SDPA uses the math kernel. Implementations other than
        ``eager``/``sdpa`` (flash-attention-2, flex ...) are switched to ``eager`` for the block.
        """
        config = self.model.config
        impl = getattr(config, "_attn_implementation", None) or "eager"
        if impl == "sdpa":
            from torch.nn.attention import SDPBackend, sdpa_kernel

            with sdpa_kernel([SDPBackend.MATH]):
                yield
        elif impl == "eager" or not hasattr(self.model, "set_attn_implementation"):
            yield
        else:
            self.model.set_attn_implementation("eager")
            try:
                yield
            finally:
                self.model.set_attn_implementation(impl)


def _split_text(text: Text) -> tuple[str, str | None]:
    if isinstance(text, str):
        first, second = text, None
    elif isinstance(text, (tuple, list)) and len(text) == 2 and all(isinstance(t, str) for t in text):
        first, second = text
    else:
        raise InvalidInputError(f"expected a string or a (text, pair) tuple of strings; got {type(text).__name__}")
    for part, name in ((first, "text"), (second, "pair")):
        if part is not None and not part.strip():
            raise InvalidInputError(f"the {name} is empty or whitespace only; give it some words")
    return first, second


def as_classifier(model: Classifier | nn.Module, tokenizer: Any | None = None) -> Classifier:
    """Wrap a Hugging Face model in a :class:`Classifier` (a Classifier passes through)."""
    return model if isinstance(model, Classifier) else Classifier(model, tokenizer)

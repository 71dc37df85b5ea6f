"""Reading and replacing the attributed layer of a Hugging Face model with forward hooks.

The attributed layer is either the token embedding table (``word_embeddings``) or the input of
the first block (``embeddings``): the embedding module's output on encoders, the first block's
*input* on decoders (read with a forward pre-hook). Hooks need no patched model code, so every
architecture whose embedding modules are reachable works.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor, nn

from attribkit.architectures import first_block
from attribkit.errors import OptionError

LAYERS = ("word_embeddings", "embeddings")


class StopForward(Exception):
    """Raised by a hook to stop a forward pass once the wanted layer has run."""


def find_layer(model: nn.Module, layer: str) -> nn.Module:
    """The module of ``model`` whose output (or, see :func:`is_block_input`, input) is ``layer``.

    Raises:
        OptionError: unknown layer name or a model whose first block cannot be found.
    """
    if layer == "word_embeddings":
        return model.get_input_embeddings()  # type: ignore[operator]
    if layer == "embeddings":
        base: Any = model.base_model
        module = getattr(base, "embeddings", None)
        if isinstance(module, nn.Module):
            return module
        block = first_block(base)
        if block is not None:
            return block
        raise OptionError(
            f"cannot find the input of the first block of {type(model).__name__} "
            f"({getattr(model.config, 'model_type', '?')}); use layer='word_embeddings'"
        )
    raise OptionError(f"unknown layer {layer!r}; choose one of: {', '.join(LAYERS)}")


def is_block_input(model: nn.Module, layer: str) -> bool:
    """True when ``layer`` is read at the *input* of :func:`find_layer`'s module (decoders' ``embeddings``)."""
    base: Any = model.base_model
    return layer == "embeddings" and not isinstance(getattr(base, "embeddings", None), nn.Module)


def read_layer(model: nn.Module, layer: str, forward: Callable[[], Any]) -> Tensor:
    """``layer``'s output ``[batch, seq, hidden]`` during ``forward()``, which is stopped right there.

    The tensor keeps its autograd graph to the parameters.
    """
    captured: list[Tensor] = []

    def stop(_module: nn.Module, _inputs: Any, output: Any) -> None:
        captured.append(output[0] if isinstance(output, tuple) else output)
        raise StopForward

    def stop_at_input(_module: nn.Module, args: tuple, kwargs: dict) -> None:
        captured.append(args[0] if args else kwargs["hidden_states"])
        raise StopForward

    handle = _attach(model, layer, on_output=stop, on_input=stop_at_input)
    try:
        forward()
    except StopForward:
        pass
    finally:
        handle.remove()
    return captured[0]


def run_with_layer(
    model: nn.Module,
    layer: str,
    replace: Callable[[Tensor], Tensor],
    forward: Callable[[], Any],
    *,
    capture: list[Tensor] | None = None,
) -> Any:
    """``forward()`` with ``layer``'s output ``[batch, seq, hidden]`` replaced by ``replace(output)``.

    Args:
        model: The model ``forward`` runs.
        layer: ``word_embeddings`` or ``embeddings``.
        replace: From the layer's output to the tensor the rest of the model sees (same shape).
        forward: Runs the model; its return value is returned.
        capture: If given, the substituted tensor is appended to it.
    """

    def hook(_module: nn.Module, _inputs: Any, output: Any) -> Any:
        original = output[0] if isinstance(output, tuple) else output
        new = replace(original)
        if capture is not None:
            capture.append(new)
        return (new, *output[1:]) if isinstance(output, tuple) else new

    def pre_hook(_module: nn.Module, args: tuple, kwargs: dict) -> Any:
        if args:
            new = replace(args[0])
            args = (new, *args[1:])
        else:
            new = replace(kwargs["hidden_states"])
            kwargs = {**kwargs, "hidden_states": new}
        if capture is not None:
            capture.append(new)
        return args, kwargs

    handle = _attach(model, layer, on_output=hook, on_input=pre_hook)
    try:
        return forward()
    finally:
        handle.remove()


def _attach(model: nn.Module, layer: str, *, on_output: Callable, on_input: Callable) -> Any:
    """Hook ``layer``: ``on_output`` after its module runs, or ``on_input`` (with kwargs) before a block runs."""
    module = find_layer(model, layer)
    if is_block_input(model, layer):
        return module.register_forward_pre_hook(on_input, with_kwargs=True)
    return module.register_forward_hook(on_output)

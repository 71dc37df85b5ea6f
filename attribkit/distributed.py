"""Many processes, one output: sharding a batch run over ``torchrun`` / ``accelerate launch`` processes.

The launcher starts one process per device and sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``;
:func:`process_group` joins them with ``torch.distributed`` (gloo: the processes only exchange
small control messages, whatever device computes). The batch commands deal their work to the
processes (see :mod:`attribkit.batch_explain`); every process writes its own resumable
partial file and the main process merges them in input order. Every decision that can fail is agreed on by all processes first
(:func:`agree`), so a bad input is one error in every process, never a hang.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from attribkit.errors import AttribkitError, OptionError


@dataclass(frozen=True)
class ProcessGroup:
    """This process's place among the launched ones.

    Attributes:
        rank: Global index of this process, 0 .. world - 1.
        world: Number of processes.
        local_rank: Index of this process on its machine (its CUDA device).
    """

    rank: int
    world: int
    local_rank: int

    @property
    def is_main(self) -> bool:
        """True for the process that merges and reports (rank 0)."""
        return self.rank == 0


def launched_group() -> ProcessGroup | None:
    """The group a launcher (torchrun, accelerate) started, from its environment; None for one process."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return None
    return ProcessGroup(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))


@contextlib.contextmanager
def process_group() -> Iterator[ProcessGroup | None]:
    """Join the launched processes for the block (no-op for a single process)."""
    group = launched_group()
    if group is None:
        yield None
        return
    import torch.distributed as dist

    created = not dist.is_initialized()
    if created:
        dist.init_process_group(backend="gloo")
    try:
        yield group
        dist.barrier()  # nobody tears the group down while another process still talks to it
    finally:
        if created and dist.is_initialized():
            dist.destroy_process_group()


def process_device(device: str | None, group: ProcessGroup | None) -> str | None:
    """The device of this process: ``cuda:LOCAL_RANK`` for CUDA runs of several processes.

    With more processes than GPUs on a machine they share them round robin (``LOCAL_RANK`` modulo
    the device count), so two processes on one GPU both use ``cuda:0``.

    Raises:
        OptionError: a single fixed ``cuda:N`` for several processes (each needs its own device).
    """
    if group is None:
        return device
    if device is not None and device.startswith("cuda:"):
        raise OptionError(
            f"--device {device} names one GPU, but {group.world} processes each need their own; "
            "give --device cuda (process k uses cuda:k) or leave it out"
        )
    if device == "cuda" or (device is None and torch.cuda.is_available()):
        return f"cuda:{group.local_rank % max(1, torch.cuda.device_count())}"
    return device


def agree(group: ProcessGroup | None, error: BaseException | None) -> None:
    """Every process learns whether any process failed; all raise the first failure.

    Call it at the same point in every process, with the error this process met (or None).

    Raises:
        The process's own error, or an :class:`AttribkitError` carrying another process's message.
    """
    if group is None:
        if error is not None:
            raise error
        return
    import torch.distributed as dist

    messages: list[Any] = [None] * group.world
    dist.all_gather_object(messages, None if error is None else _message(error))
    failed = [(rank, m) for rank, m in enumerate(messages) if m is not None]
    if error is not None:
        raise error
    if failed:
        rank, message = failed[0]
        raise AttribkitError(f"process {rank} failed: {message}")


def gather_to_main(group: ProcessGroup, value: Any) -> list[Any] | None:
    """Collect one picklable value per process on the main process (None elsewhere)."""
    import torch.distributed as dist

    values: list[Any] | None = [None] * group.world if group.is_main else None
    dist.gather_object(value, values, dst=0)
    return values


def barrier(group: ProcessGroup | None) -> None:
    """Wait for every process (no-op for one)."""
    if group is not None:
        import torch.distributed as dist

        dist.barrier()


def _message(error: BaseException) -> str:
    return str(error) if isinstance(error, AttribkitError) else f"{type(error).__name__}: {error}"

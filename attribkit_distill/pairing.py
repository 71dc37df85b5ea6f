"""The student of ``attribkit distill`` and whether it reads text the way its teacher does.

A student made from the teacher's own layers shares its tokenizer. A student from another
checkpoint (``--student-from``, ``--student-init``) brings its own; when that tokenizer differs from
the teacher's, distillation runs across tokenizers: logits are compared as they are, attribution
maps on shared text units (:mod:`attribkit_distill.cross_tokenizer`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attribkit as ak
from attribkit_distill.students import narrow_student, student_from_layers, student_from_pretrained


def load_tokenizer(path_or_name: str) -> Any:
    """The tokenizer saved with a checkpoint (a folder or a hub name).

    Raises:
        OptionError: none can be read there.
    """
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(path_or_name)
    except Exception as exc:  # transformers raises OSError / ValueError variants
        raise ak.OptionError(f"cannot load a tokenizer from {path_or_name!r}: {str(exc).splitlines()[0]}") from None


def same_tokenizer(first: Any, second: Any) -> bool:
    """True when two tokenizers turn every text into the same ids: the same normaliser, pre-tokeniser, model
    (vocabulary), post-processor and added tokens. Padding and truncation settings, which a saved copy of the
    same tokenizer may differ in, do not count."""
    if first is second:
        return True
    one, two = (getattr(t, "backend_tokenizer", None) for t in (first, second))
    if one is not None and two is not None:
        import json

        pipelines = [json.loads(b.to_str()) for b in (one, two)]
        for pipeline in pipelines:
            pipeline.pop("padding", None)
            pipeline.pop("truncation", None)
        return bool(pipelines[0] == pipelines[1])
    return bool(first.get_vocab() == second.get_vocab() and type(first) is type(second))


def build_student(
    teacher: ak.Classifier | None,
    task: Any,
    *,
    student_init: str | None,
    student_layers: Sequence[int] | None,
    student_from: str | None,
    student_hidden: int | None,
    seed: int,
    device: str | None,
) -> ak.Classifier:
    """The student (model and tokenizer) that ``attribkit distill``'s student options describe.

    Args:
        teacher: The fine-tuned teacher; None when distilling from a teacher cache (the student then comes
            from ``student_from`` or ``student_init``).
        task: The GLUE task (label count and names, regression or not).
        student_init: A ready checkpoint to start from (its own tokenizer).
        student_layers: Layers to keep: of ``student_from`` when given, else of the teacher.
        student_from: A pre-trained checkpoint whose embeddings and layers make the student (fresh head).
        student_hidden: Narrow the width by weight selection.
        seed: Seeds the fresh head.
        device: Where the student lives.
    """
    import torch

    if student_from is not None:
        assert student_layers is not None  # checked by the command
        tokenizer = load_tokenizer(student_from)
        torch.manual_seed(seed)  # the fresh head
        model = student_from_pretrained(
            student_from,
            student_layers,
            num_labels=task.num_labels,
            hidden=student_hidden,
            labels=task.labels,
            regression=task.is_regression,
        ).to(ak.resolve_device(device) if teacher is None else teacher.device)
        return ak.Classifier(model, tokenizer)  # decoders without a padding token pad with end-of-text
    if student_layers is not None:
        if teacher is None:
            raise ak.OptionError("--student-layers without --student-from copies the teacher's layers: give --teacher")
        if student_hidden is not None:
            return ak.Classifier(narrow_student(teacher.model, student_layers, student_hidden), teacher.tokenizer)
        return ak.Classifier(student_from_layers(teacher.model, student_layers), teacher.tokenizer)
    assert student_init is not None  # exactly one of --student-init and --student-layers (checked by the command)
    return load_for_task(student_init, task, device, seed=seed)


def load_for_task(path: str, task: Any, device: str | None, *, seed: int) -> ak.Classifier:
    """A classifier with ``task``'s label count (a fresh head on a bare encoder) and label names.

    Args:
        path: Checkpoint folder or hub name.
        task: The GLUE task (label count and names, regression or not).
        device: Where the model lives.
        seed: Seeds the fresh head, so one seed gives one model (a teacher retrained bit for bit).
    """
    import torch

    torch.manual_seed(seed)
    clf = ak.load_classifier(path, device=device, num_labels=task.num_labels)
    if clf.num_labels != task.num_labels:
        raise ak.OptionError(f"{path} has {clf.num_labels} output(s) but {task.directory} needs {task.num_labels}")
    config = clf.model.config
    config.id2label = dict(enumerate(task.labels))
    config.label2id = {label: i for i, label in enumerate(task.labels)}
    config.problem_type = "regression" if task.is_regression else "single_label_classification"
    return ak.Classifier(clf.model, clf.tokenizer)  # re-read the label names

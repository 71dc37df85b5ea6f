"""Writing files so that they appear only when complete, quietly and with the usual permissions.

Imports only :mod:`attribkit.quiet` (itself import-free), so any module may use it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through ``path.partial``: the file appears only complete.

    When writing fails (read-only folder, full disk), the partial file is removed and the error
    (an ``OSError`` naming the file) propagates; nothing half-written is left behind.
    """
    target = Path(path)
    tmp = target.with_name(target.name + ".partial")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def save_model_files(obj: Any, folder: str | Path) -> Path:
    """``obj.save_pretrained(folder)`` without transformers' progress bar, files readable as the umask says.

    transformers writes ``model.safetensors`` with mode 0600 (a private temporary file renamed), so
    a model saved for others to load could not be read by them; here every file written gets the
    mode a normal file gets (``0666`` less the umask, e.g. 0644), like the config beside it.

    Args:
        obj: A model or tokenizer with ``save_pretrained``.
        folder: Where to write (created if missing).

    Returns:
        The folder.
    """
    from attribkit.quiet import quiet_transformers

    target = Path(folder)
    with quiet_transformers():
        obj.save_pretrained(target)
    umask = os.umask(0)
    os.umask(umask)
    for file in target.rglob("*"):
        if file.is_file():
            file.chmod(0o666 & ~umask)
    return target

"""Writing files so that they appear only when complete (no attribkit imports: any module may use it)."""

from __future__ import annotations

from pathlib import Path


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

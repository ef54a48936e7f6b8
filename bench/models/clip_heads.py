"""CLIP zero-shot heads: class names -> prompts -> the text tower -> one L2-normalised embedding per class.

A head is an `nn.Linear` over the image tower's L2-normalised embedding whose row j is class j's text embedding
(the mean of its prompts' normalised embeddings, normalised again: `open_clip.build_zero_shot_classifier`) times
`logit_scale.exp()`; so image embedding -> head is CLIP's zero-shot logits. A SigLIP-style model's `logit_bias`
(a scalar) is the head's bias; CLIP has none.

Templates: open_clip's SIMPLE_IMAGENET_TEMPLATES, 7 prompts open_clip ships as "a much smaller subset" of the 80
of OpenAI's published ImageNet protocol (OPENAI_IMAGENET_TEMPLATES), from OpenAI's prompt-engineering notebook.
The 80 are the published protocol but cost 11x the text encodes (80,000 for ImageNet's 1000 classes: hours on a
CPU; docs/backbones-clip.md has the figures); `TEMPLATES` names the set and every cached head records it.

Heads of a model with pretrained weights are cached beside its weights file, keyed by (arch, tag, template set,
class names): built once (by `prepare`, or the first cell that needs one), then read by every cell and rank.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Optional

import torch
from torch import nn

TEMPLATES = "simple"  # which of TEMPLATE_SETS every head uses
HEADS_DIR = "reprogbench-clip-heads"  # beside the weights file


def template_sets() -> dict[str, tuple]:
    from open_clip import OPENAI_IMAGENET_TEMPLATES, SIMPLE_IMAGENET_TEMPLATES

    return {"simple": SIMPLE_IMAGENET_TEMPLATES, "openai": OPENAI_IMAGENET_TEMPLATES}


def template_texts(name: str = TEMPLATES) -> list[str]:
    """The templates as text ('a photo of the small {}.'): what a cached head records and is keyed by."""
    return [template("{}") for template in template_sets()[name]]


def imagenet_class_names() -> tuple[str, ...]:
    from open_clip import IMAGENET_CLASSNAMES

    return tuple(IMAGENET_CLASSNAMES)


class TextTower:
    """An open_clip model's text side, kept outside the training graph: a plain attribute of the backbone, not a
    submodule, so it is never in a state dict, an optimizer or a device move; it only builds heads."""

    def __init__(self, model: nn.Module, tokenizer, arch: str, tag: Optional[str], cache_dir: Optional[Path]):
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.arch, self.tag = arch, tag
        self.cache_dir = cache_dir  # None: random weights, nothing worth caching

    def embeddings(self, class_names: tuple[str, ...], templates: str = TEMPLATES) -> torch.Tensor:
        """(classes, dim) L2-normalised class embeddings, as open_clip's zero-shot classifier computes them."""
        from open_clip import build_zero_shot_classifier

        classifier = build_zero_shot_classifier(self.model, self.tokenizer, list(class_names),
                                                template_sets()[templates], num_classes_per_batch=10)
        return classifier.T.contiguous()

    def head(self, class_names: tuple[str, ...], templates: str = TEMPLATES) -> nn.Linear:
        if not class_names:
            raise ValueError("a CLIP text head needs class names; this task has none")
        weight = self._cached(class_names, templates)
        if weight is None:
            weight = self.embeddings(class_names, templates)
            self._store(weight, class_names, templates)
        return linear_head(weight, self.model.logit_scale, getattr(self.model, "logit_bias", None))

    def _cache_file(self, class_names: tuple[str, ...], templates: str) -> Optional[Path]:
        if self.cache_dir is None:
            return None
        key = json.dumps([self.arch, self.tag, template_texts(templates), list(class_names)])
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        return self.cache_dir / f"{self.arch}-{self.tag}-{templates}-{len(class_names)}-{digest}.pt"

    def _cached(self, class_names: tuple[str, ...], templates: str) -> Optional[torch.Tensor]:
        path = self._cache_file(class_names, templates)
        if path is None or not path.is_file():
            return None
        saved = torch.load(path, map_location="cpu", weights_only=True)
        if saved["class_names"] != list(class_names) or saved["templates"] != template_texts(templates):
            return None  # a digest collision or a hand-edited file: rebuild rather than trust it
        return saved["weight"]

    def _store(self, weight: torch.Tensor, class_names: tuple[str, ...], templates: str) -> None:
        path = self._cache_file(class_names, templates)
        if path is None:
            return
        record = {"weight": weight, "class_names": list(class_names), "templates": template_texts(templates),
                  "arch": self.arch, "tag": self.tag}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # written whole, then renamed: ranks and cells building the same head never read half a file
            with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as f:
                torch.save(record, f)
            os.replace(f.name, path)
        except OSError:
            pass  # a read-only weights folder: the head is rebuilt next time, which costs time, not correctness


def linear_head(weight: torch.Tensor, logit_scale: torch.Tensor, logit_bias: Optional[torch.Tensor]) -> nn.Linear:
    """(classes, dim) normalised text embeddings -> a Linear giving CLIP's logits on normalised image embeddings."""
    head = nn.Linear(weight.shape[1], weight.shape[0], bias=logit_bias is not None)
    with torch.no_grad():
        head.weight.copy_(weight * logit_scale.detach().exp())
        if logit_bias is not None:
            head.bias.fill_(float(logit_bias))
    return head

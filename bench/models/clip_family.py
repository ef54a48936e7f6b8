"""`clip:<arch>/<pretrained>`: every open_clip model with a pretrained tag (`open_clip.list_pretrained()`), e.g.
`clip:ViT-B-32/openai`, `clip:RN50/openai`, `clip:ViT-B-16/laion2b_s34b_b88k`.

The backbone is CLIP's zero-shot classifier split where reprogramming needs it: body = the image tower
(`model.visual`) then L2 normalisation (`encode_image(normalize=True)`); head = a Linear whose rows are the
normalised text embeddings of ImageNet-1k's class prompts times `logit_scale.exp()` (bench.models.clip_heads).
So `backbone(x)` is CLIP's ImageNet zero-shot logits, the "source task" every label mapping reads, and
`backbone.text_head(class_names)` builds the same kind of head for a new task's classes (the `semantic` label
mapping). The text tower builds heads only: it is no part of the training graph.

What a name resolves to comes from open_clip's own configs, never typed here: the input size is the model
config's `vision_cfg.image_size`, mean/std are the pretrained tag's (`open_clip.get_pretrained_cfg`), and
QuickGELU is switched on where the tag was trained with it (open_clip warns, and computes something else, if
the architecture's config and the tag disagree). `weights: imagenet` loads the tag's weights (with the ImageNet
zero-shot head); without weights the model is randomly initialised and its 1000-class head is a random Linear
(building a text head from a random text tower would cost minutes for nothing).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from bench.models.backbone import Backbone, BackboneInfo
from bench.models.clip_heads import HEADS_DIR, TEMPLATES, TextTower, imagenet_class_names
from bench.models.clip_weights import ClipWeightsFile, pretrained_cfg
from bench.models.registry import BackboneFamily, Factory, register_backbone_family
from bench.models.weights import verified_weights_path
from bench.registry import UnknownName

LIST_TAGS = "`python -c 'import open_clip; print(open_clip.list_pretrained())'` lists (arch, tag) pairs"


class ImageEmbedding(nn.Module):
    """CLIP's image tower with its output L2-normalised: `encode_image(x, normalize=True)`."""

    def __init__(self, visual: nn.Module):
        super().__init__()
        self.visual = visual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.visual(x), dim=-1)


class ClipBackbone(Backbone):
    """A Backbone that can also build heads from class names, through a text tower it holds outside the graph."""

    def __init__(self, info: BackboneInfo, body: nn.Module, head: nn.Linear, text: TextTower):
        super().__init__(info, body, head)
        self.text = text  # a plain object, not a submodule (see TextTower)

    def text_head(self, class_names: tuple[str, ...]) -> nn.Linear:
        return self.text.head(tuple(class_names)).to(self.head.weight.device)


def parse(spec: str) -> tuple[str, str]:
    """'ViT-B-32/openai' -> ('ViT-B-32', 'openai'); UnknownName (one line) for anything open_clip does not know."""
    import open_clip

    arch, slash, tag = spec.partition("/")
    if not slash or not arch or not tag:
        raise UnknownName(f"CLIP backbones are named clip:ARCH/TAG (e.g. clip:ViT-B-32/openai), not clip:{spec}; "
                          f"{LIST_TAGS}")
    if open_clip.get_model_config(arch) is None:
        raise UnknownName(f"unknown open_clip architecture {arch!r} in clip:{spec}; {LIST_TAGS}")
    if not pretrained_cfg(arch, tag):
        tags = ", ".join(open_clip.list_pretrained_tags_by_model(arch)) or "none"
        raise UnknownName(f"open_clip has no pretrained tag {tag!r} for {arch} (clip:{spec}); its tags: {tags}")
    return arch, tag


def image_size(arch: str) -> int:
    import open_clip

    size = open_clip.get_model_config(arch)["vision_cfg"].get("image_size", 224)
    if isinstance(size, (list, tuple)):
        if len(set(size)) != 1:
            raise UnknownName(f"open_clip {arch} takes {size[0]}x{size[1]} images; only square inputs are supported")
        size = size[0]
    return int(size)


def clip_info(spec: str) -> BackboneInfo:
    from open_clip.transform import PreprocessCfg

    arch, tag = parse(spec)
    cfg, default = pretrained_cfg(arch, tag), PreprocessCfg()  # a tag without mean/std uses open_clip's default
    return BackboneInfo(
        f"clip:{spec}", input_size=image_size(arch), channels=3,
        mean=tuple(cfg.get("mean", default.mean)), std=tuple(cfg.get("std", default.std)), num_classes=1000,
        weights=("imagenet",), text_heads=True,
        description=f"open_clip {arch} ({tag} weights); head: ImageNet-1k zero-shot, {TEMPLATES} templates",
    )


def build_clip(info: BackboneInfo, weights: Optional[str], arch: str, tag: str) -> ClipBackbone:
    import open_clip

    # the local file, checked against its sha256, or one line naming `prepare` before anything is built
    path = verified_weights_path(info.name) if weights == "imagenet" else None
    forced_size = info.input_size if info.input_size != image_size(arch) else None
    quick_gelu = pretrained_cfg(arch, tag).get("quick_gelu", False)
    # pretrained_hf=False: never a Hugging Face text-tower download (open_clip 3 reads it as pretrained_text)
    model = open_clip.create_model(arch, pretrained=str(path) if path else None, force_quick_gelu=quick_gelu,
                                   force_image_size=forced_size, pretrained_image=False, pretrained_hf=False)
    body = ImageEmbedding(model.visual)
    model.visual = None  # the text tower keeps the rest; the image tower is the body's alone
    text = TextTower(model, open_clip.get_tokenizer(arch), arch, tag,
                     cache_dir=Path(path).parent / HEADS_DIR if path else None)
    if path is None:
        head = nn.Linear(open_clip.get_model_config(arch)["embed_dim"], info.num_classes)
    else:
        head = text.head(imagenet_class_names())
    return ClipBackbone(info, body, head, text)


def resolve(spec: str) -> tuple[BackboneInfo, Factory]:
    info = clip_info(spec)
    arch, tag = parse(spec)

    def factory(info: BackboneInfo, weights: Optional[str]) -> Backbone:
        return build_clip(info, weights, arch, tag)

    return info, factory


def weights(spec: str) -> ClipWeightsFile:
    arch, tag = parse(spec)
    return ClipWeightsFile(f"clip:{spec}", arch, tag)


def cache_imagenet_head(spec: str) -> None:
    """`prepare`'s last step: build the model once with its weights, which leaves the ImageNet zero-shot head in
    its cache beside the weights file, so no compute node encodes 1000 x 7 prompts."""
    build_clip(clip_info(spec), "imagenet", *parse(spec))


register_backbone_family(BackboneFamily(
    prefix="clip", resolve=resolve, weights=weights,
    description="open_clip CLIP models, ARCH/TAG as open_clip.list_pretrained() names them; ImageNet zero-shot head",
    example="clip:ViT-B-32/openai",
))

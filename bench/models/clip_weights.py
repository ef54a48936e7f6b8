"""open_clip pretrained weights as one local file: the Hugging Face hub file open_clip itself would download.

Every pretrained tag of open_clip (`open_clip.get_pretrained_cfg(arch, tag)`) names a Hugging Face hub repository
(`hf_hub`: `org/repo/` for open_clip's default file, or `org/repo/filename`), and open_clip prefers it to the
tag's `url` whenever huggingface_hub is installed (a dependency of open_clip). So the file lives where
`open_clip.create_model(arch, pretrained=tag)` on a machine with internet would put it: the Hugging Face hub
cache ($HF_HOME, $HF_HUB_CACHE, or `--weights-dir`), as a snapshot symlink to a blob named by the file's sha256,
which `bench.models.checksums` checks before anything loads it. Compute nodes only look the file up.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from bench.models import checksums
from bench.models.backbone import WeightsMissing
from bench.models.weights_caches import HubFile, hf_hub_cache


def pretrained_cfg(arch: str, tag: str) -> dict:
    """open_clip's own config of `arch` with weights `tag` (mean, std, hf_hub, quick_gelu, ...); {} if unknown."""
    import open_clip

    return open_clip.get_pretrained_cfg(arch, tag)


def hub_files(hf_hub: str) -> tuple[str, list[str]]:
    """`org/repo/[filename]` -> (repo, the files open_clip tries, in its order: safetensors first)."""
    from open_clip.constants import HF_WEIGHTS_NAME
    from open_clip.pretrained import _get_safe_alternatives

    repo, filename = os.path.split(hf_hub)
    filename = filename or HF_WEIGHTS_NAME
    return repo, [*_get_safe_alternatives(filename), filename]


@dataclass(frozen=True)
class ClipWeightsFile:
    """The `WeightsFile` (bench.models.weights) of `clip:<arch>/<tag>`."""

    name: str  # the backbone name, "clip:ARCH/TAG"
    arch: str
    tag: str

    def _hub(self) -> tuple[str, list[str]]:
        hf_hub = pretrained_cfg(self.arch, self.tag).get("hf_hub", "")
        if not hf_hub:  # none in open_clip 3.3; a later tag with a URL only would need open_clip's URL download
            raise WeightsMissing(f"open_clip tag {self.arch}/{self.tag} has no Hugging Face hub file; only hub "
                                 "files are supported (see docs/backbones-clip.md)")
        return hub_files(hf_hub)

    def _file(self) -> HubFile:
        """The hub file open_clip would fetch: the same cache lookup as every other hub file."""
        repo, files = self._hub()
        return HubFile(self.name, repo, tuple(files))

    def source(self) -> str:
        hub = self._file()
        return f"{hub.source()} ({' or '.join(hub.filenames)})"

    def host(self) -> str:
        """For `prepare`'s reachability probe: the hub's host (the source line is not a URL)."""
        return self._file().host()

    def local_path(self) -> Optional[Path]:
        return self._file().local_path()

    def download(self) -> Path:
        """Login-node step: fetch into the hub cache unless already there, as open_clip does (safetensors first),
        then build the ImageNet zero-shot head into its cache (bench.models.clip_heads)."""
        from open_clip.pretrained import download_pretrained_from_hf

        path = self.local_path()
        if path is None:
            hub = self._file()
            path = Path(download_pretrained_from_hf(hub.repo, filename=hub.filenames[-1],
                                                    cache_dir=str(hf_hub_cache())))
        checksums.check(path, self.name)
        from bench.models.clip_family import cache_imagenet_head  # imported here: clip_family imports this module

        cache_imagenet_head(self.name.removeprefix("clip:"))
        return path

    def cache_hint(self) -> str:
        return self._file().cache_hint()

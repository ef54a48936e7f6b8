"""The two caches PyTorch libraries download weights into, as `WeightsFile`s (bench.models.weights).

- `HubFile`: a file of a Hugging Face hub repository, in the hub cache ($HF_HOME, $HF_HUB_CACHE) exactly where
  `huggingface_hub.hf_hub_download` puts it (timm's weights; the blob is named by the file's sha256).
- `TorchHubFile`: a file behind a URL, in the torch hub cache ($TORCH_HOME/hub/checkpoints/<file name>) exactly
  where `torch.hub.load_state_dict_from_url` puts it (torchvision's weights, and timm's few not on the hub).

Both resolve their cache from the environment at call time (`use_weights_dir` changes it in-process), and
`local_path()` is a file-system lookup only: compute nodes never touch the network.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional
from urllib.parse import urlparse

import torch

HF_FILES = ("model.safetensors", "pytorch_model.bin")  # what timm looks for in a hub repo, in its order


def hf_hub_cache() -> Path:
    """The Hugging Face hub cache, resolved from the environment now (huggingface_hub reads it once, at import)."""
    explicit = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(os.path.expandvars(explicit)).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(os.path.expandvars(home)).expanduser() / "hub"


def hf_endpoint_host() -> str:
    """The host `hf_hub_download` talks to ($HF_ENDPOINT, e.g. a mirror, else huggingface.co)."""
    return urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"


@dataclass(frozen=True)
class HubFile:
    """The first of `filenames` that a Hugging Face hub repository has (timm tries safetensors, then the pickle)."""

    name: str
    repo: str
    filenames: tuple[str, ...] = HF_FILES

    def source(self) -> str:
        return f"Hugging Face hub {self.repo}"

    def host(self) -> str:
        return hf_endpoint_host()

    def local_path(self) -> Optional[Path]:
        from huggingface_hub import try_to_load_from_cache  # a file-system lookup: never touches the network

        for filename in self.filenames:
            found = try_to_load_from_cache(self.repo, filename, cache_dir=hf_hub_cache())
            if isinstance(found, str):  # not None, not the cached "does not exist" marker
                return Path(found)
        return None

    def download(self) -> Path:
        found = self.local_path()
        if found is not None:
            return found
        from huggingface_hub import hf_hub_download
        from huggingface_hub.utils import EntryNotFoundError, LocalEntryNotFoundError

        for filename in self.filenames:
            try:
                return Path(hf_hub_download(self.repo, filename, cache_dir=hf_hub_cache()))
            except EntryNotFoundError as e:  # the repo lacks this file: try the next, as timm does
                if isinstance(e, LocalEntryNotFoundError):  # no network is not "the repo lacks the file"
                    raise
        raise FileNotFoundError(f"Hugging Face hub repo {self.repo} has none of {', '.join(self.filenames)}")

    def cache_hint(self) -> str:
        return f"HF_HOME / HF_HUB_CACHE (looked in {hf_hub_cache()})"


@dataclass(frozen=True)
class TorchHubFile:
    """A weights URL, cached under its own file name in the torch hub cache."""

    name: str
    url: str

    def source(self) -> str:
        return self.url

    def host(self) -> str:
        return urlparse(self.url).hostname or ""

    def cache_path(self) -> Path:
        """Where torch hub caches it (honours $TORCH_HOME and `torch.hub.set_dir`, read now)."""
        return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(self.url).path)

    def local_path(self) -> Optional[Path]:
        path = self.cache_path()
        return path if path.is_file() else None

    def download(self) -> Path:
        path = self.cache_path()
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            # torchvision names each file <arch>-<first hex digits of its sha256>.pth: torch.hub checks that prefix
            torch.hub.download_url_to_file(self.url, str(path), hash_prefix=published_sha256_prefix(path),
                                           progress=True)
        return path

    def cache_hint(self) -> str:
        return f"TORCH_HOME (looked for {self.cache_path()})"


def published_sha256_prefix(path: Path) -> Optional[str]:
    """The sha256 prefix torchvision publishes in the file name (resnet18-f37072fd.pth -> f37072fd)."""
    match = torch.hub.HASH_REGEX.search(path.name)
    return match.group(1) if match else None

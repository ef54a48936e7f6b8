"""Pretrained weights as one file on local disk: where it is, where it comes from, how `prepare` fetches it.

Every backbone with pretrained weights, a short name (`resnet18`) or a library name (`timm:...`, `clip:...`,
`keras:...`), has one `WeightsFile`. Compute nodes only ever call `local_path()` (a file-system lookup); a login
node's `reprogbench prepare --weights NAME` calls `download()`, which checks the file against the hash its source
publishes (bench.models.checksums) before anything loads it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Protocol, runtime_checkable


@runtime_checkable
class WeightsFile(Protocol):
    name: str  # the backbone name it belongs to, as a grid writes it

    def source(self) -> str:
        """Where `download` fetches it from, in words (a URL or a hub repository)."""

    def local_path(self) -> Optional[Path]:
        """The file on this machine, or None; never touches the network."""

    def download(self) -> Path:
        """Login-node step: fetch into the local cache unless already there; returns the file."""

    def cache_hint(self) -> str:
        """The environment variable(s) that move the cache, for the one-line WeightsMissing message."""

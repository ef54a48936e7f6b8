"""Pretrained weights as one file on local disk: where it is, where it comes from, how `prepare` fetches it.

Every backbone with pretrained weights, a short name (`resnet18`) or a library name (`timm:...`, `clip:...`,
`keras:...`), has one `WeightsFile`. Compute nodes only ever call `local_path()` (a file-system lookup); a login
node's `reprogbench prepare --weights NAME` calls `download()`, which checks the file against the hash its source
publishes (bench.models.checksums) before anything loads it.

`weights_file(name)` is the one dispatch (a family's `weights(spec)`; a short name's alias); `weights_path`,
`weights_present`, `download_weights`, `weights_source`, `weights_host` and `verify_weights` are built on it, so
`prepare`, the preflight and grid availability treat every library alike. The two caches the PyTorch libraries
use are in bench.models.weights_caches.
"""
from __future__ import annotations

import os
from dataclasses import is_dataclass, replace
from pathlib import Path
from typing import Optional, Protocol, runtime_checkable
from urllib.parse import urlparse

from bench.models import checksums
from bench.models.backbone import WeightsMissing
from bench.registry import UnknownName


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
        """The environment variable(s) that move the cache, for the one-line WeightsMissing message; where it
        looked may follow in brackets ("TORCH_HOME (looked for /.../resnet18-f37072fd.pth)").

        Optional beyond the protocol: `host()`, the host `download` connects to, where `source()` is not a URL
        (a hub repository); `weights_host` parses `source()` otherwise."""


# --------------------------------------------------------------------------- one door for every backbone's file

WEIGHTS_ENV = "REPROGBENCH_WEIGHTS"


def weights_file(name: str) -> WeightsFile:
    """The weights file of `name`: a short name (an alias gets its family name's file) or `prefix:spec`.

    UnknownName (one line) for a name with no pretrained weights, listing the short names that have them.
    """
    from bench.models.registry import alias_of, family_of

    target = alias_of(name) or name
    found = family_of(target)
    weights = found[0].weights(found[1]) if found is not None else None
    if weights is None:
        raise UnknownName(f"no downloadable weights for {name!r}; known: {', '.join(weights_names())}, or a library "
                          f"name ({_family_examples()})")
    if target != name and is_dataclass(weights):
        weights = replace(weights, name=name)  # the name the grid wrote, for every message about it
    return weights


def _family_examples() -> str:
    from bench.models.registry import FAMILIES

    return ", ".join(FAMILIES.get(prefix).example for prefix in FAMILIES.names())


def weights_names() -> list[str]:
    """The short names with pretrained weights (library names are open-ended: `reprogbench ls --backbones`)."""
    from bench.models.registry import alias_of, family_of, list_backbones

    def has_weights(name: str) -> bool:
        alias = alias_of(name)
        if alias is None:
            return False
        family, spec = family_of(alias)  # type: ignore[misc]
        return family.weights(spec) is not None

    return [name for name in list_backbones() if has_weights(name)]


def weights_source(name: str) -> str:
    """Where `download_weights` fetches `name` from, in words (a URL or a hub repository)."""
    return weights_file(name).source()


def weights_host(name: str) -> str:
    """The host `download_weights` connects to, for `prepare`'s reachability probe."""
    weights = weights_file(name)
    host = getattr(weights, "host", None)  # optional: a hub file's host is not in its source's words
    return host() if callable(host) else urlparse(weights.source()).hostname or ""


def weights_path(name: str) -> Path:
    """The local weights file of `name`, or WeightsMissing (one line) naming the command that fetches it."""
    weights = weights_file(name)
    path = weights.local_path()
    if path is None:
        raise WeightsMissing(
            f"pretrained weights for {name} ({weights.source()}) are not on this machine; run "
            f"`reprogbench prepare --weights {name}` on a machine with internet (or set {weights.cache_hint()} "
            "to where they are)"
        )
    return path


def weights_present(name: str) -> bool:
    try:
        weights_path(name)
    except WeightsMissing:
        return False
    return True


def download_weights(name: str) -> Path:
    """Login-node step (`reprogbench prepare --weights NAME`): fetch into the local cache unless already there."""
    weights = weights_file(name)
    return weights.local_path() or weights.download()


def verify_weights(name: str) -> str:
    """Check the local file of `name` against the checksum its source publishes (`bench.models.checksums`); one line
    saying what was checked. Raises WeightsCorrupt (a ValueError) on a mismatch: a truncated or corrupt download."""
    return checksums.check(weights_path(name), name)


def verified_weights_path(name: str) -> Path:
    """What a factory loads: the local file, checked (WeightsMissing / WeightsCorrupt, one line, before any build)."""
    path = weights_path(name)
    checksums.check(path, name)
    return path


def use_weights_dir(folder: str | Path) -> None:
    """Keep every weights file under `folder` (torch hub's in folder/torch, Hugging Face's in folder/huggingface/hub,
    Keras's in folder/keras/models).

    The same folder given to `prepare` on a login node and to `run` on compute nodes (or exported as
    $REPROGBENCH_WEIGHTS, which Slurm jobs inherit) is all a shared filesystem needs.
    """
    folder = Path(folder).expanduser().resolve()
    os.environ[WEIGHTS_ENV] = str(folder)
    os.environ["TORCH_HOME"] = str(folder / "torch")  # torch.hub.get_dir() reads it on every call
    os.environ["HF_HUB_CACHE"] = str(folder / "huggingface" / "hub")  # hf_hub_cache() reads it on every call
    os.environ["KERAS_HOME"] = str(folder / "keras")  # bench.models.keras_apps reads it on every call

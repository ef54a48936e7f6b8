"""Weights files laid out as the real caches lay them out, for tests that must not download."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import safetensors.torch
import torch


def put_in_hf_cache(cache_root: Path, repo: str, filename: str, state_dict: dict) -> Path:
    """Lay a file out as huggingface_hub's cache does: refs/main -> snapshots/<commit>/<filename>, a symlink to
    blobs/<sha256 of the file>. Returns the snapshot path."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo_dir = cache_root / "hf" / "hub" / ("models--" + repo.replace("/", "--"))
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text(commit)
    snapshot, blobs = repo_dir / "snapshots" / commit, repo_dir / "blobs"
    snapshot.mkdir(parents=True)
    blobs.mkdir()
    staged = blobs / "incoming"
    if filename.endswith(".safetensors"):
        safetensors.torch.save_file({k: v.contiguous() for k, v in state_dict.items()}, staged)
    else:
        torch.save(state_dict, staged)
    blob = blobs / hashlib.sha256(staged.read_bytes()).hexdigest()
    staged.rename(blob)
    os.symlink(os.path.relpath(blob, snapshot), snapshot / filename)
    return snapshot / filename


def put_in_torch_hub(path: Path, state_dict: dict) -> Path:
    """A torchvision weights file as `reprogbench prepare` leaves one it verified: with its full sha256 pinned
    beside it (`bench.models.checksums`). A test's file cannot match the prefix torchvision publishes in the name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state_dict, path)
    path.with_name(path.name + ".sha256").write_text(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}\n")
    return path


def torch_hub_path(name: str) -> Path:
    """Where the torch hub cache keeps `name`'s weights file (under torchvision's file name), read from the
    environment now, as the loaders look it up."""
    from bench.models.weights import weights_file

    return weights_file(name).cache_path()

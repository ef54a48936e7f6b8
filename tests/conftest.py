"""Fixtures shared by test modules: empty weights caches, a network that refuses every connection, and the local
single-node Slurm cluster."""
from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

import huggingface_hub
import pytest
import timm
import torch


@pytest.fixture
def caches(tmp_path, monkeypatch):
    """Empty torch hub and Hugging Face caches under tmp_path (env restored afterwards, even if code changes it)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "REPROGBENCH_WEIGHTS"):
        monkeypatch.setenv(name, "")  # recorded first, so teardown also undoes what the code under test sets
        monkeypatch.delenv(name)
    hub = tmp_path / "torch" / "hub"
    old = torch.hub.get_dir()
    if old != str(hub):  # set_dir() was called earlier in this process: override it too
        torch.hub.set_dir(str(hub))
    yield tmp_path
    if old != str(hub):
        torch.hub.set_dir(old)


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to reach the network fails the test (what a compute node must never do)."""
    def refuse(*args, **kwargs):
        raise AssertionError("tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", refuse)
    monkeypatch.setattr(huggingface_hub.file_download, "hf_hub_download", refuse)
    for fn in ("load_state_dict_from_hf", "load_state_dict_from_url", "download_cached_file"):
        monkeypatch.setattr(timm.models._builder, fn, refuse)


@pytest.fixture
def offline(monkeypatch):
    """The network as on a compute node, or on this machine: every host name fails to resolve, at once."""
    def unresolvable(host, *args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", unresolvable)


CLUSTER = Path(__file__).resolve().parent.parent / "slurm" / "local-cluster"


@pytest.fixture(scope="session")
def slurm_cluster():
    """Starts the local cluster of slurm/local-cluster (installing slurm-wlm and munge if needed) once for the
    session; stops it afterwards unless it was already up before the tests."""
    was_up = subprocess.run(["sinfo", "-h"], capture_output=True, text=True).stdout.strip() != "" \
        if shutil.which("sinfo") else False
    started = subprocess.run([CLUSTER / "start"], capture_output=True, text=True, timeout=600)
    assert started.returncode == 0, f"could not start the local Slurm cluster:\n{started.stdout}\n{started.stderr}"
    yield
    if not was_up:
        subprocess.run([CLUSTER / "stop"], capture_output=True, text=True, timeout=120)

"""`reprogbench prepare` on paths that need no network, and the CLI's help staying true."""
from __future__ import annotations

import torch
import torchvision

from bench.models.torchvision_nets import imagenet_weights_path
from launch.cli import build_parser, main


def test_prepare_rejects_unknown_weights_before_doing_anything(tmp_path, capsys):
    assert main(["prepare", "digits", "--weights", "bogus", "--data-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bogus" in err[0] and "resnet18" in err[0]


def test_prepare_synthetic_dataset_needs_nothing(tmp_path, capsys):
    assert main(["prepare", "squares", "--data-root", str(tmp_path)]) == 0
    assert "nothing to prepare" in capsys.readouterr().err


def test_prepare_weights_already_cached_downloads_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    path = imagenet_weights_path("resnet18")
    assert str(path).startswith(str(tmp_path))
    path.parent.mkdir(parents=True)
    torch.save(torchvision.models.resnet18().state_dict(), path)
    before = path.stat().st_mtime_ns

    def no_network(*args, **kwargs):
        raise AssertionError("prepare tried to download weights that were already cached")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    assert main(["prepare", "--weights", "resnet18"]) == 0
    assert str(path) in capsys.readouterr().out
    assert path.stat().st_mtime_ns == before


def test_every_subcommand_has_help():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == {"run", "ls", "cell", "prepare"}
    for name, sp in sub.choices.items():
        assert sp.format_help().strip(), name

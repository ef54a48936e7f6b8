"""`reprogbench prepare` on paths that need no network, and the CLI's help staying true."""
from __future__ import annotations

from launch.cli import build_parser, main


def test_prepare_rejects_unknown_weights_before_doing_anything(tmp_path, capsys):
    assert main(["prepare", "digits", "--weights", "bogus", "--data-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bogus" in err[0] and "resnet18" in err[0]


def test_prepare_synthetic_dataset_needs_nothing(tmp_path, capsys):
    assert main(["prepare", "squares", "--data-root", str(tmp_path)]) == 0
    rows = capsys.readouterr().out.splitlines()[2:-1]  # the table's rows, before the summary line
    assert len(rows) == 1 and rows[0].split()[:3] == ["dataset", "squares", "present"] and "generated" in rows[0]
    assert not any(tmp_path.iterdir())  # nothing fetched, nothing written


def test_every_subcommand_has_help():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == {"run", "ls", "cell", "status", "prepare", "bench", "report", "ui", "sweep", "sync",
                                "export"}
    for name, sp in sub.choices.items():
        assert sp.format_help().strip(), name


def test_bench_rejects_an_unknown_measurement_in_one_line(tmp_path, capsys):
    out = tmp_path / "B.md"
    assert main(["bench", "--only", "frozen", "--only", "warp_drive", "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "warp_drive" in err[0] and "linear_probe" in err[0]
    assert not out.exists()


def test_bench_measures_and_appends_a_markdown_section(tmp_path, capsys):
    out = tmp_path / "BENCHMARKS.md"
    out.write_text("# Benchmarks\n\nearlier figures stay.\n")
    for _ in range(2):  # appended, never overwritten
        assert main(["bench", "--device", "cpu", "--quick", "--only", "frozen", "--output", str(out)]) == 0
    text = out.read_text()
    assert text.startswith("# Benchmarks\n\nearlier figures stay.\n")
    assert text.count("## `reprogbench bench` runs") == 1
    assert text.count("#### ar step: frozen vs naive backbone") == 2
    assert text.count(f"`reprogbench bench --device cpu --quick --only frozen --output {out}`") == 2
    assert "device cpu" in text
    ratio_lines = [line for line in text.splitlines() if line.startswith("**ratio:")]
    assert len(ratio_lines) == 2 and all(float(line.split()[1].rstrip("x")) > 0 for line in ratio_lines)
    assert "| frozen" in text and "| naive" in text
    assert "ratio:" in capsys.readouterr().out

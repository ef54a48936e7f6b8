"""`reprogbench report` and `reprogbench ui` on results made by running a tiny grid through the real CLI: the
thesis's Table 3.1 beside our run of one of its rows, the efficiency and time-to-accuracy tables recomputed
here from the records, the PNGs, the records' energy, and the runs, parents and artifacts through the REST
API of a real MLflow server on loopback."""
from __future__ import annotations

import csv
import statistics
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from cli_helper import cli, cli_popen
from fixtures_data import write_mnist_idx
from mlflow_servers import free_port, get_json, stop, wait_for

from bench.energy import open_meter
from bench.files import cell_dir
from bench.grid import load_grid
from bench.record import CellRecord, read_record
from bench.track import PARENT_RUN, RUN_KIND
from bench.track_names import epoch_name, final_name
from launch.cli import main

# A Fashion-MNIST original (Debian's real files, cut to 600 training images) reprogrammed for MNIST 0/1: the
# thesis's Table 3.1 row fashion_mnist -> mnist_01 (43.83%), beside a linear probe and from scratch.
GRID = """
name: report_tiny
reference: thesis_table_3_1
originals:
  - {backbone: test_tinycnn, trained_on: fashion_mnist, hparams: {epochs: 2}, method_params: {ar: {input_size: 8}}}
tasks: [mnist_01]
methods:
  - {name: ar, hparams: {lr: 0.05}}
  - {name: linear_probe}
  - {name: scratch}
hparams: {batch_size: 64, epochs: 3}
split: {max_train: 600}
seeds: [0, 1]
"""
INTENSITY = 200.0  # g CO2e / kWh, given on the command line
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"




@pytest.fixture(scope="module")
def reported(tmp_path_factory):
    """Seed 0 of every cell, then seed 1 of scratch only: ar and linear_probe seed 1 stay missing."""
    root = tmp_path_factory.mktemp("report")
    grid_path = root / "report_tiny.yaml"
    grid_path.write_text(GRID)
    data, results = root / "data", root / "results"
    write_mnist_idx(data, n_train=600, n_test=200)
    common = ["--results", results, "--data-root", data]
    for filters in (["--filter", "seed=0"], ["--filter", "seed=1", "--filter", "method=scratch"]):
        proc = cli("run", grid_path, *common, *filters)
        assert proc.returncode == 0, proc.stderr[-3000:]
    report = cli("report", grid_path, *common, "--carbon-intensity", INTENSITY)
    grid = load_grid(grid_path, data_root=data)
    return {"grid": grid, "grid_path": grid_path, "results": results, "data": data, "proc": report,
            "out": results / "report_tiny" / "report"}


def records(run) -> dict:
    """cell method + seed -> record, for the cells that ran."""
    out = {}
    for cell in run["grid"].cells:
        record = read_record(cell_dir(run["results"], "report_tiny", cell.cell_id))
        if record:
            out[(cell.method, cell.seed)] = record
    return out


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def row_of(rows: list[dict], method: str) -> dict:
    (row,) = [r for r in rows if r["method"].split("[")[0] == method]
    return row


def compute_h(record: CellRecord) -> float:
    return record.compute.cpu_s / 3600  # a CPU cell: its process's CPU time (bench.cpu_usage)


@pytest.mark.slow
def test_report_runs_and_says_what_it_read(reported):
    proc = reported["proc"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "report_tiny: 7 cells: 5 done, 0 failed, 2 pending (missing)" in proc.stdout
    assert "logged as artifacts of MLflow run" in proc.stdout
    out = reported["out"]
    for name in ("report.md", "report.html", "efficiency_mnist_01.csv", "time_to_accuracy_mnist_01.csv",
                 "thesis_table_3_1.csv", "thesis_original_models.csv", "originals.csv"):
        assert (out / name).is_file(), name


@pytest.mark.slow
def test_efficiency_rows_are_computed_from_the_records(reported):
    recs = records(reported)
    rows = read_csv(reported["out"] / "efficiency_mnist_01.csv")
    assert sorted(r["method"].split("[")[0] for r in rows) == ["ar", "linear_probe", "scratch"]
    scratch_rows = [recs[("scratch", 0)], recs[("scratch", 1)]]
    scratch = row_of(rows, "scratch")
    scratch_acc = [r.metrics.test_acc for r in scratch_rows]
    assert scratch["seeds"] == "done 2/2"
    assert int(scratch["test acc % n"]) == 2
    assert float(scratch["test acc %"]) == pytest.approx(statistics.fmean(scratch_acc))
    assert float(scratch["test acc % sd"]) == pytest.approx(statistics.stdev(scratch_acc))
    scratch_compute = statistics.fmean(compute_h(r) for r in scratch_rows)
    scratch_energy = statistics.fmean(r.energy.joules for r in scratch_rows)
    for method in ("ar", "linear_probe"):
        row, rec = row_of(rows, method), recs[(method, 0)]
        assert row["seeds"] == "done 1/2, 1 pending"  # seed 1 is shown as missing, not dropped
        assert int(row["test acc % n"]) == 1 and row["test acc % sd"] == ""
        assert float(row["test acc %"]) == pytest.approx(rec.metrics.test_acc)
        gain = rec.metrics.test_acc - statistics.fmean(scratch_acc)
        assert float(row["Δ vs scratch (points)"]) == pytest.approx(gain)
        assert float(row["wall-clock s"]) == pytest.approx(rec.timing.total_s)
        assert float(row["compute"]) == pytest.approx(compute_h(rec)) and row["unit"] == "CPU core-h"
        assert float(row["train images"]) == rec.throughput.train_images
        assert float(row["trainable params"]) == rec.parameters.trainable
        assert float(row["energy J"]) == pytest.approx(rec.energy.joules)
        assert row["energy source"] == rec.energy.source
        assert float(row["CO2 g"]) == pytest.approx(rec.energy.joules / 3.6e6 * INTENSITY)
        assert float(row["compute ÷ scratch"]) == pytest.approx(compute_h(rec) / scratch_compute)
        assert float(row["energy ÷ scratch"]) == pytest.approx(rec.energy.joules / scratch_energy)
        assert float(row["points gained per device-h"]) == pytest.approx(gain / compute_h(rec))
        assert (row["g CO2 per point gained"] == "") == (gain <= 0)  # only where accuracy was gained


def first_epoch_reaching(record: CellRecord, threshold: float):
    return next((h for h in record.history if h.val_acc >= threshold), None)


@pytest.mark.slow
def test_time_to_accuracy_is_read_from_the_epochs(reported):
    recs = records(reported)
    threshold = statistics.fmean(recs[("scratch", s)].metrics.val_acc for s in (0, 1))
    rows = read_csv(reported["out"] / "time_to_accuracy_mnist_01.csv")
    for method, seeds in (("ar", [0]), ("linear_probe", [0]), ("scratch", [0, 1])):
        row = row_of(rows, method)
        hits = [h for h in (first_epoch_reaching(recs[(method, s)], threshold) for s in seeds) if h]
        assert row["reached"] == f"{len(hits)}/{len(seeds)} seed(s) ≥ {threshold:.2f}%"
        if hits:
            assert float(row["epoch"]) == pytest.approx(statistics.fmean(h.epoch for h in hits))
            assert float(row["wall-clock s"]) == pytest.approx(statistics.fmean(h.elapsed_s for h in hits))
            assert float(row["energy J"]) == pytest.approx(statistics.fmean(h.energy_j for h in hits))
        else:
            assert row["epoch"] == row["wall-clock s"] == ""


@pytest.mark.slow
def test_the_thesis_table_has_every_row_with_ours_beside_the_one_we_ran(reported):
    recs = records(reported)
    rows = read_csv(reported["out"] / "thesis_table_3_1.csv")
    assert len(rows) == 10  # every row of Table 3.1, in its order
    assert (rows[0]["original"], rows[0]["new task"]) == ("imagenet", "mnist")
    ours = [r for r in rows if (r["original"], r["new task"]) == ("fashion_mnist", "mnist_01")]
    assert len(ours) == 1
    row, ar = ours[0], recs[("ar", 0)]
    assert float(row["thesis test %"]) == 43.83 and float(row["thesis train %"]) == 42.82
    assert float(row["ours test %"]) == pytest.approx(ar.metrics.test_acc)
    assert float(row["ours train %"]) == pytest.approx(ar.metrics.train_acc)
    assert float(row["Δ test (ours − thesis)"]) == pytest.approx(ar.metrics.test_acc - 43.83)
    assert row["status"] == "done 1/2, 1 pending" and len(row["cells"].split()) == 2
    others = [r for r in rows if r is not row]
    assert all(r["status"] == "missing: no cell of this grid" and r["ours test %"] == "" for r in others)

    (original,) = read_csv(reported["out"] / "thesis_original_models.csv")  # only the original this grid makes
    assert original["original model"] == "fashion_mnist" and float(original["thesis test %"]) == 89.40
    assert float(original["ours test %"]) == pytest.approx(recs[("pretrain", 0)].metrics.test_acc)
    (cost,) = read_csv(reported["out"] / "originals.csv")
    assert float(cost["wall-clock s"]) == pytest.approx(recs[("pretrain", 0)].timing.total_s)
    assert cost["reused by (cells)"] == "4"  # ar and linear_probe, two seeds each


@pytest.mark.slow
def test_the_pictures_are_png_images_and_the_html_page_shows_them_with_the_tables(reported):
    import matplotlib.image

    out = reported["out"]
    pictures = {"accuracy_vs_compute_mnist_01.png", "learning_curves_mnist_01.png", "thesis_table_3_1_bars.png"}
    assert {p.name for p in out.glob("*.png")} == pictures
    page = (out / "report.html").read_text()
    markdown = (out / "report.md").read_text()
    for name in pictures:
        data = (out / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5_000
        image = matplotlib.image.imread(out / name)
        assert image.shape[0] > 200 and image.shape[1] > 300 and image.std() > 0.01  # drawn, not blank
        assert f'<img src="{name}"' in page and f"]({name})" in markdown
    assert page.count("<table>") == 6  # thesis, footnotes, efficiency + ratios, time, originals
    for title in ("Thesis Table 3.1", "Efficiency against from-scratch: new task mnist_01",
                  "Time to the from-scratch accuracy", "Original models"):
        assert title in page and title in markdown
    assert f"{INTENSITY:g} g CO2e/kWh (--carbon-intensity" in page


@pytest.mark.slow
def test_every_record_carries_the_energy_this_machine_can_measure(reported):
    for rec in records(reported).values():
        energy = rec.energy
        expected = open_meter("cpu", threads=rec.environment.torch_threads)
        expected.close()
        assert energy.source == expected.source  # estimate here (no RAPL on the VM), rapl where readable
        assert energy.estimate == (expected.source == "estimate") and energy.ranks == 1
        assert energy.joules > 0
        if energy.estimate:  # the stated power over exactly the timed phases
            assert energy.watts == expected.describe()["watts"]
            assert energy.joules == pytest.approx(energy.watts * rec.timing.total_s,
                                                     abs=energy.watts * 5e-4 + 1e-3)
        per_epoch = [h.energy_j for h in rec.history]
        assert per_epoch == sorted(per_epoch) and per_epoch[-1] <= energy.joules + 1e-9


@pytest.mark.slow
def test_a_real_mlflow_server_shows_the_runs_their_launch_parents_and_the_report(reported, tmp_path):
    port = free_port()
    db = reported["results"] / "mlflow.db"
    mlflow = Path(sys.executable).parent / "mlflow"
    server = subprocess.Popen([str(mlflow), "server", "--host", "127.0.0.1", "--port", str(port),
                               "--backend-store-uri", f"sqlite:///{db}"], cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(f"{base}/health", server)
        experiment = get_json(f"{base}/api/2.0/mlflow/experiments/get-by-name?experiment_name=report_tiny")
        runs = get_json(f"{base}/api/2.0/mlflow/runs/search",
                        {"experiment_ids": [experiment["experiment"]["experiment_id"]], "max_results": 1000})["runs"]
        tags = {r["info"]["run_id"]: {t["key"]: t["value"] for t in r["data"].get("tags", [])} for r in runs}
        launches = {i for i, t in tags.items() if t.get(RUN_KIND) == "grid_launch"}
        reports = [i for i, t in tags.items() if t.get(RUN_KIND) == "report"]
        cells = {i: t for i, t in tags.items() if "cell_id" in t}
        assert len(launches) == 2 and len(reports) == 1  # two `run` commands, one report
        assert sorted(t["cell_id"] for t in cells.values()) == sorted(r.cell_id for r in records(reported).values())
        assert all(t[PARENT_RUN] in launches for t in cells.values())
        assert len({t[PARENT_RUN] for t in cells.values()}) == 2  # each cell under the launch that ran it

        by_id = {r["info"]["run_id"]: r for r in runs}
        params = {i: {p["key"]: p["value"] for p in by_id[i]["data"].get("params", [])} for i in cells}
        metrics = {i: {m["key"] for m in by_id[i]["data"].get("metrics", [])} for i in cells}
        for run_id, t in cells.items():
            figure = {"pretrain": "89.4", "ar": "43.83"}.get(t["method"])
            assert params[run_id].get("thesis.test_acc") == figure  # the thesis figure where it reports one
            assert t["method"] in by_id[run_id]["info"]["run_name"]  # led by the task (bench.track_names)
        common = set.intersection(*metrics.values())  # the same names across methods: comparable in the UI
        finals = {final_name(k) for k in ("test_acc", "best_val_acc", "total_s", "energy_j", "train_images",
                                          "trainable_params")}
        assert finals | {epoch_name("val_acc"), epoch_name("train_acc")} <= common

        listed = get_json(f"{base}/api/2.0/mlflow/artifacts/list?run_id={reports[0]}&path=report")
        files = {f["path"]: f for f in listed["files"]}
        for name in ("accuracy_vs_compute_mnist_01.png", "learning_curves_mnist_01.png",
                     "thesis_table_3_1_bars.png", "report.html", "efficiency_mnist_01.csv"):
            assert int(files[f"report/{name}"]["file_size"]) > 0
    finally:
        stop(server)


@pytest.mark.slow
def test_ui_starts_the_mlflow_ui_on_loopback_and_prints_the_runs_url(reported):
    port = free_port()
    proc = cli_popen("ui", reported["grid_path"], "--results", reported["results"], "--data-root", reported["data"],
                     "--port", port, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        line = proc.stdout.readline()  # printed once the server answers
        from mlflow.tracking import MlflowClient

        experiment = MlflowClient(f"sqlite:///{reported['results'] / 'mlflow.db'}").get_experiment_by_name(
            "report_tiny")
        assert line.startswith(f"MLflow UI: http://127.0.0.1:{port}/#/experiments/{experiment.experiment_id}/runs")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as response:
            assert response.status == 200
    finally:
        stop(proc)
    assert proc.returncode == 0


# --------------------------------------------------------------------------- without running anything


def test_an_empty_results_folder_gives_the_thesis_table_with_every_cell_missing(tmp_path, capsys):
    results = tmp_path / "results"
    assert main(["report", "thesis_table_5_1_pytorch", "--results", str(results)]) == 0
    grid = load_grid("thesis_table_5_1_pytorch")
    out = results / "thesis_table_5_1_pytorch" / "report"
    rows = read_csv(out / "thesis_table_5_1.csv")
    assert len(rows) == 18  # nine rows of Table 5.1 on each of the two datasets
    ours = [r for r in rows if r["cells"]]
    assert sorted(c for r in ours for c in r["cells"].split()) == sorted(c.cell_id for c in grid.cells)
    assert all(r["status"] == "missing (1 pending)" and r["ours test %"] == "" for r in ours)
    not_run = [r for r in rows if not r["cells"]]
    assert {r["backbone"] for r in not_run} == set(grid.not_run) and len(not_run) == 4
    assert all(r["status"].startswith("not run: ") and r["thesis test %"] for r in not_run)
    assert {float(r["thesis test %"]) for r in rows if r["backbone"] == "from_scratch"} == {38.95, 3.63}
    assert (out / "thesis_table_5_1_bars.png").read_bytes().startswith(PNG_MAGIC)
    assert not list(out.glob("accuracy_vs_compute_*.png"))  # nothing finished: nothing to place
    assert [p.name for p in results.iterdir()] == ["thesis_table_5_1_pytorch"]  # no MLflow store created
    printed = capsys.readouterr().out
    assert "14 cells: 0 done, 0 failed, 14 pending (missing)" in printed  # the terminal: a compact summary
    assert f"report: {out / 'report.html'}" in printed and "NASNetMobile" in (out / "report.md").read_text()


def test_the_keras_table_has_each_backbone_as_published_and_with_its_own_preprocessing(tmp_path):
    results = tmp_path / "results"
    assert main(["report", "thesis_table_5_1", "--results", str(results)]) == 0
    rows = read_csv(results / "thesis_table_5_1" / "report" / "thesis_table_5_1.csv")
    assert len(rows) == 34 and all(r["cells"] for r in rows)  # 8 backbones x 2 preprocessings + scratch, x 2 tasks
    vgg16 = [r for r in rows if r["backbone"] == "VGG16" and r["thesis test %"] == "71.14"]
    assert sorted(r["ours"] for r in vgg16) == ["linear_probe keras:VGG16",
                                                "linear_probe keras:VGG16[preprocessing=thesis]"]


@pytest.mark.parametrize("args, needle", [
    (["report", "no_such_grid"], "no such grid file, and not a shipped grid"),
    (["report", "demo", "--format", "md,pdf"],
     "unknown format 'pdf'; give a comma-separated list of md, html, csv, parquet"),
    (["report", "demo", "--carbon-intensity", "-5"], "is negative"),
    (["report", "demo", "--tracking-uri", "sqlite:////nonexistent/mlflow.db"], "no such file"),
    (["ui", "demo"], "no MLflow store at"),
])
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, capsys, args, needle):
    results = tmp_path / "results"
    assert main([*args, "--results", str(results)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("reprogbench: error: ") and needle in err[0], err
    assert not results.exists()


def test_an_unreadable_store_is_one_line_naming_the_fix(tmp_path, capsys):
    results = tmp_path / "results"
    results.mkdir()
    (results / "mlflow.db").write_bytes(b"not a database" * 100)
    assert main(["report", "demo", "--results", str(results)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot be read" in err[0] and "--no-tracking" in err[0]
    assert [p.name for p in results.iterdir()] == ["mlflow.db"]  # no report written
    assert main(["report", "demo", "--results", str(results), "--no-tracking", "--format", "md"]) == 0


def test_the_pareto_front_keeps_what_nothing_cheaper_beats():
    from analysis.plots import pareto_front

    points = [(2.0, 40.0), (1.0, 50.0), (3.0, 90.0), (0.5, 10.0), (4.0, 90.0), (3.0, 60.0)]
    assert pareto_front(points) == [(0.5, 10.0), (1.0, 50.0), (3.0, 90.0)]


def test_figures_across_seeds_are_mean_sample_sd_and_count():
    from analysis.stats import summarize

    stat = summarize([1.0, 2.0, None, 4.0])
    assert (stat.mean, stat.n) == (pytest.approx(7 / 3), 3)
    assert stat.sd == pytest.approx(statistics.stdev([1.0, 2.0, 4.0]))
    assert summarize([5.0]).sd is None and summarize([None]) is None


# --------------------------------------------------------------------------- a grid beside its variant

AS_RAN = """
name: t51_as_ran
reference: thesis_table_5_1
originals:
  - {backbone: test_tinycnn, methods: [scratch]}
tasks: [caltech101_thesis, caltech256_reduced]
methods: [{name: scratch}]
"""
VARIANT = """
name: t51_variant
reference: thesis_table_5_1
compare_with: thesis_table_5_1
differs: ["Caltech-101: all 101 classes (the thesis dropped five)"]
originals:
  - {backbone: test_tinycnn, methods: [scratch]}
tasks: [caltech101]
methods: [{name: scratch}]
"""


def _done(grid, test_acc: dict) -> list:
    """Each cell of the grid as done with the given test accuracy for its task: records, no training (built
    unvalidated: a real done record also needs timing, throughput, parameters and environment, unread here)."""
    from analysis.results import CellResult, group_setups
    from bench.record import Metrics

    return group_setups([CellResult(c, "done", CellRecord.model_construct(
        cell_id=c.cell_id, grid=grid.name, status="done", metrics=Metrics(test_acc=test_acc[c.task], train_acc=90.0)),
        "record") for c in grid.cells if c.task in test_acc])


def test_the_as_ran_grid_and_its_variant_sit_beside_the_same_published_figure(tmp_path):
    from analysis.thesis import compare, side_by_side

    (tmp_path / "a.yaml").write_text(AS_RAN)
    (tmp_path / "v.yaml").write_text(VARIANT)
    as_ran, variant = load_grid(tmp_path / "a.yaml"), load_grid(tmp_path / "v.yaml")
    assert variant.compare_with == "thesis_table_5_1" and variant.differs[0].startswith("Caltech-101: all 101")
    # 40.0 on the thesis's 97 classes, 50.0 on all 101: both against Table 5.1's Caltech-101 figure, 38.95
    a = compare(as_ran, _done(as_ran, {"caltech101_thesis": 40.0, "caltech256_reduced": 5.0}))
    v = compare(variant, _done(variant, {"caltech101": 50.0}))
    table = side_by_side(as_ran.name, a, variant, v)
    names = [c.name for c in table.columns]
    scratch = {(r[names.index("backbone")], r[names.index("new task")]): r for r in table.rows
               if r[names.index("backbone")] == "from_scratch"}
    c101 = scratch[("from_scratch", "caltech101_thesis")]
    assert c101[names.index("thesis test %")] == 38.95
    assert c101[names.index("t51_as_ran test %")].mean == 40.0
    assert c101[names.index("t51_as_ran Δ test")] == pytest.approx(40.0 - 38.95)
    assert c101[names.index("t51_variant test %")].mean == 50.0
    assert c101[names.index("t51_variant Δ test")] == pytest.approx(50.0 - 38.95)
    c256 = scratch[("from_scratch", "caltech256_reduced")]  # the variant has no Caltech-256 cell: said so
    assert c256[names.index("t51_as_ran Δ test")] == pytest.approx(5.0 - 3.63)
    assert c256[names.index("t51_variant: ours")] == "missing: no cell of this grid"
    assert c256[names.index("t51_variant test %")] is None
    assert any("differs from thesis_table_5_1: Caltech-101: all 101 classes" in n for n in table.notes)


def test_the_shipped_table_5_1_report_shows_the_corrected_grid_beside_it_and_what_differs(tmp_path):
    from analysis.report import paired_grid

    as_ran, corrected = load_grid("thesis_table_5_1"), load_grid("thesis_table_5_1_corrected")
    assert paired_grid(as_ran).name == "thesis_table_5_1_corrected" and paired_grid(corrected).name == as_ran.name
    assert corrected.compare_with == "thesis_table_5_1" and len(corrected.differs) == 3
    assert [d.split(":")[0] for d in corrected.differs] == ["MobileNet", "Caltech-101", "from-scratch baseline"]
    results = tmp_path / "results"
    assert main(["report", "thesis_table_5_1", "--results", str(results)]) == 0
    md = (results / "thesis_table_5_1" / "report" / "report.md").read_text()
    assert "thesis_table_5_1 beside thesis_table_5_1_corrected" in md
    assert all(d in md for d in corrected.differs)
    assert "rows with a result: thesis_table_5_1 0, thesis_table_5_1_corrected 0" in md


@pytest.mark.parametrize("extra, needle", [
    ("compare_with: no_such_grid\ndiffers: [x]\n", "compare_with: unknown shipped grid 'no_such_grid'"),
    ("compare_with: thesis_table_5_1\n", "compare_with: 'thesis_table_5_1' needs `differs:`"),
    ("differs: [x]\n", "differs: says what differs from another grid; name that grid in `compare_with`"),
])
def test_a_variant_names_a_shipped_grid_and_says_what_differs(tmp_path, capsys, extra, needle):
    path = tmp_path / "v.yaml"
    path.write_text(AS_RAN + extra)
    assert main(["ls", str(path)]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1


def test_later_work_rows_say_where_our_recipe_differs_from_the_papers(tmp_path):
    from analysis.results import group_setups, load_results
    from analysis.thesis import compare, thesis_tables

    grid = load_grid("methods", data_root=tmp_path)
    cells = [c for c in grid.unprepared if c.backbone == "resnet18" and c.task == "cifar10"]
    compared = compare(grid, group_setups(load_results(grid, cells, tmp_path / "results", None)))
    table = next(t for t in thesis_tables(grid, compared) if t.slug == "later_work")
    headers = [c.name for c in table.columns]
    rows = [dict(zip(headers, r, strict=True)) for r in table.rows]
    ilm = {r["ours"]: r["recipe (ours vs paper)"] for r in rows if r["work"] == "ILM-VP (CVPR 2023)" and r["ours"]}
    # the suite's recipe beside ILM-VP's figure is marked with what differs; the like-for-like cell is not
    assert sorted(ilm.values()) == [
        "as published",
        "epochs 10 vs 200; lr 0.05 vs 0.01; schedule constant vs multistep 100/144 x0.1; lam 0.0001 vs 0"]
    autovp = {r["ours"]: r["recipe (ours vs paper)"] for r in rows if r["work"] == "AutoVP (ICLR 2024)"}
    # its layout (pad_width 88) and the recipe AutoVP's code states; what it does not state is said, not matched
    assert autovp == {"ar[epochs=200,label_map=learned,lam=0.0,pad_width=88,program=pad] resnet18":
                      "as published (optimizer, schedule not stated)"}
    assert any("not like for like" in n for n in table.notes)


def test_before_prepare_each_waiting_cell_is_beside_the_figure_with_its_recipe(tmp_path):
    from analysis.thesis import compare, thesis_tables
    from bench.reference import method_value

    grid = load_grid("methods", data_root=tmp_path)  # no ImageNet weights here: every ResNet cell waits
    table = next(t for t in thesis_tables(grid, compare(grid, [])) if t.slug == "later_work")
    headers = [c.name for c in table.columns]
    rows = [dict(zip(headers, r, strict=True)) for r in table.rows if r[0] == "ILM-VP (CVPR 2023)"]
    want = {c.cell_id for c in grid.unprepared if c.backbone == "resnet18" and c.method == "ar"
            and method_value(c, "program") == "canvas" and method_value(c, "label_map") == "iterative"
            and method_value(c, "input_size") is None}
    assert len(want) == 4 and {r["cells"] for r in rows} == want  # two recipes x CIFAR-10/100
    assert all(r["status"].startswith("not prepared") for r in rows)
    assert sorted(r["recipe (ours vs paper)"] for r in rows)[:2] == ["as published"] * 2

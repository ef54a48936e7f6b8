"""What a researcher sees in MLflow, checked on a real store made by real runs: the URL `run`, its rerun and `ui`
print opens the experiment's cells flat and sorted by test accuracy (asked of the real MLflow UI's REST API with
the URL's own filter and order); run names lead with what tells cells apart."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from cli_helper import cli, cli_popen
from mlflow_servers import free_port, get_json, stop

from bench.files import cell_dir
from bench.grid import load_grid
from bench.record import read_record
from bench.track_runs import RUN_KIND

URL = re.compile(r"(http://\S+/#/experiments/\S+)")


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    """Three cells (a pretrain cell, a linear probe of its model, from scratch), a launch run and a report run in
    one sqlite store, made by the CLI; -> (grid path, results folder, the URL the first run printed, the rerun's)."""
    folder = tmp_path_factory.mktemp("ui")
    grid_path = folder / "shown.yaml"
    grid_path.write_text("name: shown\noriginals: [{backbone: test_tinycnn, trained_on: digits, hparams: {epochs: 1}}]"
                         "\ntasks: [digits_01]\nmethods: [{name: linear_probe}, {name: scratch}]\n"
                         "hparams: {batch_size: 64, epochs: 1}\nseeds: [0]\n")
    results = folder / "results"
    first = cli("run", grid_path, "--results", results)
    assert first.returncode == 0, first.stderr[-3000:]
    report = cli("report", grid_path, "--results", results)
    assert report.returncode == 0, report.stderr[-3000:]
    rerun = cli("run", grid_path, "--results", results)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    return grid_path, results, URL.search(first.stdout).group(1), URL.search(rerun.stdout).group(1)


def url_parts(url: str) -> tuple[str, str, dict]:
    """(base, experiment id, the query of the runs page) of a printed MLflow URL."""
    parsed = urlparse(url)
    route, _, query = parsed.fragment.partition("?")
    experiment_id = re.fullmatch(r"/experiments/(\d+)/runs", route).group(1)
    return f"{parsed.scheme}://{parsed.netloc}", experiment_id, {k: v[0] for k, v in parse_qs(query).items()}


@pytest.mark.slow
def test_the_printed_url_selects_exactly_the_cells_sorted_by_test_accuracy(demo_store):
    grid_path, results, first_url, rerun_url = demo_store
    grid = load_grid(grid_path)
    _, experiment_id, query = url_parts(first_url)
    assert url_parts(rerun_url)[1:] == (experiment_id, query)  # the rerun prints the same page, with the id
    assert query["workflowType"] == "machine_learning"

    port = free_port()
    ui = cli_popen("ui", grid_path, "--results", results, "--port", port, stderr=subprocess.DEVNULL,
                   start_new_session=True)
    try:
        line = ui.stdout.readline()
        base, ui_experiment, ui_query = url_parts(URL.search(line).group(1))
        assert (ui_experiment, ui_query) == (experiment_id, query)
        # the page the URL names: the experiment's shared view of that key, as the UI reads it from the server
        experiment = get_json(f"{base}/api/2.0/mlflow/experiments/get?experiment_id={experiment_id}")
        view = json.loads({t["key"]: t["value"] for t in experiment["experiment"]["tags"]}[
            f"mlflow.sharedViewState.{query['viewStateShareKey']}"])
        assert view["orderByAsc"] is False and "metrics.`final/test_acc`" in view["selectedColumns"]
        # what the page asks the server for: the view's filter, its order, every run the experiment holds
        page = get_json(f"{base}/api/2.0/mlflow/runs/search", {
            "experiment_ids": [experiment_id], "filter": view["searchFilter"], "max_results": 1000,
            "order_by": [f"{view['orderByKey']} DESC"]})
        everything = get_json(f"{base}/api/2.0/mlflow/runs/search", {"experiment_ids": [experiment_id],
                                                                     "max_results": 1000})
    finally:
        stop(ui)

    def tags(run):
        return {t["key"]: t["value"] for t in run["data"].get("tags", [])}

    kinds = {tags(r).get(RUN_KIND) for r in everything["runs"]}
    assert {"grid_launch", "report"} <= kinds  # what the filter must leave out is there
    shown = page["runs"]
    assert sorted(tags(r)["cell_id"] for r in shown) == sorted(c.cell_id for c in grid.cells)  # exactly the cells
    accuracy = {c.cell_id: read_record(cell_dir(results, grid.name, c.cell_id)).metrics.test_acc for c in grid.cells}
    assert [accuracy[tags(r)["cell_id"]] for r in shown] == sorted(accuracy.values(), reverse=True)


@pytest.mark.slow
def test_run_names_lead_with_task_method_original_and_seed(demo_store):
    from mlflow.tracking import MlflowClient

    grid_path, results, _, _ = demo_store
    grid = load_grid(grid_path)
    client = MlflowClient(tracking_uri=f"sqlite:///{Path(results) / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(grid.name)
    names = {r.data.tags["cell_id"]: r.info.run_name for r in client.search_runs([experiment.experiment_id])
             if "cell_id" in r.data.tags}
    for cell in grid.cells:
        if cell.makes_original:
            assert names[cell.cell_id] == f"digits: {cell.method_label} test_tinycnn (original) s0"
            continue
        original = "digits/test_tinycnn" if cell.spec["original"] else "test_tinycnn"
        assert names[cell.cell_id] == f"digits_01 {cell.method_label} {original} s0"
    assert len(set(names.values())) == len(grid.cells)  # every name tells its cell apart


def cell_runs_of(results: Path, grid_name: str) -> dict:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{Path(results) / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(grid_name)
    runs = client.search_runs([experiment.experiment_id])
    return client, {r.data.tags["cell_id"]: r for r in runs if "cell_id" in r.data.tags and RUN_KIND not in r.data.tags}


@pytest.mark.slow
def test_a_cell_run_groups_its_metrics_and_carries_its_record_curve_description_and_dataset(demo_store):
    from mlflow.artifacts import download_artifacts

    from analysis.results import Store
    from bench.track_names import legacy_name

    grid_path, results, _, _ = demo_store
    grid = load_grid(grid_path)
    client, runs = cell_runs_of(results, grid.name)
    for cell in grid.cells:
        run, record = runs[cell.cell_id], read_record(cell_dir(results, grid.name, cell.cell_id))
        keys = set(run.data.metrics)
        assert {k.split("/", 1)[0] for k in keys} == {"final", "epoch", "time", "energy", "compute"}, keys
        assert run.data.metrics["final/test_acc"] == pytest.approx(record.metrics.test_acc)
        assert run.data.metrics["compute/cpu_s"] == pytest.approx(record.compute.cpu_s)
        assert run.data.metrics["compute/usable_cpus"] == record.compute.usable_cpus
        rebuilt = Store(f"sqlite:///{results / 'mlflow.db'}").record_of(run, cell)  # what report reads without files
        assert rebuilt.compute == record.compute
        # the selected weights' train accuracy and the running mean, each under its own name
        assert rebuilt.metrics.train_acc == pytest.approx(record.metrics.train_acc)
        assert rebuilt.metrics.train_acc_running == pytest.approx(record.metrics.train_acc_running)
        assert run.data.metrics["time/total_s"] == pytest.approx(record.timing.total_s)
        assert run.data.metrics["energy/total_j"] == pytest.approx(record.energy.joules)
        history = client.get_metric_history(run.info.run_id, "epoch/val_acc")
        assert [m.value for m in history] == pytest.approx([row.val_acc for row in record.history])
        assert all(legacy_name(k) != k for k in keys)  # none logged under a bare name

        note = run.data.tags["mlflow.note.content"]
        assert "\n" not in note and note.startswith(f"{cell.method} of test_tinycnn") and "digits" in note
        assert f"test {100 * record.metrics.test_acc:.2f}%" in note
        (dataset,) = run.inputs.dataset_inputs
        assert dataset.dataset.name == cell.task and dataset.dataset.digest == record.split["fingerprint"][:36]

        folder = Path(download_artifacts(run_id=run.info.run_id, dst_path=str(results / "dl" / cell.cell_id),
                                         tracking_uri=f"sqlite:///{results / 'mlflow.db'}"))
        assert json.loads((folder / "result.json").read_text())["cell_id"] == cell.cell_id
        assert (folder / "learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_store_written_before_the_prefixes_is_read_by_report_and_counts_as_complete_for_sync(tmp_path):
    """A run logged with today's bare names (`test_acc`, `val_acc`, `energy_j`), as stores made before the
    prefixes hold them: `report` rebuilds the record from it and `sync` finds nothing missing."""
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    from analysis.results import Store
    from bench.grid import load_grid
    from bench.record import CellRecord
    from bench.track import Tracker
    from bench.track_runs import missing_metrics

    grid_path = tmp_path / "old.yaml"
    grid_path.write_text("name: old\noriginals: [{backbone: test_tinycnn, methods: [scratch]}]\ntasks: [digits_01]\n"
                         "methods: [{name: scratch}]\nhparams: {batch_size: 64, epochs: 2}\nseeds: [0]\n")
    (cell,) = load_grid(grid_path).cells
    record = CellRecord.model_validate({
        "cell_id": cell.cell_id, "grid": "old", "name": cell.name, "status": "done", "spec": cell.spec,
        "metrics": {"test_acc": 0.91, "test_loss": 0.3, "val_acc": 0.93, "best_epoch": 2, "train_acc": 0.95},
        "history": [{"epoch": 1, "train_loss": 0.9, "train_acc": 0.6, "val_loss": 0.8, "val_acc": 0.7,
                     "elapsed_s": 1.0, "energy_j": 5.0},
                    {"epoch": 2, "train_loss": 0.4, "train_acc": 0.95, "val_loss": 0.35, "val_acc": 0.93,
                     "elapsed_s": 2.0, "energy_j": 10.0}],
        "timing": {"setup_s": 0.1, "features_s": 0.0, "compile_s": 0.0, "train_s": 1.5, "eval_s": 0.4, "total_s": 2.5},
        "throughput": {"train_images": 400, "images_per_s": 200.0}, "parameters": {"trainable": 1234},
        "energy": {"joules": 12.0, "source": "estimate", "estimate": True},
        "environment": {"device": "cpu"}})
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    run = client.create_run(client.create_experiment("old"), tags={"cell_id": cell.cell_id})
    old = [Metric(k, v, 0, row.epoch) for row in record.history for k, v in row.metrics().items()]
    old += [Metric(k, float(v), 0, 2) for k, v in record.final_metrics().items() if v is not None]
    client.log_batch(run.info.run_id, metrics=old)
    client.set_terminated(run.info.run_id, "FINISHED")

    store = Store(uri)
    rebuilt = store.record_of(store.finished_runs("old")[cell.cell_id], cell)
    assert rebuilt.metrics.test_acc == 0.91 and rebuilt.metrics.val_acc == 0.93 and rebuilt.metrics.best_epoch == 2
    assert rebuilt.timing.total_s == 2.5 and rebuilt.energy.joules == 12.0
    assert [row.val_acc for row in rebuilt.history] == [0.7, 0.93]
    # before final/train_acc: the train figure is the selected epoch's running mean, as its result.json said
    assert rebuilt.metrics.train_acc == 0.95 and rebuilt.metrics.train_acc_running is None
    assert missing_metrics(Tracker(uri, "old", strict=True), run.info.run_id, record) == []
    # a run lacking points is told so, each under today's name
    partial = client.create_run(run.info.experiment_id).info.run_id
    client.log_batch(partial, metrics=[m for m in old if m.step == 1])
    lacking = {(m.key, m.step) for m in missing_metrics(Tracker(uri, "old", strict=True), partial, record)}
    assert ("epoch/val_acc", 2) in lacking and ("final/test_acc", 2) in lacking and ("epoch/val_acc", 1) not in lacking

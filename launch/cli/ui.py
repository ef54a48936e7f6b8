"""`reprogbench ui GRID`: the MLflow UI on 127.0.0.1 for the grid's store; prints the URL of the grid's runs."""
from __future__ import annotations

from launch.cli import common
from launch.cli.options import add_tracking, grid_command

HELP = "start the MLflow UI on 127.0.0.1 for the grid's runs and print their URL"


def add(sub) -> None:
    p = grid_command(sub, "ui", HELP)
    p.add_argument("--port", type=int, default=5000, help="port (default 5000)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine "
                   "only; the UI has no login, so 0.0.0.0 shows every run to anyone who reaches the port)")
    add_tracking(p, no_tracking=None)  # the UI shows what MLflow holds
    p.set_defaults(func=main)


def main(args) -> int:
    from analysis.results import Store, open_store
    from bench.redact import redact_uri
    from bench.track import publish_results_view, sqlite_path
    from launch.mlflow_ui import UiError, runs_url, serve

    grid = common.load_grid(args)
    uri = common.tracking_uri(args)
    db = sqlite_path(uri)
    if db is None:  # a tracking server: it already serves the UI
        store = open_store(uri, explicit=True)
        experiment_id = store.experiment_id(grid.name)
        if experiment_id:
            publish_results_view(store.client, experiment_id)
        print(f"MLflow UI: {runs_url(redact_uri(uri), experiment_id)} (the tracking server serves it)")
        return 0
    if not db.is_file():
        raise UiError(f"no MLflow store at {db}: run the grid first (`reprogbench run {args.grid}`), or give "
                      "--results / --tracking-uri where its runs were logged")
    store = Store(uri)
    experiment_id = store.experiment_id(grid.name)
    if experiment_id:  # a store made before the results page existed gets it
        publish_results_view(store.client, experiment_id)
    return serve(uri, args.port, experiment_id, host=args.host)

"""`reprogbench`: run grids (here or on Slurm), follow them, report results, open MLflow, prepare inputs, benchmark.

Exit status: 0 all good; 1 some cell failed (or was lost with its worker); 2 bad input (a malformed grid, an
unknown name, a missing file); 130 / 143 stopped by SIGINT / SIGTERM (rerun the same command to continue).
"""
from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
import time
from pathlib import Path

from bench.grid import MAX_CELLS, Grid, GridError, load_grid, parse_filters
from bench.registry import UnknownName

EXIT_FAILED, EXIT_BAD_INPUT = 1, 2


def _results_root(args) -> Path:
    return Path(args.results or os.environ.get("REPROGBENCH_RESULTS", "results"))


def _tracking_uri(args) -> str | None:
    from bench.redact import move_credentials_to_env
    from bench.track import default_tracking_uri

    if getattr(args, "no_tracking", False):
        return None
    # credentials go to the variables MLflow / libpq read, so no record, job file or printed line holds them
    return move_credentials_to_env(args.tracking_uri or default_tracking_uri(_results_root(args)))


def _load(args) -> tuple[Grid, list]:
    grid = load_grid(args.grid, data_root=args.data_root, max_cells=args.max_cells)
    for note in grid.notes:
        print(f"note: {note}", file=sys.stderr)
    return grid, grid.select(parse_filters(args.filter or []))


def _settings(args):
    from launch.local import RunSettings

    return RunSettings(_results_root(args), args.data_root, _tracking_uri(args), pack=getattr(args, "pack", 1),
                       cache_features=not args.no_feature_cache, compile=args.compile)


def cmd_ls(args) -> int:
    from analysis.table import cells_table

    grid, cells = _load(args)
    if args.ids or args.wave:
        from launch.local import waves

        groups = waves(cells)
        if args.wave and not 1 <= args.wave <= len(groups):
            raise GridError(f"{grid.name} has {len(groups)} wave(s); --wave takes 1..{len(groups)}")
        print("\n".join(c.cell_id for c in (groups[args.wave - 1] if args.wave else cells)))
        return 0
    print(cells_table(grid, cells, _results_root(args)))
    for cell in grid.skipped:
        print(f"skipped {cell.cell_id}  {cell.name}: {cell.skip_reason}")
    for row, why in grid.not_run.items():
        print(f"not run: {grid.reference} row {row}: {why}")
    return 0


def cmd_run(args) -> int:
    from analysis.table import results_table
    from bench.track import cell_dir, cell_status
    from launch.local import distributed_rank, run_cells
    from launch.preflight import check_inputs

    start = time.perf_counter()
    grid, cells = _load(args)
    profile = slurm_profile(args) if args.launcher == "slurm" else None  # checked before anything else happens
    main = distributed_rank() == 0
    settings = _settings(args)
    check_inputs([c for c in cells if cell_status(cell_dir(settings.results_root, grid.name, c.cell_id)) != "done"],
                 args.data_root, args.grid)
    if args.launcher == "slurm":
        return submit_to_slurm(args, grid, cells, settings, profile)
    workers = 1 if "WORLD_SIZE" in os.environ else args.workers  # under torchrun, ranks share each cell
    summary = run_cells(grid, cells, settings, workers=workers)
    if not main:
        return EXIT_FAILED if summary.failed else 0
    ran = sum(o.status in ("done", "failed", "blocked") for o in summary.outcomes)
    print(f"{grid.name}: {ran} cell(s) run, {summary.already_done} already done, {len(summary.failed)} failed "
          f"({time.perf_counter() - start:.1f}s)")
    print(results_table(grid, cells, settings.results_root))
    from bench.track import Tracker

    offline = Tracker.offline_reason(settings.tracking_uri) or any(o.tracking_offline for o in summary.outcomes)
    if settings.tracking_uri and not offline:  # offline: said once already, with the `sync` to run
        print(mlflow_hint(settings.tracking_uri, grid.name, summary.experiment_id))
    for outcome in summary.failed + summary.lost:
        print(f"{outcome.status}: {outcome.cell.cell_id} {outcome.cell.name}: {outcome.message}", file=sys.stderr)
    if summary.interrupted:
        from launch.interrupts import exit_status

        done = summary.already_done + sum(o.status == "done" for o in summary.outcomes)
        print(f"interrupted: {done} cell(s) done, {summary.pending} pending; rerun the same command to continue",
              file=sys.stderr)
        return exit_status(summary.interrupted)
    return EXIT_FAILED if summary.failed or summary.lost else 0


def slurm_profile(args):
    from launch.slurm_profile import load_profile

    return load_profile(args.profile, {
        "partition": args.partition, "time": args.time, "nodes": args.nodes, "gpus_per_node": args.gpus_per_node,
        "tasks_per_node": args.tasks_per_node, "array_parallelism": args.array_parallelism})


def submit_to_slurm(args, grid, cells, settings, profile) -> int:
    from launch.slurm import queue_states, require_slurm, submit_grid

    require_slurm()
    queue_states()  # a controller that does not answer is an error before anything is written
    tracker = None
    if settings.tracking_uri:  # once, before jobs start: concurrent creation races
        import dataclasses

        from bench.track import Tracker
        from launch.local import start_launch_run

        tracker = Tracker(settings.tracking_uri, grid.name)
        tracker.ensure_experiment()
        # the cells' runs nest under this launch's run; it ends when the jobs are queued, they end in their jobs
        settings = dataclasses.replace(settings, parent_run_id=start_launch_run(grid, cells, settings, "slurm",
                                                                                 tracker))
    try:
        submission = submit_grid(grid, cells, settings, profile)
    finally:
        if tracker is not None:
            tracker.finish(settings.parent_run_id, "done")
    for cell_id, job in submission.already_queued.items():
        print(f"already queued: {cell_id} (job {job})")
    print(f"{grid.name}: {sum(len(s.cells) for s in submission.submitted)} cell(s) submitted in "
          f"{len(submission.submitted)} job(s), {submission.already_done} already done, "
          f"{len(submission.already_queued)} already queued; `reprogbench status {args.grid}` shows them")
    if not args.wait:
        return 0
    return cmd_status(args)


def cmd_status(args) -> int:
    """Per cell: done, failed, pending, running or requeued, with its Slurm job id and log (no sacct needed)."""
    from launch.slurm import cell_states, status_table, wait

    grid, cells = _load(args)
    results = _results_root(args)
    states = wait(grid, cells, results) if args.wait else cell_states(grid, cells, results)
    print(status_table(states))
    return EXIT_FAILED if any(s.state in ("failed", "lost") for s in states) else 0


def mlflow_hint(uri: str, experiment: str, experiment_id: str | None) -> str:
    """The command that shows these runs, and the page that lists them (MLflow 3 opens on GenAI pages)."""
    from bench.redact import redact_uri
    from launch.mlflow_ui import runs_url

    uri = redact_uri(uri)
    if uri.startswith("sqlite"):
        return (f"MLflow: mlflow ui --backend-store-uri {uri}   then open "
                f"{runs_url('http://127.0.0.1:5000', experiment_id)} (experiment {experiment!r}; "
                "or `reprogbench ui GRID`)")
    return f"MLflow: open {runs_url(uri, experiment_id)} (experiment {experiment!r})"


def cmd_report(args) -> int:
    """Tables and plots from a grid's results (never trains): the thesis's tables beside ours, each method against
    from-scratch (accuracy, compute, energy, CO2 and their ratios), time to the scratch accuracy, mean / sd / n
    across seeds; PNGs and an HTML page; logged to the grid's MLflow experiment as a `report` run."""
    from analysis import report
    from analysis.render import to_markdown
    from analysis.results import open_store

    formats = report.parse_formats(args.format)  # every input checked before anything is read or written
    intensity, origin = report.carbon_intensity(args.carbon_intensity)
    grid, cells = _load(args)
    results = _results_root(args)
    explicit = bool(args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI"))
    store = open_store(_tracking_uri(args), explicit)
    out = Path(args.out) if args.out else results / grid.name / "report"
    built = report.build(grid, cells, results, store, out, intensity, origin)
    written = report.write(built, out, formats)
    for table in built.tables:
        print(to_markdown(table))
    print(built.summary())
    print(f"wrote {len(written)} file(s) to {out}: " + ", ".join(p.name for p in written))
    if store is not None:
        run_id = report.log_to_mlflow(built, store, results, out)
        if run_id:
            print(f"logged as artifacts of MLflow run {run_id} ('report {grid.name}'); `reprogbench ui {args.grid}"
                  + (f" --results {args.results}" if args.results else "") + "` shows it")
        else:
            print(f"not logged to MLflow: {store.uri} has no experiment {grid.name!r}")
    return 0


def cmd_sync(args) -> int:
    """Upload to MLflow what the cells' records hold and MLflow lacks (after tracking was offline); by cell_id,
    so a second sync creates nothing."""
    from bench.track import TrackingUnavailable
    from launch.sync import sync_grid

    grid, cells = _load(args)
    uri = _tracking_uri(args)
    try:
        summary = sync_grid(grid, cells, _results_root(args), uri)
    except TrackingUnavailable as exc:
        print(f"reprogbench: error: {exc}; nothing more was uploaded: start the server (or give --tracking-uri) "
              f"and run `reprogbench sync {args.grid}` again", file=sys.stderr)
        return EXIT_FAILED
    print(summary.line(grid.name))
    return 0


def cmd_ui(args) -> int:
    """The MLflow UI on 127.0.0.1 for the grid's store; prints the URL of the grid's runs table."""
    from analysis.results import Store, open_store
    from bench.track import default_tracking_uri, sqlite_path
    from launch.mlflow_ui import UiError, runs_url, serve

    grid = load_grid(args.grid, data_root=args.data_root, max_cells=args.max_cells)
    from bench.redact import move_credentials_to_env, redact_uri

    uri = move_credentials_to_env(args.tracking_uri or default_tracking_uri(_results_root(args)))
    db = sqlite_path(uri)
    if db is None:  # a tracking server: it already serves the UI
        experiment_id = open_store(uri, explicit=True).experiment_id(grid.name)
        print(f"MLflow UI: {runs_url(redact_uri(uri), experiment_id)} (the tracking server serves it)")
        return 0
    if not db.is_file():
        raise UiError(f"no MLflow store at {db}: run the grid first (`reprogbench run {args.grid}`), or give "
                      "--results / --tracking-uri where its runs were logged")
    return serve(uri, args.port, Store(uri).experiment_id(grid.name), host=args.host)


def cmd_sweep(args) -> int:
    """Ray Tune over each selected cell's search space; the best config is then run once as a cell."""
    from bench.track import cell_dir, cell_status
    from launch.preflight import check_inputs
    from launch.sweep_records import SweepOptions, check_sweepable, results_table

    grid, cells = _load(args)
    options = SweepOptions(args.samples, args.scheduler, args.search, args.max_concurrent, args.address,
                           args.cpus_per_trial, args.gpus_per_trial, args.reduction_factor)
    chosen = check_sweepable(grid, cells)
    profile = slurm_profile(args) if args.launcher == "slurm" else None
    settings = _settings(args)
    check_inputs([c for c in cells if cell_status(cell_dir(settings.results_root, grid.name, c.cell_id)) != "done"],
                 args.data_root, args.grid)
    if args.launcher == "slurm":
        return submit_sweep_to_slurm(args, grid, chosen, settings, options, profile)
    from launch.sweep import sweep_cells  # Ray is imported once everything has been checked

    results = sweep_cells(grid, cells, settings, options)
    print(results_table(results, settings.results_root))
    if settings.tracking_uri:
        from bench.track import Tracker

        experiment_id = Tracker(settings.tracking_uri, grid.name).ensure_experiment()
        print(mlflow_hint(settings.tracking_uri, grid.name, experiment_id))
    failed = [r for r in results if r.summary.get("status") != "done"]
    for r in failed:
        print(f"failed: sweep of {r.cell.cell_id} {r.cell.name}: "
              f"{r.summary.get('error') or (r.summary.get('tuned') or {}).get('error')}", file=sys.stderr)
    return EXIT_FAILED if failed else 0


def sweep_argv(args, settings, options) -> list[str]:
    """The sweep as the job inside the allocation runs it: absolute paths, every option explicit."""
    grid = str(Path(args.grid).resolve()) if Path(args.grid).is_file() else args.grid
    argv = [grid, "--results", str(Path(settings.results_root).resolve()), "--samples", str(options.samples),
            "--scheduler", options.scheduler, "--search", options.search, "--cpus-per-trial",
            str(options.cpus_per_trial), "--reduction-factor", str(options.reduction_factor)]
    for item in args.filter or []:
        argv += ["--filter", item]
    if options.max_concurrent:
        argv += ["--max-concurrent", str(options.max_concurrent)]
    if options.gpus_per_trial is not None:
        argv += ["--gpus-per-trial", str(options.gpus_per_trial)]
    if args.data_root:
        argv += ["--data-root", str(Path(args.data_root).resolve())]
    if args.weights_dir:
        argv += ["--weights-dir", str(Path(args.weights_dir).resolve())]
    argv += ["--tracking-uri", settings.tracking_uri] if settings.tracking_uri else ["--no-tracking"]
    argv += ["--compile"] if args.compile else []
    argv += ["--no-feature-cache"] if args.no_feature_cache else []
    return argv


def submit_sweep_to_slurm(args, grid, chosen, settings, options, profile) -> int:
    from bench.track import read_json
    from launch.ray_slurm import submit_sweep, wait_for_job
    from launch.sweep_records import SUMMARY, SweepResult, results_table, sweep_dir

    if settings.tracking_uri:  # once, before the job's trials start: concurrent creation races
        from bench.track import Tracker

        Tracker(settings.tracking_uri, grid.name).ensure_experiment()
    job_id, log = submit_sweep(sweep_argv(args, settings, options), profile,
                               Path(settings.results_root).resolve() / grid.name / "sweeps")
    print(f"{grid.name}: sweep of {len(chosen)} cell(s) submitted as job {job_id} (a Ray cluster on "
          f"{profile.for_method('sweep')['nodes']} node(s)); log: {log}")
    if not args.wait:
        return 0
    wait_for_job(job_id)
    results = [SweepResult(c, read_json(sweep_dir(settings.results_root, grid.name, c.cell_id) / SUMMARY) or {})
               for c in chosen]
    print(results_table(results, settings.results_root))
    failed = [r for r in results if r.summary.get("status") != "done"]
    if failed:
        print(f"failed: {len(failed)} sweep(s) did not finish; see {log}", file=sys.stderr)
    return EXIT_FAILED if failed else 0


def cmd_cell(args) -> int:
    """One cell, in the foreground: what torchrun (and later schedulers) launch."""
    from launch.local import distributed_rank, execute_cell
    from launch.preflight import check_inputs

    grid = load_grid(args.grid, data_root=args.data_root, max_cells=args.max_cells)
    cells = grid.by_id()
    if args.cell_id not in cells:
        raise GridError(f"{grid.path}: no cell {args.cell_id!r}; `reprogbench ls {args.grid}` lists them")
    settings = _settings(args)
    from bench.track import cell_dir, cell_status

    if cell_status(cell_dir(settings.results_root, grid.name, args.cell_id)) == "done":
        print(f"{args.cell_id}: already done")  # array tasks rerun after a requeue find finished cells here
        return 0
    check_inputs([cells[args.cell_id]], args.data_root, args.grid)
    from launch.interrupts import StopOnSignals, exit_status

    with StopOnSignals():  # under torchrun: torchrun forwards its SIGINT / SIGTERM to every rank as SIGTERM
        outcome = execute_cell(cells[args.cell_id], settings, log_epochs=True)
    if outcome.status == "interrupted":
        if distributed_rank() == 0:
            print(f"interrupted: {args.cell_id}: {outcome.message}; rerun the same command to continue",
                  file=sys.stderr)
        from bench import stop

        return exit_status(stop.requested() or 15)  # 15: SIGTERM
    if outcome.status != "done":
        print(f"failed: {args.cell_id}: {outcome.message}", file=sys.stderr)
        return EXIT_FAILED
    return 0


def cmd_prepare(args) -> int:
    """Login-node step: fetch and verify what grids (or named datasets / weights) need, so compute nodes run
    offline; reports each input as present, fetched or missing, and exits 2 if any is still missing."""
    from bench.data import default_data_root
    from launch.prepare import inputs_of, prepare, report

    if not args.targets and not args.weights:
        raise UnknownName("name a grid (e.g. thesis_table_3_1), datasets, or --weights BACKBONE to prepare")
    root = Path(args.data_root or default_data_root())
    inputs = inputs_of(args.targets, args.weights, root, args.max_cells)  # every name checked before any download
    outcomes = prepare(inputs, root)
    print(report(outcomes))
    missing = [o.name for o in outcomes if o.status == "missing"]
    if missing:
        print(f"reprogbench: error: {len(missing)} of {len(outcomes)} input(s) could not be fetched "
              f"({', '.join(missing)}); run `reprogbench prepare` where there is internet (a login node), "
              "into the same --data-root / --weights-dir the compute nodes read", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"all {len(outcomes)} input(s) present under {root}"
          + (f" and {os.environ['REPROGBENCH_WEIGHTS']}" if os.environ.get("REPROGBENCH_WEIGHTS") else ""))
    return 0


def cmd_bench(args) -> int:
    """Each fast path against the naive path it replaces, measured in one run; appended to BENCHMARKS.md."""
    from bench.speed import report

    unknown = [n for n in args.only or [] if n not in report.measurements()]
    if unknown:
        raise UnknownName(f"unknown measurement {unknown[0]!r}; known: {', '.join(report.measurements())}")
    command = "reprogbench " + shlex.join(args.argv)
    output = None if args.no_append else Path(args.output)
    return report.main(args.device, args.quick, args.only, output, args.workdir, command)


def add_input_dirs(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root", type=Path, help="dataset folder (default $REPROGBENCH_DATA or "
                   "~/.cache/reprogbench/data; Debian's dataset-fashion-mnist is found on its own)")
    p.add_argument("--weights-dir", type=Path, help="ImageNet weights folder (default $REPROGBENCH_WEIGHTS, else "
                   "the torch hub and Hugging Face caches); give prepare and run the same one")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reprogbench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def grid_command(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.add_argument("grid", help="a grid YAML file, or the name of a shipped grid (e.g. demo)")
        p.add_argument("--results", help="results folder (default $REPROGBENCH_RESULTS or ./results)")
        p.add_argument("--max-cells", type=int, default=MAX_CELLS, metavar="N",
                       help=f"refuse a grid that expands to more than N cells (default {MAX_CELLS:,}: a larger grid "
                            "is more often a typo than a plan)")
        add_input_dirs(p)
        return p

    run = grid_command("run", "run the grid's pending cells (finished ones are skipped)")
    run.add_argument("--workers", type=int, default=1, help="cells run at once in worker processes (default 1)")
    run.add_argument("--filter", action="append", metavar="KEY=VALUE",
                     help="only matching cells (and their dependencies); KEY: method, task, backbone, seed, "
                          "original, id; repeatable")
    run.add_argument("--pack", type=int, default=8, metavar="K",
                     help="train up to K cells that share a frozen backbone (e.g. ar seeds, lam values) in one "
                          "backbone pass; 1 runs each cell alone (default 8)")
    run.add_argument("--launcher", choices=["local", "slurm"], default="local",
                     help="local: run here (default); slurm: submit job arrays with submitit and return")
    slurm = run.add_argument_group("slurm", "with --launcher slurm; flags override the profile")
    slurm.add_argument("--profile", help="a profile YAML (partition, account, qos, time, gpus_per_node, ...), or "
                       "the name of one in slurm/profiles/")
    slurm.add_argument("--partition")
    slurm.add_argument("--time", help="time limit per job: minutes or Slurm's D-HH:MM:SS (default 60)")
    slurm.add_argument("--nodes", type=int, help="nodes per cell (default 1)")
    slurm.add_argument("--gpus-per-node", type=int)
    slurm.add_argument("--tasks-per-node", type=int, help="DDP ranks per node (default: one per GPU, else 1)")
    slurm.add_argument("--array-parallelism", type=int, help="array tasks running at once (default 64)")
    slurm.add_argument("--wait", action="store_true", help="block until every cell is done or failed, with a "
                       "progress bar, then print the status table")
    run.set_defaults(func=cmd_run)

    status = grid_command("status", "per cell: done, failed, pending, running or requeued, with its Slurm job "
                                    "and log (reads the cells' records and squeue; no sacct)")
    status.add_argument("--filter", action="append", metavar="KEY=VALUE", help="as for run")
    status.add_argument("--wait", action="store_true", help="block until no cell is queued or running")
    status.set_defaults(func=cmd_status)

    ls = grid_command("ls", "list the grid's cells with id and status (done, pending, failed)")
    ls.add_argument("--filter", action="append", metavar="KEY=VALUE", help="as for run")
    ls.add_argument("--ids", action="store_true", help="only the cell ids, one per line, dependencies first "
                    "(for sbatch arrays: slurm/templates/cells.sbatch)")
    ls.add_argument("--wave", type=int, metavar="N", help="only the ids of wave N (1: cells with no pending "
                    "dependency, e.g. pretrain; 2: the cells that need them)")
    ls.set_defaults(func=cmd_ls)

    sweep = grid_command("sweep", "Ray Tune over each selected cell's search space (ASHA stops weak trials); the "
                                  "best config on validation is then run once as a cell, its test read once")
    sweep.add_argument("--samples", type=int, required=True, metavar="N", help="configs sampled per cell")
    sweep.add_argument("--filter", action="append", metavar="KEY=VALUE", help="as for run")
    sweep.add_argument("--scheduler", choices=["asha", "fifo"], default="asha",
                       help="asha: stop weak trials at epochs 1, rf, rf^2, ... (default); fifo: run every trial out")
    sweep.add_argument("--reduction-factor", type=int, default=2, metavar="RF",
                       help="ASHA keeps the best 1/RF of trials at each rung (default 2)")
    sweep.add_argument("--search", choices=["random", "optuna"], default="random",
                       help="random sampling (default) or Optuna's TPE; both seeded by the cell's seed")
    sweep.add_argument("--max-concurrent", type=int, metavar="K",
                       help="trials at once (default: as many as the Ray cluster's CPUs/GPUs hold; never more)")
    sweep.add_argument("--cpus-per-trial", type=float, default=1.0, help="CPUs each trial asks Ray for (default 1)")
    sweep.add_argument("--gpus-per-trial", type=float,
                       help="GPUs each trial asks Ray for (default: 1 when the cluster has GPUs, else 0)")
    sweep.add_argument("--address", help="join this Ray cluster (auto: the one started on this node, or "
                       "$RAY_ADDRESS); default: start Ray on this machine")
    sweep.add_argument("--launcher", choices=["local", "slurm"], default="local",
                       help="local: sweep here or on --address (default); slurm: submit slurm/ray-sweep.sbatch, "
                            "a Ray cluster in one allocation running this sweep")
    sweep_slurm = sweep.add_argument_group("slurm", "with --launcher slurm; flags override the profile")
    sweep_slurm.add_argument("--profile", help="a profile YAML or a name in slurm/profiles/ (as for run)")
    sweep_slurm.add_argument("--partition")
    sweep_slurm.add_argument("--time", help="the whole sweep's time limit: minutes or D-HH:MM:SS (default 60)")
    sweep_slurm.add_argument("--nodes", type=int, help="nodes of the Ray cluster (default 1)")
    sweep_slurm.add_argument("--gpus-per-node", type=int)
    sweep_slurm.add_argument("--wait", action="store_true", help="block until the job ends, then print the table")
    sweep.set_defaults(func=cmd_sweep, tasks_per_node=None, array_parallelism=None)

    cell = grid_command("cell", "run one cell by id in the foreground (e.g. under torchrun)")
    cell.add_argument("cell_id")
    cell.set_defaults(func=cmd_cell)

    report = grid_command("report", "tables and plots from the grid's results: the thesis's tables beside ours, "
                          "each method against from-scratch (accuracy, compute, energy, CO2), time to accuracy; "
                          "never trains")
    report.add_argument("--out", help="folder for the report (default RESULTS/GRID/report)")
    report.add_argument("--format", default="md,html,csv", help="comma-separated: md, html, csv (default all "
                        "three; the PNGs are always written)")
    report.add_argument("--carbon-intensity", type=float, metavar="G_PER_KWH",
                        help="g CO2e per kWh of the electricity used (default $REPROGBENCH_CARBON_INTENSITY, else "
                             "475, the world average, IEA 2019)")
    report.add_argument("--filter", action="append", metavar="KEY=VALUE", help="as for run")
    report.set_defaults(func=cmd_report)

    ui = grid_command("ui", "start the MLflow UI on 127.0.0.1 for the grid's runs and print their URL")
    ui.add_argument("--port", type=int, default=5000, help="port (default 5000)")
    ui.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine "
                    "only; the UI has no login, so 0.0.0.0 shows every run to anyone who reaches the port)")
    ui.set_defaults(func=cmd_ui)

    sync = grid_command("sync", "upload to MLflow what the cells' records hold and MLflow lacks (after tracking "
                        "was offline); by cell_id: a second sync creates no run")
    sync.add_argument("--filter", action="append", metavar="KEY=VALUE", help="as for run")
    sync.set_defaults(func=cmd_sync)
    for p in (run, cell, sweep, report, ui, sync):
        p.add_argument("--tracking-uri", help="MLflow tracking URI (default $MLFLOW_TRACKING_URI, else a sqlite "
                       "file mlflow.db in the results folder)")
    for p in (run, cell, sweep, report):
        p.add_argument("--no-tracking", action="store_true", help="local records only, no MLflow" + (
            " (report: read no MLflow store and log nothing to it)" if p is report else ""))
    for p in (run, cell, sweep):
        p.add_argument("--compile", action="store_true",
                       help="torch.compile the backbone (worth it on GPU for long cells); compile time is "
                            "recorded apart as timing.compile_s")
        p.add_argument("--no-feature-cache", action="store_true",
                       help="head-only methods (linear_probe) run the backbone every epoch instead of training "
                            "on features computed once (the naive path, for comparison)")

    prep = sub.add_parser("prepare", help="fetch and verify the datasets and ImageNet weights a grid needs (on a "
                          "login node with internet)", description=cmd_prepare.__doc__)
    prep.add_argument("targets", nargs="*", metavar="GRID_OR_DATASET",
                      help="grids (shipped name or YAML file: everything their cells read) or dataset names")
    prep.add_argument("--weights", action="append", default=[], metavar="BACKBONE",
                      help="also these ImageNet weights (torchvision's into the torch hub cache, timm's into the "
                           "Hugging Face cache); repeatable")
    prep.add_argument("--max-cells", type=int, default=MAX_CELLS, metavar="N",
                      help=f"refuse a grid that expands to more than N cells (default {MAX_CELLS:,}), as run does")
    add_input_dirs(prep)
    prep.set_defaults(func=cmd_prepare)
    bench = sub.add_parser("bench", help="measure the fast paths against the naive ones; append to BENCHMARKS.md",
                           description=cmd_bench.__doc__)
    bench.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda when visible, else cpu")
    bench.add_argument("--quick", action="store_true", help="smaller sets and fewer epochs (a few minutes on 2 CPU "
                       "cores); the ratios keep their meaning")
    bench.add_argument("--only", action="append", metavar="NAME", help="run only this measurement; repeatable: "
                       "frozen, data, linear_probe, pack, ddp, grid, gpu")
    bench.add_argument("--output", default="BENCHMARKS.md", help="markdown file the results are appended to "
                       "(default ./BENCHMARKS.md)")
    bench.add_argument("--no-append", action="store_true", help="print only")
    bench.add_argument("--workdir", help="keep the grids and results the measurements write here (default: a "
                       "temporary folder, removed afterwards)")
    bench.set_defaults(func=cmd_bench)
    return parser


def one_line(text: str) -> str:
    """A message as one printable line: a hostile name's newlines and control characters are shown escaped."""
    return re.sub(r"[\x00-\x1f\x7f]", lambda m: repr(m.group())[1:-1], text)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    args.argv = argv  # the command as typed, recorded beside benchmark figures
    from analysis.errors import ReportError, StoreUnreadable
    from bench.data import DatasetMissing
    from bench.models import WeightsMissing
    from bench.models.thesis_nets import WEIGHTS_ENV, use_weights_dir
    from launch.mlflow_ui import UiError
    from launch.preflight import InputsMissing
    from launch.slurm import SlurmUnavailable
    from launch.sweep_records import SweepError

    weights_dir = getattr(args, "weights_dir", None) or os.environ.get(WEIGHTS_ENV)
    if weights_dir:
        use_weights_dir(weights_dir)  # exported: worker processes and Slurm jobs inherit it

    try:
        return args.func(args)
    except (GridError, UnknownName, DatasetMissing, WeightsMissing, InputsMissing, SlurmUnavailable, ReportError,
            StoreUnreadable, UiError, SweepError) as exc:
        print(f"reprogbench: error: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("reprogbench: interrupted; finished cells are kept, rerun the same command to go on", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""`reprogbench sweep --launcher local`: Ray Tune over each cell's search space, on this machine's Ray (or the
cluster at --address); the best config then runs once as a cell (`launch.sweep`)."""
from __future__ import annotations

import sys

from launch.launchers import EXIT_FAILED, LaunchJob, launcher


@launcher
class Ray:
    name, command, option = "ray", "sweep", "local"
    needs = "Ray (started here, or a cluster at --address) and cells with a search space"
    summary = "sweep here or on --address (default)"
    takes_profile = False  # a Slurm profile (--profile and the Slurm flags)

    def launch(self, job: LaunchJob) -> int:
        from launch.sweep import sweep_cells  # Ray is imported once everything has been checked
        from launch.sweep_records import results_table

        settings = job.settings
        results = sweep_cells(job.grid, job.cells, settings, job.sweep)
        print(results_table(results, settings.results_root))
        if settings.tracking_uri:
            from bench.track import Tracker
            from launch.mlflow_ui import mlflow_hint

            experiment_id = Tracker(settings.tracking_uri, job.grid.name).ensure_experiment()
            print(mlflow_hint(settings.tracking_uri, job.grid.name, experiment_id))
        failed = [r for r in results if r.summary.get("status") != "done"]
        for r in failed:
            print(f"failed: sweep of {r.cell.cell_id} {r.cell.name}: "
                  f"{r.summary.get('error') or (r.summary.get('tuned') or {}).get('error')}", file=sys.stderr)
        return EXIT_FAILED if failed else 0

"""`reprogbench sweep --launcher slurm`: the Ray sweep inside one Slurm allocation, a Ray cluster of its own
(`launch.ray_slurm`); the job receives the sweep as data (`SweepJob`)."""
from __future__ import annotations

import sys

from launch.launchers import EXIT_FAILED, LaunchJob, launcher


@launcher
class RaySlurm:
    name, command, option = "ray_slurm", "sweep", "slurm"
    needs = "a Slurm controller that answers (sbatch, squeue, scontrol on PATH) and a --profile"
    summary = "a Ray cluster in one Slurm allocation running this sweep"
    takes_profile = True  # a Slurm profile (--profile and the Slurm flags)

    def launch(self, job: LaunchJob) -> int:
        from bench.files import read_json
        from bench.track import Tracker
        from launch.ray_slurm import SweepJob, submit_sweep, wait_for_job
        from launch.sweep_records import SUMMARY, SweepResult, check_sweepable, results_table, sweep_dir

        grid, settings = job.grid, job.settings
        chosen = check_sweepable(grid, job.cells)
        if settings.tracking_uri:  # once, before the job's trials start: concurrent creation races
            Tracker(settings.tracking_uri, grid.name).ensure_experiment()
        absolute = settings.absolute()
        results_root = absolute.results_root
        job_id, log = submit_sweep(SweepJob(grid, job.cells, absolute, job.sweep), job.profile,
                                   results_root / grid.name / "sweeps")
        print(f"{grid.name}: sweep of {len(chosen)} cell(s) submitted as job {job_id} (a Ray cluster on "
              f"{job.profile.for_method('sweep')['nodes']} node(s)); log: {log}")
        if not job.wait:
            return 0
        wait_for_job(job_id)
        results = [SweepResult(c, read_json(sweep_dir(results_root, grid.name, c.cell_id) / SUMMARY) or {})
                   for c in chosen]
        print(results_table(results, settings.results_root))
        failed = [r for r in results if r.summary.get("status") != "done"]
        if failed:
            print(f"failed: {len(failed)} sweep(s) did not finish; see {log}", file=sys.stderr)
        return EXIT_FAILED if failed else 0

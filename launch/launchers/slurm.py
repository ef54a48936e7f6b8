"""`reprogbench run --launcher slurm`: the pending cells as Slurm job arrays, through submitit (`launch.slurm`)."""
from __future__ import annotations

import dataclasses

from launch.launchers import EXIT_FAILED, LaunchJob, launcher


@launcher
class Slurm:
    name, command, option = "slurm", "run", "slurm"
    needs = "a Slurm controller that answers (sbatch, squeue, scontrol on PATH) and a --profile"
    summary = "submit job arrays with submitit and return"
    takes_profile = True  # a Slurm profile (--profile and the Slurm flags)

    def launch(self, job: LaunchJob) -> int:
        from launch.slurm import queue_states, require_slurm, submit_grid

        require_slurm()
        queue_states()  # a controller that does not answer is an error before anything is written
        grid, settings, tracker = job.grid, job.settings, None
        if settings.tracking_uri:  # once, before jobs start: concurrent creation races
            from bench.track import Tracker
            from launch.local import start_launch_run

            tracker = Tracker(settings.tracking_uri, grid.name)
            tracker.ensure_experiment()
            # the cells' runs nest under this launch's run; it ends when the jobs are queued, they end in their jobs
            settings = dataclasses.replace(settings, parent_run_id=start_launch_run(grid, job.cells, settings,
                                                                                     self.name, tracker))
        try:
            submission = submit_grid(grid, job.cells, settings, job.profile)
        finally:
            if tracker is not None:
                tracker.finish(settings.parent_run_id, "done")
        for cell_id, queued in submission.already_queued.items():
            print(f"already queued: {cell_id} (job {queued})")
        print(f"{grid.name}: {sum(len(s.cells) for s in submission.submitted)} cell(s) submitted in "
              f"{len(submission.submitted)} job(s), {submission.already_done} already done, "
              f"{len(submission.already_queued)} already queued; `reprogbench status {job.grid_arg}` shows them")
        return show_status(grid, job.cells, settings.results_root, wait=True) if job.wait else 0


def show_status(grid, cells, results_root, wait: bool) -> int:
    """The status table of the cells (once none is queued or running, with `wait`); exit 1 if any failed."""
    from launch.slurm import cell_states, status_table
    from launch.slurm import wait as wait_for_cells

    states = (wait_for_cells if wait else cell_states)(grid, cells, results_root)
    print(status_table(states))
    return EXIT_FAILED if any(s.state in ("failed", "lost") for s in states) else 0

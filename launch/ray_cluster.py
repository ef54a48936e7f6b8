"""The Ray side of a sweep: our search space as Ray Tune's, joining (or starting) the Ray cluster, each trial's
resources, how many trials fit at once, and the seeded search algorithm."""
from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional

from ray import tune

from bench.grid import Space
from launch.sweep_records import SweepError, SweepOptions


def ray_space(space: Space) -> dict[str, Any]:
    """Our space -> Ray Tune's sampling primitives (`int` includes both ends; Ray's randint excludes high)."""
    make = {
        "loguniform": lambda v: tune.loguniform(v[0], v[1]),
        "uniform": lambda v: tune.uniform(v[0], v[1]),
        "int": lambda v: tune.randint(v[0], v[1] + 1),
        "choice": lambda v: tune.choice(v),
    }
    return {name: make[kind](values) for name, dist in space.items() for kind, values in dist.items()}


def connect(address: Optional[str]) -> None:
    """Join the Ray cluster at `address`, or start one on this machine."""
    import logging

    import ray

    if ray.is_initialized():
        return
    quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING,
             "configure_logging": True}
    if address is None:
        # "local": a new instance here, never a cluster some earlier `ray start` left its address for in /tmp/ray
        from launch.ray_reaper import mark_and_guard

        mark_and_guard()  # Ray's agents would outlive a driver killed with -9: a reaper ends them
        ray.init(address="local", **quiet)
        return
    _probe(address)
    try:
        ray.init(address=address, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SweepError(f"no Ray cluster at --address {address} ({first}): start one with `ray start --head` "
                         "(or slurm/ray-sweep.sbatch inside an allocation), or drop --address to run here") from None
    _wait_for_nodes(int(os.environ.get(NODES_ENV, "1")))


def _probe(address: str, timeout_s: float = 5.0) -> None:
    """Fail at once on an address nobody listens on: `ray.init` would retry for minutes before giving up."""
    import socket

    bootstrap = address
    if address == "auto":
        current = Path(os.environ.get("RAY_TMPDIR", "/tmp")) / "ray" / "ray_current_cluster"
        bootstrap = os.environ.get("RAY_ADDRESS") or (current.read_text().strip() if current.is_file() else "")
        if not bootstrap:
            raise SweepError("--address auto: no Ray cluster on this node (no $RAY_ADDRESS, no "
                             f"{current}): start one with `ray start --head`, or drop --address to run here")
    host, _, port = bootstrap.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except (OSError, ValueError) as exc:
        raise SweepError(f"no Ray cluster at --address {address} ({bootstrap}: {exc}): start one with `ray start "
                         "--head` (or slurm/ray-sweep.sbatch inside an allocation), or drop --address to run "
                         "here") from None


NODES_ENV = "REPROGBENCH_RAY_NODES"  # set by slurm/ray-cluster.sh: the nodes its Ray cluster will have


def _wait_for_nodes(expected: int, timeout_s: float = 180.0) -> None:
    """Worker nodes join after the head: size the sweep's concurrency once they are all in."""
    import time

    import ray

    deadline = time.monotonic() + timeout_s
    while (alive := sum(n["Alive"] for n in ray.nodes())) < expected:
        if time.monotonic() > deadline:
            raise SweepError(f"only {alive} of {expected} Ray nodes joined within {timeout_s:.0f}s: see the job log")
        time.sleep(2)


def trial_resources(options: SweepOptions) -> dict[str, float]:
    import ray

    gpus = options.gpus_per_trial
    if gpus is None:
        gpus = 1.0 if ray.cluster_resources().get("GPU", 0) >= 1 else 0.0
    return {"cpu": options.cpus_per_trial, "gpu": gpus}


def concurrency(options: SweepOptions, resources: Mapping[str, float]) -> int:
    """Trials at once: what the cluster holds (never oversubscribed), and at most --max-concurrent."""
    import ray

    total = ray.cluster_resources()
    fits = math.floor(total.get("CPU", 1) / resources["cpu"] + 1e-9)
    if resources["gpu"]:
        fits = min(fits, math.floor(total.get("GPU", 0) / resources["gpu"] + 1e-9))
    if fits < 1:
        raise SweepError(f"a trial asks for {resources['cpu']:g} CPU(s) and {resources['gpu']:g} GPU(s); the Ray "
                         f"cluster has {total.get('CPU', 0):g} and {total.get('GPU', 0):g}")
    return min(fits, options.max_concurrent or fits)


def searcher(options: SweepOptions, seed: int, concurrent: int):
    """Seeded, so the same sweep samples the same configs; each holds the concurrency limit itself (Ray ignores
    TuneConfig's max_concurrent_trials once a search algorithm is given)."""
    if options.search == "optuna":
        from ray.tune.search import ConcurrencyLimiter
        from ray.tune.search.optuna import OptunaSearch

        return ConcurrencyLimiter(OptunaSearch(seed=seed), max_concurrent=concurrent)
    from ray.tune.search.basic_variant import BasicVariantGenerator

    return BasicVariantGenerator(random_state=seed, max_concurrent=concurrent)

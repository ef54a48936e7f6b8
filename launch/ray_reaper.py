"""A local Ray that dies with its sweep driver, whatever kills the driver (issue 20.5).

`ray.init` starts gcs_server, raylet and their agents as the driver's children; a `kill -9` of the driver takes
down raylet and gcs, but the dashboard and runtime-env agents are re-parented to init and live on. Ray offers no
fate-sharing for them, so the driver marks its environment (every Ray process inherits it) and starts this reaper
in its own session: once the driver's pid is gone, it SIGKILLs every process that carries the mark, and the
agents, whose environment Ray rebuilds without it but with `RAY_RAYLET_PID` (their raylet, seen marked while the
driver lived), and whatever was the driver's descendant while it lived.

    python -m launch.ray_reaper DRIVER_PID DRIVER_CREATE_TIME
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil

MARK = "REPROGBENCH_RAY_DRIVER"  # in the environment of every Ray process a sweep driver started locally
POLL_S = 0.5


def mark_and_guard() -> None:
    """In the driver, before `ray.init`: mark what Ray will start, and start the reaper that ends it."""
    me = psutil.Process()
    os.environ[MARK] = f"{me.pid}:{me.create_time()}"
    subprocess.Popen([sys.executable, "-m", "launch.ray_reaper", str(me.pid), str(me.create_time())],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True, close_fds=True)


def driver_alive(pid: int, create_time: float) -> bool:
    try:  # the same pid with another start time is a new process: the driver is gone
        process = psutil.Process(pid)
        return abs(process.create_time() - create_time) < 0.01 and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def marked(mark: str, raylets: frozenset[str] = frozenset()) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter():
        try:
            env = process.environ()
            if process.pid != os.getpid() and (env.get(MARK) == mark or env.get("RAY_RAYLET_PID") in raylets):
                found.append(process)
        except psutil.Error:
            continue
    return found


def _name(process: psutil.Process) -> str:
    try:
        return process.name()
    except psutil.Error:
        return ""


def reap(mark: str, raylets: frozenset[str], rounds: int = 10) -> int:
    """SIGKILL what carries `mark` until none is left (a dying raylet may still start one); -> how many."""
    killed = 0
    for _ in range(rounds):
        left = marked(mark, raylets)
        if not left:
            break
        for process in left:
            try:
                process.kill()
                killed += 1
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(left, timeout=2)
    return killed


def main(argv: list[str]) -> int:
    pid, create_time = int(argv[0]), float(argv[1])
    os.environ.pop(MARK, None)
    mark, raylets, started = f"{pid}:{create_time}", set(), {}
    while driver_alive(pid, create_time):  # every Ray process of ours, seen while the driver lives
        try:
            started.update({p.pid: p for p in psutil.Process(pid).children(recursive=True)})
        except psutil.Error:
            break
        raylets |= {str(p.pid) for p in started.values() if _name(p) == "raylet"}
        time.sleep(POLL_S)
    reap(mark, frozenset(raylets))
    for process in started.values():  # psutil checks the start time: a reused pid is not ours
        if process.pid != os.getpid() and process.is_running():  # the reaper is the driver's child too
            try:
                process.kill()
            except psutil.Error:
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

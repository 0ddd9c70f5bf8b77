"""Tear a kit cluster down once the process that opened it is gone.

A notebook kernel that is shut down gets a few seconds before it is killed, and a real node's teardown
(pods deleted while the kubelet runs, firewall chains, host settings) takes longer: its atexit handler
was killed halfway and the node kept running. So whoever opens a cluster for a session also starts this
watcher, in its own session: it waits (bounded) for the opener to exit, then runs `down()` on the
cluster's state folder if that still exists. An explicit `close()` removes the folder first, so the
watcher then has nothing to do.

    python -m shipml.cluster.reaper OWNER_PID OWNER_START_TIME STATE_DIR
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil

MAX_HOURS = 12  # a cluster whose opener lives longer is torn down anyway (nobody forgets one for longer)


def spawn(state_dir: Path, owner: int | None = None) -> subprocess.Popen:
    """Start the watcher for `state_dir`, owned by `owner` (default: this process)."""
    owner = owner or os.getpid()
    started = psutil.Process(owner).create_time()
    log = state_dir.parent / "reaper.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as out:
        return subprocess.Popen([sys.executable, "-m", "shipml.cluster.reaper", str(owner), repr(started),
                                 str(state_dir)], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)


def owner_alive(pid: int, started: float) -> bool:
    """The opener still runs (same pid AND same start time: pids get reused)."""
    try:
        process = psutil.Process(pid)
        return abs(process.create_time() - started) < 0.01 and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def watch(pid: int, started: float, state_dir: Path, poll: float = 1.0,
          max_seconds: float = MAX_HOURS * 3600) -> bool:
    """Wait until the opener exits (or `max_seconds`), then tear down what is left. True if it did."""
    deadline = time.monotonic() + max_seconds
    while time.monotonic() < deadline and owner_alive(pid, started) and state_dir.exists():
        time.sleep(poll)
    if not (state_dir / "state.json").exists():
        return False
    from shipml.cluster.controlplane import down

    print(f"{time.strftime('%H:%M:%S')} opener {pid} gone: tearing down {state_dir}", flush=True)
    down(state_dir=state_dir)
    shutil.rmtree(state_dir, ignore_errors=True)
    return True


if __name__ == "__main__":
    watch(int(sys.argv[1]), float(sys.argv[2]), Path(sys.argv[3]))

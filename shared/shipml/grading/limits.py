"""Resource limits for a grading worker and the kernel it starts (``setrlimit``; inherited by children).

``RLIMIT_AS`` caps the address space of *each* process (a memory bomb then meets ``MemoryError``
instead of the machine's OOM killer); ``RLIMIT_NPROC`` caps how many processes and threads the user
may own, so a fork bomb fails. Linux counts ``RLIMIT_NPROC`` over *all* of the user's processes and
threads, and ignores it for root: the limit is set to what the user already runs plus ``nproc``
headroom, so the Jupyter kernel (zmq, OpenMP and BLAS threads) still starts. ``RLIMIT_CORE`` is 0.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass

import psutil

MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    memory_mib: int = 4096  # address space per process; the kernel with numpy/pandas/sklearn needs ~1.5 GiB
    nproc: int = 256  # processes + threads beyond what the user already runs
    cpu_seconds: int | None = None  # RLIMIT_CPU for the whole worker tree, if set

    def to_dict(self) -> dict:
        return {"memory_mib": self.memory_mib, "nproc": self.nproc, "cpu_seconds": self.cpu_seconds}


def user_tasks(uid: int | None = None) -> int:
    """Processes plus threads the user owns right now (what Linux counts against RLIMIT_NPROC)."""
    uid = os.getuid() if uid is None else uid
    total = 0
    for p in psutil.process_iter(["uids", "num_threads"]):
        try:
            if p.info["uids"] and p.info["uids"].real == uid:
                total += p.info["num_threads"] or 1
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total


def _lower(which: int, value: int) -> None:
    soft, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, hard if hard != resource.RLIM_INFINITY else value))


def apply(limits: Limits) -> dict:
    """Set the limits on the calling process (call it in the child before starting the kernel)."""
    if limits.memory_mib:
        _lower(resource.RLIMIT_AS, limits.memory_mib * MiB)
    if limits.nproc:
        _lower(resource.RLIMIT_NPROC, user_tasks() + limits.nproc)
    if limits.cpu_seconds:
        _lower(resource.RLIMIT_CPU, limits.cpu_seconds)
    _lower(resource.RLIMIT_CORE, 0)
    return {name: resource.getrlimit(getattr(resource, name))
            for name in ("RLIMIT_AS", "RLIMIT_NPROC", "RLIMIT_CPU", "RLIMIT_CORE")}

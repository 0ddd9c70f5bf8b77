"""Rollout state shared by the workers of one server (``shipml serve --workers N``), through files.

Each worker is a process with its own memory, yet an admin request reaches one of them: the rollout it
starts (or ends) must reach the others, and the canary analysis must see every worker's traffic. The
server's shared folder (``PROMETHEUS_MULTIPROC_DIR``, made by ``shipml serve`` for its metrics and
removed when it stops) gets a ``rollout/`` folder holding:

* ``state.json`` — per model, the rollout (the running one's versions, policy, share, bounds — or how it
  ended: state, reason, final verdict) and the history, with a generation number. Changed only under an exclusive lock
  (``state.lock``, :func:`fcntl.flock`), by read, modify, write to a temporary file and rename: a reader
  sees the old or the new file, never half of one, and a worker about to end a rollout first checks
  under the lock that it still runs — so two workers never both promote or abort it (the claim).
* ``counts/<rollout id>.<pid>.json`` — one worker's numbers in a running rollout (requests, errors,
  latencies and scores per version, client errors, shadow counts: :class:`~.state.Totals`), rewritten
  (write + rename) by that worker when they changed.
* ``applied/<pid>`` — the generation of ``state.json`` that worker applied last: an admin request
  answers once every worker has applied its change (or after a second), so what it says holds in
  every worker when the client reads it.

Every worker syncs every :data:`SYNC_SECONDS` in a task of its own (:class:`~.extension.RolloutExtension`):
one ``stat`` of ``state.json`` when nothing changed — the request path reads no file —, applying it when
it did; then it publishes its counts and, for a running automatic rollout, analyses everyone's counts
added up: the first worker whose verdict is ``promote`` or ``abort`` claims the decision.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from shipml.serving.metrics import multiprocess_dir

SYNC_SECONDS = 0.25  # how stale a worker's rollouts (and the others' counts) may be


def shared_folder() -> Path | None:
    """``<the server's shared folder>/rollout`` when it runs several workers, else None (state in the process)."""
    folder = multiprocess_dir()
    return Path(folder) / "rollout" if folder else None


def write_atomic(path: Path, text: str) -> None:
    """Readers see the old file or the new one, never a half-written one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class SharedState:
    """The files of one server's rollouts (see the module docstring)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.counts_dir = folder / "counts"
        self.counts_dir.mkdir(parents=True, exist_ok=True)
        self.applied_dir = folder / "applied"
        self.applied_dir.mkdir(exist_ok=True)
        self.path = folder / "state.json"
        self._seen: tuple[int, int, int] | None = None
        self._applied = -1
        self._counts: dict[Path, tuple[tuple[int, int, int], dict[str, Any]]] = {}  # path -> (stat, numbers)

    def read(self) -> dict[str, Any]:
        """``{"generation": n, "models": {name: {"rollout": spec, "history": [events]}}}``."""
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return {"generation": 0, "models": {}}

    def changed(self) -> dict[str, Any] | None:
        """The state if ``state.json`` changed since the last call, else None (one ``stat``)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        seen = (st.st_ino, st.st_mtime_ns, st.st_size)
        if seen == self._seen:
            return None
        self._seen = seen
        return self.read()

    @contextlib.contextmanager
    def update(self) -> Iterator[dict[str, Any]]:
        """The state to change in place, under the lock; written (next generation) if changed, unless the block
        raised."""
        with open(self.folder / "state.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            state = self.read()
            before = json.dumps(state["models"])
            yield state
            if json.dumps(state["models"]) != before:
                state["generation"] += 1
                write_atomic(self.path, json.dumps(state))

    def applied(self, generation: int) -> None:
        """This worker now runs the rollouts of ``generation``."""
        if generation > self._applied:
            self._applied = generation
            write_atomic(self.applied_dir / str(os.getpid()), str(generation))

    def lagging(self, generation: int) -> list[int]:
        """The live workers that have not applied ``generation`` yet."""
        late = []
        for path in self.applied_dir.glob("[0-9]*"):
            with contextlib.suppress(FileNotFoundError, ValueError):
                if int(path.read_text()) < generation and _alive(int(path.name)):
                    late.append(int(path.name))
        return late

    def publish(self, rollout_id: str, counts: dict[str, Any]) -> None:
        """This worker's numbers in a rollout (:meth:`shipml.serving.rollout.state.Totals.to_json`)."""
        write_atomic(self.counts_dir / f"{rollout_id}.{os.getpid()}.json", json.dumps(counts))

    def counts(self, rollout_id: str) -> dict[int, dict[str, Any]]:
        """Every other worker's published numbers in a rollout, by process id (a file is read again only
        when it changed)."""
        out: dict[int, dict[str, Any]] = {}
        for path in self.counts_dir.glob(f"{rollout_id}.*.json"):
            pid = int(path.name.split(".")[1])
            if pid == os.getpid():
                continue
            with contextlib.suppress(FileNotFoundError, ValueError):
                st = os.stat(path)
                seen = (st.st_ino, st.st_mtime_ns, st.st_size)
                cached = self._counts.get(path)
                if cached is None or cached[0] != seen:
                    cached = self._counts[path] = (seen, json.loads(path.read_text()))
                out[pid] = cached[1]
        return out

    def forget(self, rollout_id: str) -> None:
        """Remove every worker's numbers of a finished rollout (its model starts another one)."""
        for path in self.counts_dir.glob(f"{rollout_id}.*.json"):
            path.unlink(missing_ok=True)
            self._counts.pop(path, None)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

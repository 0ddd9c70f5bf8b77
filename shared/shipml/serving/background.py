"""Start a real model server in a child process from a notebook or a test, and always stop it.

    with BackgroundServer(models_dir) as server:      # or server = BackgroundServer(...).start()
        httpx.get(f"{server.url}/v2/health/ready")
    # stopped here, even after an error; a forgotten server is stopped when Python exits

The child runs ``python -m shipml serve`` on a free loopback port; its JSON log lines go to a file that
:meth:`BackgroundServer.logs` reads. Extra ``SHIPML_*`` settings are passed as environment variables.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import weakref
from pathlib import Path
from typing import Any

from shipml.errors import ShipmlError
from shipml.net import free_port
from shipml.processes import stop_process
from shipml.waiting import wait_until

_RUNNING: weakref.WeakSet[BackgroundServer] = weakref.WeakSet()


class BackgroundServer:
    """``shipml serve`` in a child process on 127.0.0.1; a context manager that always stops it."""

    def __init__(self, models: str | Path | None = None, *, port: int | None = None, workers: int = 1,
                 env: dict[str, str] | None = None, wait_ready: bool = True, timeout: float = 60.0,
                 command: list[str] | None = None, ready_path: str | None = None,
                 cwd: str | Path | None = None) -> None:
        """``command`` runs another app instead (``{port}`` in it is replaced), ready once ``ready_path``
        answers 200 (the seed's app in notebook 02; it has no health endpoint, so its docs page is used)."""
        self.models = Path(models) if models is not None else None
        self.command = command
        self.ready_path = ready_path
        self.cwd = cwd
        self.port = port or free_port()
        self.workers = workers
        self.env = dict(env or {})
        self.wait_ready = wait_ready
        self.timeout = timeout
        self.process: subprocess.Popen | None = None
        self._log_dir = Path(tempfile.mkdtemp(prefix="shipml-server-"))
        self.log_path = self._log_dir / "server.log"
        # the log folder goes when this object does (or when Python exits): no shipml-server-* left in /tmp
        weakref.finalize(self, shutil.rmtree, self._log_dir, ignore_errors=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self) -> BackgroundServer:
        if self.process is not None:
            return self
        env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}
        self._log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        if self.command is not None:
            cmd = [part.replace("{port}", str(self.port)) for part in self.command]
        else:
            if self.models is None:
                raise ShipmlError("BackgroundServer needs a model repository folder (or a command)")
            cmd = [sys.executable, "-m", "shipml", "serve", "--models", str(self.models), "--host", "127.0.0.1",
                   "--port", str(self.port), "--workers", str(self.workers)]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                            start_new_session=True, cwd=self.cwd)
        _RUNNING.add(self)
        try:
            self._wait(self.ready_path or ("/v2/health/ready" if self.wait_ready else "/v2/health/live"))
        except BaseException:
            self.stop()
            raise
        return self

    def _wait(self, path: str) -> None:
        import httpx

        # with several workers a new connection reaches any of them: every worker must have started, then many
        # new connections in a row must answer 200
        needed = 1 if self.workers == 1 or self.command is not None else 8 * self.workers

        def answered() -> bool:
            if self.process is None or self.process.poll() is not None:
                raise ShipmlError(f"the server exited while starting; its log says:\n{self.logs(tail=15)}")
            if needed > 1 and self._started_workers() < self.workers:
                return False
            return all(httpx.get(self.url + path, timeout=1.0).status_code == 200 for _ in range(needed))

        wait_until(answered, self.timeout, what=f"the server's {path}", retry_on=(httpx.HTTPError,),
                   detail=lambda: "its log says:\n" + self.logs(tail=15))

    def _started_workers(self) -> int:
        with open(self.log_path, "rb") as f:
            f.seek(self._log_start)
            return f.read().count(b'"msg": "model server starting"')

    def stop(self, timeout: float = 10.0) -> int | None:
        """Stop the server (SIGTERM, then SIGKILL after ``timeout``); returns its exit code."""
        proc, self.process = self.process, None
        _RUNNING.discard(self)
        if proc is None:
            return None
        return stop_process(proc, timeout)

    def logs(self, tail: int | None = None) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-tail:]) if tail else text

    def rss_bytes(self) -> int:
        """Resident memory of the server and its workers."""
        import psutil

        if self.process is None:
            return 0
        proc = psutil.Process(self.process.pid)
        return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)])

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.process and self.process.poll() is None else "stopped"
        return f"<BackgroundServer {self.url} {state}>"


@atexit.register
def _stop_all() -> None:
    for server in list(_RUNNING):
        server.stop(timeout=3)

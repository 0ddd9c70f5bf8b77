"""Stop a process the kit started, one way for the whole kit.

Servers are started in their own session (``start_new_session=True``) so that their workers can be killed
with them: SIGTERM first (a clean shutdown flushes logs and metrics), then SIGKILL to the whole group.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess


def stop_process(proc: subprocess.Popen, timeout: float = 10.0) -> int | None:
    """SIGTERM ``proc``; after ``timeout`` s SIGKILL its process group. Returns its exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # its own session: the workers go too
            proc.wait(5)
    return proc.returncode

"""Wait for something to become true, one way for the whole kit.

Servers, containers, pods and control-plane components all take a moment to come up. Every such wait
is the same loop: ask, sleep a little, give up at a deadline with a message that says what never
happened. :func:`wait_until` is that loop; a predicate that raises stops the wait at once (a process
that exited will not become ready), unless the exception is one of ``retry_on`` (a refused connection
just means "not yet").
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from shipml.errors import ShipmlError

T = TypeVar("T")


class WaitTimeout(ShipmlError, TimeoutError):
    """What we waited for did not happen in time."""


def wait_until(predicate: Callable[[], T], timeout: float, interval: float = 0.1, what: str = "condition",
               retry_on: tuple[type[BaseException], ...] = (), detail: Callable[[], str] | None = None) -> T:
    """Call ``predicate`` every ``interval`` seconds until it returns something truthy; return that.

    Raises :class:`WaitTimeout` after ``timeout`` seconds ("<what> not ready after N s", followed by
    ``detail()`` when given, e.g. the last line of a log). The predicate is always tried at least once,
    and once more at the deadline, so a slow machine does not lose a result that arrived during the last sleep.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        final = time.monotonic() >= deadline
        try:
            value = predicate()
        except retry_on as exc:
            last_error, value = exc, None
        if value:
            return value
        if final:
            break
        time.sleep(max(0.0, min(interval, deadline - time.monotonic())))
    message = f"{what} not ready after {timeout:g} s"
    if last_error is not None:
        message += f" (last error: {type(last_error).__name__}: {last_error})"
    if detail is not None:
        message += f": {detail()}"
    raise WaitTimeout(message)


def wait_for_log(process: subprocess.Popen, log: Path, pattern: str, timeout: float, what: str = "the server",
                 interval: float = 0.1) -> re.Match[str]:
    """Wait until a started ``process`` writes a line matching ``pattern`` to its ``log`` file; return the match.

    For servers that bind port 0 and say which port they got: no guessed port, no race. Fails at once,
    with the log's end, when the process exits first.
    """

    def announced() -> re.Match[str] | None:
        text = log.read_text(errors="replace") if log.exists() else ""
        if process.poll() is not None:
            raise ShipmlError(f"{what} exited (code {process.returncode}) before it was ready: {text[-2000:]}")
        return re.search(pattern, text)

    return wait_until(announced, timeout, interval=interval, what=what,
                      detail=lambda: log.read_text(errors="replace")[-500:] if log.exists() else "(no log)")

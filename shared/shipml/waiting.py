"""Wait for something to become true, one way for the whole kit.

Servers, containers, pods and control-plane components all take a moment to come up. Every such wait
is the same loop: ask, sleep a little, give up at a deadline with a message that says what never
happened. :func:`wait_until` is that loop; a predicate that raises stops the wait at once (a process
that exited will not become ready), unless the exception is one of ``retry_on`` (a refused connection
just means "not yet").
"""

from __future__ import annotations

import time
from collections.abc import Callable
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

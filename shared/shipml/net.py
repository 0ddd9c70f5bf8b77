"""Loopback ports, one way for the whole kit.

Tests, benchmarks, notebooks and the CLI all start servers on this machine, many at once (the CI
machine runs several jobs side by side). A fixed port collides; asking the kernel for port 0 does not.

Where the server can take an already-bound socket (uvicorn's ``Server.run(sockets=[...])``, a
``socketserver``), use :func:`bound_socket`: the port is ours from the moment it is chosen. Where it can
only take a number (a container's published port, a Kubernetes component's flag), :func:`free_port`
returns one nobody listens on *now*; another process could still take it before the server binds, so
callers that can retry should.
"""

from __future__ import annotations

import socket

LOOPBACK = "127.0.0.1"


def bound_socket(host: str = LOOPBACK, port: int = 0, backlog: int = 128) -> socket.socket:
    """A listening TCP socket on ``host`` (port 0: the kernel picks a free one); the caller closes it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port on ``host`` that nobody listens on right now (for servers that only take a number)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_of(sock: socket.socket) -> int:
    """The port a bound socket listens on."""
    return sock.getsockname()[1]


def is_listening(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False

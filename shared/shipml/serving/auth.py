"""Who may call the server: API keys (environment or a mounted file, several at once) and open paths.

Keys come from ``SHIPML_API_KEY`` and/or ``SHIPML_API_KEY_FILE`` — a file with one key per line
(``#`` comments allowed), the shape of a Kubernetes Secret mounted as a volume or a compose secret.
Several keys are valid at once, which is how a key is rotated: add the new key, move the clients,
remove the old one. The file is read again when it changes (checked at most every two seconds; a
Secret update reaches the pod without a restart). A key is never logged or echoed: requests are
counted under its *id*, the first 8 hex digits of its sha256.

With keys configured, only the probes stay open; ``/metrics``, ``/docs`` and ``/openapi.json`` need a
key too unless ``SHIPML_PUBLIC_OPS=true`` (then put them behind something else).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import time
from pathlib import Path

from shipml.errors import ShipmlError

PROBE_PREFIXES = ("/v2/health/", "/healthz", "/readyz")
OPS_PREFIXES = ("/docs", "/openapi.json", "/metrics")


def key_id(key: bytes) -> str:
    """A name for a key that can be logged: 8 hex digits of its sha256 (not reversible)."""
    return hashlib.sha256(key).hexdigest()[:8]


def read_key_file(path: Path) -> list[bytes]:
    """Keys in ``path``, one a line; blank lines and ``#`` comments skipped."""
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise ShipmlError(f"{path}: cannot read the API key file ({exc.strerror or exc})") from None
    keys = [line.strip() for line in text.splitlines()]
    return [k for k in keys if k and not k.startswith(b"#")]


class ApiKeys:
    """The valid keys; :meth:`match` answers the key id of a valid key, or None."""

    def __init__(self, keys: list[bytes], file: Path | None = None, recheck_seconds: float = 2.0) -> None:
        self._static = [k for k in keys if k]
        self.file = file
        self._recheck = recheck_seconds
        self._stamp: tuple[int, int] | None = None
        self._checked = 0.0
        self._keys: list[tuple[bytes, str]] = []
        self._load()

    @classmethod
    def from_settings(cls, settings) -> ApiKeys | None:
        """Keys from ``api_key`` and ``api_key_file``; None when neither is set (the server is open)."""
        static = [settings.api_key_value().encode()] if settings.api_key_value() else []
        file = getattr(settings, "api_key_file", None)
        if not static and file is None:
            return None
        return cls(static, Path(file) if file else None)

    def _load(self) -> None:
        keys = list(self._static)
        if self.file is not None:
            st = os.stat(self.file) if self.file.exists() else None
            self._stamp = (st.st_mtime_ns, st.st_size) if st else None
            keys += read_key_file(self.file)
        if not keys:
            raise ShipmlError(f"{self.file}: the API key file holds no key (one key per line)")
        self._keys = [(k, key_id(k)) for k in keys]

    def _maybe_reload(self) -> None:
        now = time.monotonic()
        if self.file is None or now - self._checked < self._recheck:
            return
        self._checked = now
        try:
            st = os.stat(self.file)
        except OSError:
            return  # a Secret being swapped: keep the keys we have
        if (st.st_mtime_ns, st.st_size) != self._stamp:
            with contextlib.suppress(ShipmlError):  # an empty file mid-write: keep the keys we have
                self._load()

    @property
    def ids(self) -> list[str]:
        return [kid for _, kid in self._keys]

    def match(self, given: bytes | None) -> str | None:
        """The id of the key ``given`` equals (compared in constant time against each), or None."""
        if given is None:
            return None
        self._maybe_reload()
        found = None
        for key, kid in self._keys:
            if hmac.compare_digest(given, key):
                found = kid
        return found


def needs_key(path: str, public_ops: bool) -> bool:
    """Whether a request to ``path`` must carry a key (when keys are configured at all)."""
    if path.startswith(PROBE_PREFIXES):
        return False
    return not (public_ops and path.startswith(OPS_PREFIXES))


def guard_options(settings) -> dict:
    """The middleware's keyword arguments for keys, open ops paths and rate limiting, from settings."""
    from shipml.serving.ratelimit import RateLimiter

    limiter = RateLimiter(settings.rate_limit, settings.rate_burst) if settings.rate_limit > 0 else None
    return {"api_keys": ApiKeys.from_settings(settings), "public_ops": settings.public_ops, "rate_limiter": limiter}

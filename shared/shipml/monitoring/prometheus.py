"""A real Prometheus on loopback for the notebook and the tests: started with the kit's config, always stopped.

    with PrometheusServer(targets=[server_url]) as prom:     # Debian's `prometheus` (.ci/setup.d/40-prometheus.sh)
        prom.wait_for_alert("ShipmlFeatureDrift", timeout=60)

It copies ``deploy/monitoring/prometheus.yml`` with the given scrape targets and intervals (1 s by
default: a lesson cannot wait 15 s per scrape), points it at ``deploy/monitoring/alerts.yml``, keeps its
storage in a temporary folder (deleted on stop) and listens on a free 127.0.0.1 port. Queries go through
Prometheus's HTTP API (``/api/v1/query``, ``/api/v1/alerts``).
"""

from __future__ import annotations

import atexit
import shutil
import signal
import subprocess
import tempfile
import time
import weakref
from pathlib import Path
from typing import Any

from shipml.errors import ShipmlError

_RUNNING: weakref.WeakSet[PrometheusServer] = weakref.WeakSet()


def prometheus_binary() -> str | None:
    """The ``prometheus`` executable, or None (install Debian's package: ``.ci/setup.d/40-prometheus.sh``)."""
    return shutil.which("prometheus")


def monitoring_dir() -> Path:
    from shipml.paths import repo_root

    return repo_root() / "deploy" / "monitoring"


class PrometheusServer:
    """``prometheus`` in a child process on 127.0.0.1 scraping ``targets`` (``host:port`` or URLs)."""

    def __init__(self, targets: list[str], *, interval: str = "1s", port: int | None = None,
                 rules: str | Path | None = None, timeout: float = 30.0) -> None:
        self.targets = [t.split("://", 1)[-1].rstrip("/") for t in targets]
        self.interval = interval
        self.rules = Path(rules) if rules else monitoring_dir() / "alerts.yml"
        self.timeout = timeout
        if port is None:
            from shipml.net import free_port  # a number: prometheus takes --web.listen-address, not a socket

            port = free_port()
        self.port = port
        self.process: subprocess.Popen | None = None
        self.workdir: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> dict[str, Any]:
        """The kit's prometheus.yml with this server's targets, intervals and rule file."""
        import yaml

        config = yaml.safe_load((monitoring_dir() / "prometheus.yml").read_text())
        config["global"]["scrape_interval"] = self.interval
        config["global"]["evaluation_interval"] = self.interval
        config["rule_files"] = [str(self.rules)]
        config["scrape_configs"][0]["static_configs"] = [{"targets": self.targets}]
        return config

    def start(self) -> PrometheusServer:
        import yaml

        binary = prometheus_binary()
        if binary is None:
            raise ShipmlError("prometheus is not installed (Debian: apt-get install prometheus, or run "
                              ".ci/setup.d/40-prometheus.sh as root)")
        self.workdir = Path(tempfile.mkdtemp(prefix="shipml-prometheus-"))
        config_path = self.workdir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        self.log_path = self.workdir / "prometheus.log"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [binary, f"--config.file={config_path}", f"--storage.tsdb.path={self.workdir / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=1h",
                 "--log.level=warn"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        _RUNNING.add(self)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        import httpx

        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise ShipmlError(f"prometheus exited while starting:\n{self.logs()[-2000:]}")
            try:
                if httpx.get(self.url + "/-/ready", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise ShipmlError(f"prometheus was not ready within {self.timeout:.0f}s:\n{self.logs()[-2000:]}")

    def logs(self) -> str:
        path = getattr(self, "log_path", None)
        return path.read_text(errors="replace") if path and path.exists() else ""

    def api(self, path: str, **params: Any) -> Any:
        """GET ``/api/v1/<path>``; the ``data`` of a successful answer."""
        import httpx

        r = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10.0)
        body = r.json()
        if body.get("status") != "success":
            raise ShipmlError(f"prometheus {path}: {body.get('error', r.text[:200])}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query: ``[{"metric": {...}, "value": [time, "text"]}, ...]``."""
        return self.api("query", query=expr)["result"]

    def alerts(self) -> list[dict[str, Any]]:
        """Pending and firing alerts (``state``, ``labels``, ``annotations``, ``activeAt``)."""
        return self.api("alerts")["alerts"]

    def targets_up(self) -> bool:
        return any(t.get("health") == "up" for t in self.api("targets")["activeTargets"])

    def wait_for_alert(self, name: str, state: str = "firing", timeout: float = 60.0,
                       poll: float = 0.5) -> dict[str, Any]:
        """The first alert ``name`` in ``state``; a clear error with what was seen after ``timeout``."""
        deadline = time.monotonic() + timeout
        seen: list = []
        while time.monotonic() < deadline:
            seen = self.alerts()
            for alert in seen:
                if alert["labels"].get("alertname") == name and alert["state"] == state:
                    return alert
            time.sleep(poll)
        states = sorted({(a["labels"].get("alertname"), a["state"]) for a in seen})
        raise ShipmlError(f"alert {name} was not {state} within {timeout:.0f}s (alerts seen: {states or 'none'})")

    def stop(self) -> None:
        proc, self.process = self.process, None
        _RUNNING.discard(self)
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


@atexit.register
def _stop_all() -> None:
    for server in list(_RUNNING):
        server.stop()

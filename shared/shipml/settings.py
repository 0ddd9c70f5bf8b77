"""The kit's one settings object: every knob of the running parts, read from ``SHIPML_*`` variables.

Twelve-factor style: a container or a Kubernetes manifest configures the server with environment
variables (``SHIPML_API_KEY=...``), a notebook or a test passes a :class:`Settings` directly.
Nothing here has side effects; reading the environment happens when ``Settings()`` is built.

=============================  ==================  =================================================
variable                       default             meaning
=============================  ==================  =================================================
``SHIPML_MODELS``              ``models``          model repository: ``<name>/<version>/`` bundles
``SHIPML_DEFAULT_MODEL``       (first by name)     model ``/predict`` serves when none is named
``SHIPML_API_KEY``             (none: open)        when set, clients send ``X-API-Key`` (or Bearer)
``SHIPML_MAX_BATCH_ROWS``      ``1000``            most rows in one request
``SHIPML_MAX_REQUEST_BYTES``   ``1048576``         largest request body (413 beyond)
``SHIPML_CORS_ORIGINS``        (none: CORS off)    browser origins allowed, comma separated or JSON
``SHIPML_LOG_LEVEL``           ``info``            debug, info, warning, error
``SHIPML_ACCESS_LOG``          ``errors``          ``all`` requests, only ``errors`` (>= 400 or slow), ``off``
``SHIPML_SLOW_REQUEST_MS``     ``250``             a request slower than this is logged as slow
``SHIPML_MODEL_THREADS``       ``1``               threads a model may use per worker process
``SHIPML_POLL_SECONDS``        ``2``               how often the repository is checked for new versions
``SHIPML_TRUSTED_KEYS``        (none: unsigned ok) folder of trusted ``*.pub`` keys: bundles must be signed
``SHIPML_API_KEY_FILE``        (none)              file of API keys, one a line (a mounted Secret), re-read on change
``SHIPML_PUBLIC_OPS``          ``false``           with keys set, leave ``/metrics``, ``/docs``, ``/openapi.json`` open
``SHIPML_RATE_LIMIT``          ``0`` (off)         requests per second per API key (per address without keys)
``SHIPML_RATE_BURST``          (the rate)          requests a caller may send at once before 429
``SHIPML_TLS_CERT``            (none: plain HTTP)  PEM certificate (chain) for HTTPS; with ``SHIPML_TLS_KEY``
``SHIPML_TLS_KEY``             (none)              PEM private key of that certificate
``SHIPML_HEADER_TIMEOUT``      ``10``              a connection must send a request's headers within this
``SHIPML_BODY_TIMEOUT``        ``30``              ... and its body within this of the headers (else 408)
``SHIPML_KEEPALIVE_SECONDS``   ``5``               an idle keep-alive connection is closed after this
``SHIPML_MONITOR``             ``false``           prediction log + live drift gauges (shipml.monitoring)
``SHIPML_MONITOR_LOG_DIR``     ``/tmp/shipml-...``  prediction log folder (rotated Parquet files)
``SHIPML_MONITOR_SAMPLE_RATE`` ``1.0``             share of predictions logged (0-1)
``SHIPML_MONITOR_QUEUE_ROWS``  ``100000``          log queue size; beyond it records are dropped+counted
``SHIPML_MONITOR_ROTATE_MB``   ``64``              a new log file after this many MB ...
``SHIPML_MONITOR_ROTATE_SECONDS`` ``300``          ... or this many seconds
``SHIPML_MONITOR_WINDOW_ROWS`` ``5000``            rows in the rolling window of the drift gauges
``SHIPML_MONITOR_DRIFT_SECONDS`` ``5``             how often the drift gauges are recomputed
``SHIPML_ROLLOUT_POLICY``      ``off``             a new version of a served model: ``off`` serves it at once,
                                                   ``canary``/``shadow``: a candidate (shipml.serving.rollout)
``SHIPML_ROLLOUT_SHARE``       ``0.1``             canary: share of requests the candidate answers
``SHIPML_ROLLOUT_MIN_REQUESTS`` ``100``            candidate requests before it can be promoted
``SHIPML_ROLLOUT_MAX_ERROR_INCREASE`` ``0.02``     allowed error ratio above the stable's
``SHIPML_ROLLOUT_MAX_SCORE_SHIFT`` ``0.2``         allowed KS statistic between the two score distributions
``SHIPML_ROLLOUT_MAX_LATENCY_RATIO`` ``2``         allowed p95 scoring time, candidate / stable ...
``SHIPML_ROLLOUT_LATENCY_SLACK_MS`` ``5``          ... differences below this many ms never fail
``SHIPML_ROLLOUT_SHADOW_QUEUE`` ``64``             shadow: most requests the candidate may lag behind
=============================  ==================  =================================================
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    """Settings of the model server (and the other running parts of the kit)."""

    model_config = SettingsConfigDict(env_prefix="SHIPML_", extra="ignore", protected_namespaces=())

    models: Path = Field(Path("models"), description="model repository: <name>/<version>/ bundle folders")
    default_model: str | None = Field(None, description="model served by /predict (default: first by name)")
    api_key: SecretStr | None = Field(None, description="require this key in X-API-Key (or Authorization: Bearer)")
    max_batch_rows: int = Field(1000, ge=1, le=1_000_000, description="most rows in one request")
    max_request_bytes: int = Field(1 << 20, ge=1024, description="largest accepted request body in bytes")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="origins allowed by CORS; empty means CORS is off")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    access_log: Literal["all", "errors", "off"] = Field(
        "errors", description="log every request, only failed or slow ones, or none")
    slow_request_ms: float = Field(250.0, gt=0, description="requests slower than this are logged")
    model_threads: int = Field(1, ge=1, le=64, description="threads per worker for the model (BLAS, OpenMP, ORT)")
    poll_seconds: float = Field(2.0, ge=0.0, description="repository check interval; 0 turns hot reload off")
    api_key_file: Path | None = Field(None, description="file of API keys, one a line (a mounted Secret)")
    public_ops: bool = Field(False, description="with API keys set, leave /metrics, /docs, /openapi.json open")
    rate_limit: float = Field(0.0, ge=0.0, description="requests per second per API key; 0 turns limiting off")
    rate_burst: int | None = Field(None, ge=1, description="requests a caller may send at once (default: the rate)")
    tls_cert: Path | None = Field(None, description="PEM certificate for HTTPS (with tls_key)")
    tls_key: Path | None = Field(None, description="PEM private key for HTTPS")
    trusted_keys: Path | None = Field(
        None, description="folder of trusted *.pub keys; when set, only bundles they signed load (shipml.signing)")
    header_timeout: float = Field(10.0, gt=0, description="close a connection whose request headers "
                                          "take longer (slow or silent clients)")
    body_timeout: float = Field(30.0, gt=0, description="answer 408 (and close) when a request's body is not "
                                "complete this many seconds after its headers (a client trickling it)")
    keepalive_seconds: int = Field(5, ge=1, description="close an idle keep-alive connection after this")
    # monitoring (shipml.monitoring): the prediction log and the live drift gauges
    monitor: bool = Field(False, description="log predictions and export drift gauges")
    monitor_log_dir: Path | None = Field(Path("/tmp/shipml-predictions"),
                                         description="prediction log folder; empty: gauges only, no files")
    monitor_sample_rate: float = Field(1.0, ge=0.0, le=1.0, description="share of predictions logged")
    monitor_queue_rows: int = Field(100_000, ge=1, description="log queue; when full, records are dropped")
    monitor_rotate_mb: float = Field(64.0, gt=0, description="start a new log file after this many MB")
    monitor_rotate_seconds: float = Field(300.0, gt=0, description="start a new log file after this many seconds")
    monitor_window_rows: int = Field(5000, ge=100, description="rows in the rolling drift window")
    monitor_drift_seconds: float = Field(5.0, gt=0, description="how often the drift gauges are recomputed")
    # progressive delivery (shipml.serving.rollout): canary and shadow releases, automated analysis
    rollout_policy: Literal["off", "canary", "shadow"] = Field(
        "off", description="what a newly loaded version of a served model does: off = serve it at once")
    rollout_share: float = Field(0.1, gt=0.0, le=0.5, description="canary: share of requests the candidate answers")
    rollout_min_requests: int = Field(100, ge=1, description="candidate requests needed before a promotion")
    rollout_max_error_increase: float = Field(0.02, ge=0.0, le=1.0, description="allowed error ratio over stable's")
    rollout_max_score_shift: float = Field(0.2, gt=0.0, le=1.0, description="allowed KS D between score distributions")
    rollout_max_latency_ratio: float = Field(2.0, ge=1.0, description="allowed p95 scoring time, candidate/stable")
    rollout_latency_slack_ms: float = Field(5.0, ge=0.0, description="p95 differences below this never fail")
    rollout_shadow_queue: int = Field(64, ge=1, le=10_000, description="shadow: most requests the candidate lags")

    @field_validator("monitor_log_dir", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                return json.loads(text)
            return [o.strip() for o in text.split(",") if o.strip()]
        return value

    @field_validator("log_level", "access_log", "rollout_policy", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    def api_key_value(self) -> str | None:
        return self.api_key.get_secret_value() if self.api_key else None

    def to_env(self) -> dict[str, str]:
        """These settings as ``SHIPML_*`` variables (to hand them to a server in another process)."""
        import json

        env = {
            "SHIPML_MODELS": str(self.models),
            "SHIPML_MAX_BATCH_ROWS": str(self.max_batch_rows),
            "SHIPML_MAX_REQUEST_BYTES": str(self.max_request_bytes),
            "SHIPML_CORS_ORIGINS": json.dumps(self.cors_origins),
            "SHIPML_LOG_LEVEL": self.log_level,
            "SHIPML_ACCESS_LOG": self.access_log,
            "SHIPML_SLOW_REQUEST_MS": str(self.slow_request_ms),
            "SHIPML_MODEL_THREADS": str(self.model_threads),
            "SHIPML_POLL_SECONDS": str(self.poll_seconds),
            "SHIPML_HEADER_TIMEOUT": str(self.header_timeout),
            "SHIPML_BODY_TIMEOUT": str(self.body_timeout),
            "SHIPML_KEEPALIVE_SECONDS": str(self.keepalive_seconds),
            "SHIPML_MONITOR": "true" if self.monitor else "false",
            "SHIPML_MONITOR_LOG_DIR": str(self.monitor_log_dir or ""),
            "SHIPML_MONITOR_SAMPLE_RATE": str(self.monitor_sample_rate),
            "SHIPML_MONITOR_QUEUE_ROWS": str(self.monitor_queue_rows),
            "SHIPML_MONITOR_ROTATE_MB": str(self.monitor_rotate_mb),
            "SHIPML_MONITOR_ROTATE_SECONDS": str(self.monitor_rotate_seconds),
            "SHIPML_MONITOR_WINDOW_ROWS": str(self.monitor_window_rows),
            "SHIPML_MONITOR_DRIFT_SECONDS": str(self.monitor_drift_seconds),
            "SHIPML_ROLLOUT_POLICY": self.rollout_policy,
            "SHIPML_ROLLOUT_SHARE": str(self.rollout_share),
            "SHIPML_ROLLOUT_MIN_REQUESTS": str(self.rollout_min_requests),
            "SHIPML_ROLLOUT_MAX_ERROR_INCREASE": str(self.rollout_max_error_increase),
            "SHIPML_ROLLOUT_MAX_SCORE_SHIFT": str(self.rollout_max_score_shift),
            "SHIPML_ROLLOUT_MAX_LATENCY_RATIO": str(self.rollout_max_latency_ratio),
            "SHIPML_ROLLOUT_LATENCY_SLACK_MS": str(self.rollout_latency_slack_ms),
            "SHIPML_ROLLOUT_SHADOW_QUEUE": str(self.rollout_shadow_queue),
        }
        if self.default_model:
            env["SHIPML_DEFAULT_MODEL"] = self.default_model
        if self.trusted_keys:
            env["SHIPML_TRUSTED_KEYS"] = str(self.trusted_keys)
        for name in ("api_key_file", "tls_cert", "tls_key", "rate_burst"):
            if getattr(self, name) is not None:
                env[f"SHIPML_{name.upper()}"] = str(getattr(self, name))
        env["SHIPML_PUBLIC_OPS"] = str(self.public_ops).lower()
        env["SHIPML_RATE_LIMIT"] = str(self.rate_limit)
        if self.api_key:
            env["SHIPML_API_KEY"] = self.api_key.get_secret_value()
        return env

"""The smoke test: real requests to the built image, served on 127.0.0.1 by the Docker engine.

It checks what a user of the deployed model relies on, through the real server: ready, refusing a
request without the API key (401) and a malformed one with a 4xx (never a 5xx), answering as the
candidate's name and version, with the probabilities the evaluated bundle gives (the image serves the
model that passed the gates, not another), and the known answers: an unmistakable fraud is flagged, an
ordinary grocery payment is not (the labels depend on the bundle's decision threshold, which the
threshold-free gates cannot see).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from shipml.errors import ShipmlError

KNOWN_ANSWERS = [  # (record, expected label): far beyond any sensible model's doubt
    ({"amount": 2500.0, "hour": 2, "merchant_category": "electronics", "distance_from_home_km": 3000.0,
      "card_present": False, "txn_count_24h": 15, "account_age_days": 5}, 1),
    ({"amount": 25.0, "hour": 12, "merchant_category": "grocery", "distance_from_home_km": 2.0,
      "card_present": True, "txn_count_24h": 1, "account_age_days": 3000}, 0),
]
MAX_PROBABILITY_DIFF = 1e-5


class SmokeFailed(ShipmlError):
    """The served image does not behave as the evaluated candidate."""


@dataclass
class SmokeReport:
    url: str
    requests: int = 0
    latency_ms: list[float] = field(default_factory=list)
    max_probability_diff: float = 0.0
    checks: list[str] = field(default_factory=list)

    def detail(self) -> dict[str, Any]:
        lat = np.asarray(self.latency_ms or [0.0])
        return {"url": self.url, "requests": self.requests, "checks": self.checks,
                "max_probability_diff": self.max_probability_diff,
                "latency_ms_p50": round(float(np.percentile(lat, 50)), 2),
                "latency_ms_max": round(float(lat.max()), 2)}


def records(frame: pd.DataFrame, names: list[str]) -> list[dict[str, Any]]:
    """JSON-ready records of ``frame``'s feature columns."""
    out = []
    for row in frame[names].to_dict(orient="records"):
        out.append({k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()})
    return out


def check_server(base_url: str, *, api_key: str | None, predictor: Any, rows: list[dict[str, Any]],
                 name: str, version: int) -> SmokeReport:
    """Every smoke check against a running server at ``base_url``; raises SmokeFailed at the first miss."""
    import httpx

    report = SmokeReport(base_url)
    headers = {"X-API-Key": api_key} if api_key else {}
    with httpx.Client(base_url=base_url, timeout=10) as http:
        if api_key:
            refused = http.post("/predict", json=rows[0])
            if refused.status_code != 401:
                raise SmokeFailed(f"a request without the API key got HTTP {refused.status_code}, not 401")
            report.checks.append("no API key: 401")
        bad = http.post("/predict", json={**rows[0], "amount": "lots"}, headers=headers)
        if not 400 <= bad.status_code < 500:
            raise SmokeFailed(f"a malformed request got HTTP {bad.status_code}, not a 4xx")
        report.checks.append(f"malformed request: {bad.status_code}")
        expected = predictor.predict_proba(_columns(rows + [r for r, _ in KNOWN_ANSWERS], predictor))
        for i, row in enumerate(rows + [r for r, _ in KNOWN_ANSWERS]):
            started = time.perf_counter()
            answer = http.post("/predict", json=row, headers=headers)
            report.latency_ms.append((time.perf_counter() - started) * 1000)
            report.requests += 1
            if answer.status_code != 200:
                raise SmokeFailed(f"POST /predict got HTTP {answer.status_code}: {answer.text[:200]}")
            body = answer.json()
            if (body.get("model"), body.get("version")) != (name, version):
                raise SmokeFailed(f"the server answered as {body.get('model')} v{body.get('version')}, "
                                  f"not the candidate {name} v{version}")
            served = np.array([body["probabilities"][c] for c in predictor.metadata.class_names])
            diff = float(np.abs(served - expected[i]).max())
            report.max_probability_diff = max(report.max_probability_diff, diff)
            if diff > MAX_PROBABILITY_DIFF:
                raise SmokeFailed(f"served probabilities differ from the evaluated bundle's by {diff:.2e} "
                                  f"(> {MAX_PROBABILITY_DIFF:.0e}): the image does not serve the candidate")
            if i >= len(rows):
                want = KNOWN_ANSWERS[i - len(rows)][1]
                if body["prediction"] != want:
                    raise SmokeFailed(
                        f"known answer wrong: a {'fraud' if want else 'legit'} case was labelled "
                        f"{body['prediction']} (p(fraud) {served[1]:.4f}, decision threshold "
                        f"{predictor.metadata.decision_threshold})")
        report.checks.append(f"{len(rows)} predictions match the bundle (max |dp| {report.max_probability_diff:.1e})")
        report.checks.append(f"{len(KNOWN_ANSWERS)} known answers right")
    return report


def smoke_image(tag: str, predictor: Any, rows: list[dict[str, Any]], *, name: str, version: int,
                timeout: float = 90) -> SmokeReport:
    """Run ``tag`` hardened as on the cluster (non-root, read-only root, /tmp only), with a fresh API
    key, on a free loopback port; check it; always remove the container."""
    from shipml.containers.run import run_container

    key = secrets.token_urlsafe(24)
    with run_container(tag, ports=[8080], environment={"SHIPML_API_KEY": key}, read_only=True,
                       tmpfs={"/tmp": "size=64m"}, labels={"io.shipml.pipeline": "smoke"}) as running:
        running.wait_until_ready("/v2/health/ready", timeout=timeout)
        return check_server(running.url("/").rstrip("/"), api_key=key, predictor=predictor, rows=rows,
                            name=name, version=version)


def _columns(rows: list[dict[str, Any]], predictor: Any) -> dict[str, list[Any]]:
    return {n: [r[n] for r in rows] for n in predictor.schema.names}

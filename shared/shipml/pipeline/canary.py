"""The canary stage's traffic: real requests answered by the stable and the candidate images, judged by
the automated canary analysis of :mod:`shipml.release.analysis` (the one analysis the kit has).

On fake nodes no pod runs, so both images are served by the Docker engine on 127.0.0.1 and each request
goes to the candidate with the probability the Service would give it: the canary's share of Ready pods
(1 of 4 by default). Requests stop as soon as the analysis decides (an abort can come early) or after
``canary_requests``; a verdict still "continue" then is not a promotion.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import numpy as np

from shipml.errors import ShipmlError
from shipml.pipeline.config import PipelineConfig
from shipml.pipeline.record import Candidate
from shipml.pipeline.state import DeployedState


def analyse_images(deployed: DeployedState, candidate: Candidate, config: PipelineConfig, share: float,
                   frame) -> tuple[str, dict[str, Any]]:
    """(decision, detail) after splitting real requests between the two images by ``share``."""
    import httpx

    from shipml.containers.run import run_container
    from shipml.pipeline.smoke import records
    from shipml.release.analysis import CanaryBounds, VersionStats, analyse

    try:
        bounds = CanaryBounds(**config.canary_bounds)
    except ValueError as exc:
        raise ShipmlError(f"canary_bounds: {str(exc).splitlines()[0]}") from None
    if not 0 < share < 1:
        raise ShipmlError(f"canary share {share} is not between 0 and 1 (are both tracks Ready?)")
    names = [c for c in frame.columns if c not in ("id", "is_fraud")]
    rows = records(frame.head(max(config.canary_requests, 1)), names)
    stable, cand = VersionStats(deployed.version), VersionStats(candidate.version)
    key = secrets.token_urlsafe(24)
    rng = np.random.default_rng(0)
    options = {"ports": [8080], "environment": {"SHIPML_API_KEY": key}, "read_only": True,
               "tmpfs": {"/tmp": "size=64m"}, "labels": {"io.shipml.pipeline": "canary"}}
    verdict = None
    sent = {"stable": 0, "candidate": 0}
    with run_container(deployed.image, **options) as old, run_container(candidate.image or "", **options) as new:
        old.wait_until_ready("/v2/health/ready", timeout=90)
        new.wait_until_ready("/v2/health/ready", timeout=90)
        urls = {"stable": old.url("/predict"), "candidate": new.url("/predict")}
        with httpx.Client(timeout=10, headers={"X-API-Key": key}) as http:
            for row in rows:
                track = "candidate" if rng.random() < share else "stable"
                stats = cand if track == "candidate" else stable
                started = time.perf_counter()
                try:
                    answer = http.post(urls[track], json=row)
                    ok = answer.status_code == 200
                    scores = [answer.json()["probabilities"]["fraud"]] if ok else []
                except (httpx.HTTPError, ValueError, KeyError):
                    ok, scores = False, []
                stats.record(ok, (time.perf_counter() - started) * 1000, scores)
                sent[track] += 1
                if track == "candidate":
                    verdict = analyse(stable, cand, bounds)
                    if verdict.decision != "continue":
                        break
    if verdict is None:
        verdict = analyse(stable, cand, bounds)
    detail = {"share": share, "requests": sent, "bounds": bounds.model_dump(),
              "verdict": verdict.model_dump(mode="json")}
    if verdict.decision == "continue":
        detail["verdict"]["reasons"] = [f"no verdict after {sum(sent.values())} requests "
                                        f"({sent['candidate']} to the candidate): raise canary_requests"]
        return "abort", detail
    return verdict.decision, detail

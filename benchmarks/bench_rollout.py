"""Rollout figures: how fast a bad canary is caught, what it cost the clients, and what shadow mode costs.

* **canary abort**: a real server (one worker) with stable version 1 (logistic regression) and a bad
  version 2 of each kind — a constant scorer (``DummyClassifier``) and a model that raises for payments
  above ``--fail-above`` (real bundles from :mod:`shipml.release.faults`). For each, a canary at ``--share``
  starts through the admin API; seeded transactions are sent one at a time, each with a client key of its
  own, until the analysis aborts. Recorded: requests sent until the abort, how many the candidate
  answered, and the client errors (5xx) it caused. Repeated for ``--seeds`` traffic seeds.
* **shadow on vs off**: two servers on the same version-1 bundle, one also holding version 2 with a
  shadow rollout running (``auto: false``, so it never ends), measured in interleaved rounds by the
  kit's httpx load generator on ``/predict`` (``--connections`` keep-alive connections); the req/s
  ratio is the figure. Both backends: ONNX (scored in the event loop) and scikit-learn.

    python benchmarks/bench_rollout.py --json benchmarks/results/bench_rollout.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

KEY = "bench-rollout-key"
AUTH = {"X-API-Key": KEY}


def traffic(n: int, seed: int) -> list[dict]:
    from shipml.data import SCHEMA, make_transactions

    return json.loads(make_transactions(n, seed=seed)[SCHEMA.names].to_json(orient="records"))


def prepare(workdir: Path, rows: int, fail_above: float) -> dict[str, Path]:
    from shipml.data import make_transactions
    from shipml.edge.export import export_bundle
    from shipml.models import save_bundle, train
    from shipml.release.faults import constant_bundle, failing_bundle

    df = make_transactions(rows, seed=0)
    out = {"stable": save_bundle(train(df, "lr", seed=0), workdir / "b" / "stable", name="fraud", version=1),
           "good": save_bundle(train(make_transactions(rows, seed=1), "lr", seed=1), workdir / "b" / "good",
                               name="fraud", version=2),
           "constant": constant_bundle(df, workdir / "b" / "constant"),
           "failing": failing_bundle(df, workdir / "b" / "failing", amount_above=fail_above)}
    out["stable-onnx"] = export_bundle(out["stable"], workdir / "b" / "stable-onnx", parity_rows=2000,
                                       name="fraud").path
    out["good-onnx"] = export_bundle(out["good"], workdir / "b" / "good-onnx", parity_rows=2000, name="fraud",
                                     version=2).path
    return out


def repo(root: Path, versions: dict[int, Path]) -> Path:
    for v, bundle in versions.items():
        shutil.copytree(bundle, root / "fraud" / str(v))
    return root


def bench_abort(bundles: dict[str, Path], workdir: Path, share: float, seeds: int, min_requests: int,
                limit: int) -> dict:
    import httpx
    from shipml.serving import BackgroundServer

    out: dict = {}
    for kind in ("constant", "failing"):
        root = repo(workdir / f"abort-{kind}", {1: bundles["stable"], 2: bundles[kind]})
        runs = []
        env = {"SHIPML_API_KEY": KEY, "SHIPML_ACCESS_LOG": "off", "SHIPML_POLL_SECONDS": "0"}
        with BackgroundServer(root, env=env) as server, httpx.Client(base_url=server.url, headers=AUTH,
                                                                     timeout=10) as client:
            for seed in range(seeds):
                rows = traffic(limit, seed=100 + seed)
                r = client.put("/admin/models/fraud/rollout", json={
                    "candidate": 2, "stable": 1, "share": share, "bounds": {"min_requests": min_requests}})
                r.raise_for_status()
                sent = errors = 0
                started = time.perf_counter()
                for i, row in enumerate(rows):
                    answer = client.post("/predict", json=row, headers={"X-Client-Key": f"s{seed}-c{i}"})
                    sent += 1
                    errors += answer.status_code >= 500
                    state = client.get("/admin/models/fraud/rollout").json()
                    if state["state"] != "running":
                        break
                took = time.perf_counter() - started
                cand = state["verdict"]["candidate"]
                runs.append({"seed": seed, "state": state["state"], "requests_sent": sent,
                             "candidate_requests": cand["requests"], "client_errors": errors,
                             "client_errors_server_count": state["candidate_client_errors"],
                             "error_share_of_sent": errors / sent, "seconds": round(took, 2),
                             "reason": state["reason"]})
                print(f"  {kind} seed {seed}: {state['state']} after {sent} requests ({cand['requests']} to the "
                      f"candidate), {errors} client errors", flush=True)
                if state["state"] == "running":
                    client.delete("/admin/models/fraud/rollout")
        aborted = [r for r in runs if r["state"] == "aborted"]

        def median(field: str, runs: list[dict] = aborted) -> float | None:
            return float(np.median([r[field] for r in runs])) if runs else None

        out[kind] = {"runs": runs, "aborted": len(aborted), "of": len(runs),
                     "median_requests_sent": median("requests_sent"),
                     "median_candidate_requests": median("candidate_requests"),
                     "median_client_errors": median("client_errors"),
                     "max_client_errors": max((r["client_errors"] for r in aborted), default=None)}
    return out


def bench_shadow(bundles: dict[str, Path], workdir: Path, rounds: int, requests: int, connections: int) -> dict:
    import httpx
    from shipml.serving import BackgroundServer
    from shipml.serving.loadtest import run_load

    body = traffic(1, seed=3)[0]
    env = {"SHIPML_API_KEY": KEY, "SHIPML_ACCESS_LOG": "off", "SHIPML_POLL_SECONDS": "0"}
    out = {}
    for backend, suffix in (("onnx", "-onnx"), ("sklearn", "")):
        off_repo = repo(workdir / f"shadow-off-{backend}", {1: bundles["stable" + suffix]})
        on_repo = repo(workdir / f"shadow-on-{backend}", {1: bundles["stable" + suffix], 2: bundles["good" + suffix]})
        results: dict[str, list[float]] = {"off": [], "on": []}
        with BackgroundServer(off_repo, env=env) as off, BackgroundServer(on_repo, env=env) as on:
            r = httpx.put(f"{on.url}/admin/models/fraud/rollout", headers=AUTH, timeout=10,
                          json={"candidate": 2, "stable": 1, "policy": "shadow", "auto": False})
            r.raise_for_status()
            for n in range(rounds):
                pairs = (("off", off), ("on", on)) if n % 2 == 0 else (("on", on), ("off", off))
                for name, server in pairs:
                    res = run_load(server.url + "/predict", body, requests=requests, connections=connections,
                                   headers=AUTH)
                    if res.failures:
                        raise RuntimeError(f"{res.failures} failed requests ({backend}, shadow {name})")
                    results[name].append(res.rps)
                    print(f"  {backend} round {n + 1} shadow {name:3}: {res.rps:8,.0f} req/s", flush=True)
            time.sleep(1.0)
            st = httpx.get(f"{on.url}/admin/models/fraud/rollout", headers=AUTH, timeout=10).json()
        med = {k: float(np.median(v)) for k, v in results.items()}
        out[backend] = {"rounds": rounds, "requests_per_round": requests, "connections": connections,
                        "rps_off": results["off"], "rps_on": results["on"], "median_rps_off": med["off"],
                        "median_rps_on": med["on"], "ratio_on_off": med["on"] / med["off"],
                        "shadow_compared": st["shadow_compared"], "shadow_dropped": st["shadow_dropped"],
                        "shadow_mean_abs_diff": st["shadow_mean_abs_diff"], "state_after": st["state"]}
        print(f"  {backend}: ratio {out[backend]['ratio_on_off']:.3f}, compared {st['shadow_compared']}, "
              f"dropped {st['shadow_dropped']}", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    parser.add_argument("--rows", type=int, default=30_000, help="training rows of each bundle")
    parser.add_argument("--share", type=float, default=0.1, help="canary share")
    parser.add_argument("--min-requests", type=int, default=200, help="the canary bounds' min_requests")
    parser.add_argument("--fail-above", type=float, default=250.0, help="the failing model raises above this amount")
    parser.add_argument("--seeds", type=int, default=5, help="traffic seeds per bad kind")
    parser.add_argument("--limit", type=int, default=3000, help="most requests per canary run")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--requests", type=int, default=3000, help="requests per round (shadow on vs off)")
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args(argv)

    from shipml.timing import Measurement

    measurement = Measurement()  # the code that runs is the code at the start
    workdir = Path(tempfile.mkdtemp(prefix="bench-rollout-"))
    try:
        bundles = prepare(workdir, args.rows, args.fail_above)
        print(f"canary abort (share {args.share}) ...", flush=True)
        abort = bench_abort(bundles, workdir, args.share, args.seeds, args.min_requests, args.limit)
        print("shadow on vs off ...", flush=True)
        shadow = bench_shadow(bundles, workdir, args.rounds, args.requests, args.connections)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results = measurement.write({
        "benchmark": "bench_rollout",
        "settings": {"share": args.share, "min_requests": args.min_requests, "fail_above": args.fail_above,
                     "train_rows": args.rows, "seeds": args.seeds},
        "canary_abort": abort, "shadow_overhead": shadow}, args.json)
    print(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

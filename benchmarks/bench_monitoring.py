"""Monitoring figures: server req/s with the prediction log on vs off, rows logged = answered, drift cost and power.

* **log on vs off**: two real servers (uvicorn, one worker each) on the same bundle, one with
  ``SHIPML_MONITOR=1`` (prediction log to Parquet + live drift gauges), measured in interleaved rounds by the
  kit's httpx load generator on the same 2 cores; the ratio is the figure (goal >= 0.9x).
* **20,000 requests**: the server with the log answers 20,000 ``/predict`` requests; after it stops, rows in
  the log vs requests answered (``shipml_requests_total``) and the drop counter.
* **drift time**: :func:`shipml.monitoring.drift.detect_drift` on 1,000,000 logged rows (one window), and the
  same rows as 200 windows of 5,000.
* **detection delay**: calm traffic, then drift 0.25 / 0.5 / 1.0 from a window boundary on; tumbling windows of
  ``--window`` rows; rows after the drift starts until the end of the first flagged window (median over seeds).
* **false alarms**: calm windows of ``--window`` and 5,000 rows that flag.

    python benchmarks/bench_monitoring.py --json benchmarks/results/bench_monitoring.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def prepare(workdir: Path, rows: int, backend: str) -> tuple[Path, Path]:
    """A bundle (lr, trained on ``rows``) in a model repository; ONNX export when ``backend`` is onnx."""
    from shipml.data import make_transactions
    from shipml.models import save_bundle, train

    sk = save_bundle(train(make_transactions(rows, seed=0), "lr", seed=0), workdir / "sk" / "fraud-lr")
    repo = workdir / "models"
    if backend == "onnx":
        from shipml.edge.export import export_bundle

        export_bundle(sk, repo / "fraud-lr" / "1", parity_rows=2000)
    else:
        shutil.copytree(sk, repo / "fraud-lr" / "1")
    return sk, repo


def record() -> dict:
    from shipml.data import make_transactions

    row = make_transactions(1, seed=3).iloc[0]
    return {"amount": float(row.amount), "hour": int(row.hour), "merchant_category": str(row.merchant_category),
            "distance_from_home_km": float(row.distance_from_home_km), "card_present": bool(row.card_present),
            "txn_count_24h": int(row.txn_count_24h), "account_age_days": int(row.account_age_days)}


def counted_200(url: str) -> int:
    import httpx

    total = 0.0
    for line in httpx.get(url + "/metrics").text.splitlines():
        if line.startswith("shipml_requests_total{") and 'route="/predict"' in line and 'status="200"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def bench_log_overhead(repo: Path, workdir: Path, rounds: int, requests: int, connections: int) -> dict:
    from shipml.serving import BackgroundServer
    from shipml.serving.loadtest import run_load

    env_on = {"SHIPML_MONITOR": "1", "SHIPML_MONITOR_LOG_DIR": str(workdir / "log-overhead")}
    url_body = record()
    results: dict[str, list[float]] = {"off": [], "on": []}
    with BackgroundServer(repo) as off, BackgroundServer(repo, env=env_on) as on:
        for r in range(rounds):
            for name, server in (("off", off), ("on", on)) if r % 2 == 0 else (("on", on), ("off", off)):
                res = run_load(server.url + "/predict", url_body, requests=requests, connections=connections)
                if res.failures:
                    raise RuntimeError(f"{res.failures} failed requests ({name})")
                results[name].append(res.rps)
                print(f"  round {r + 1} log {name:3}: {res.rps:8,.0f} req/s", flush=True)
    med = {k: float(np.median(v)) for k, v in results.items()}
    return {"rounds": rounds, "requests_per_round": requests, "connections": connections, "rps_off": results["off"],
            "rps_on": results["on"], "median_rps_off": med["off"], "median_rps_on": med["on"],
            "ratio_on_off": med["on"] / med["off"], "goal": 0.9, "reached": med["on"] / med["off"] >= 0.9}


def bench_rows_logged(repo: Path, workdir: Path, requests: int, connections: int) -> dict:
    from shipml.monitoring.windows import read_log
    from shipml.serving import BackgroundServer
    from shipml.serving.loadtest import run_load

    log_dir = workdir / "log-20k"
    with BackgroundServer(repo, env={"SHIPML_MONITOR": "1", "SHIPML_MONITOR_LOG_DIR": str(log_dir)}) as server:
        res = run_load(server.url + "/predict", record(), requests=requests, connections=connections)
        answered = counted_200(server.url)
        time.sleep(1.0)
        metrics = __import__("httpx").get(server.url + "/metrics").text
        started = time.perf_counter()
        server.stop(timeout=120)  # a graceful stop completes the log's last file (SIGKILL would leave a .partial)
        stop_s = time.perf_counter() - started
    dropped = next((float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                    if line.startswith("shipml_prediction_log_dropped_total")), float("nan"))
    logged = len(read_log(log_dir))
    return {"requests_sent": requests, "warmup_requests": min(50, requests), "answered_200": answered,
            "failures": res.failures, "rows_logged": logged, "dropped": dropped, "rps": res.rps,
            "stop_seconds": stop_s, "files": len(list(log_dir.glob("*.parquet"))),
            "partial_files": len(list(log_dir.glob("*.partial"))), "equal": logged == answered}


def bench_drift_time(reference, predictor, rows: int) -> dict:
    from shipml.data import make_transactions
    from shipml.monitoring.drift import detect_drift, drift_over_windows
    from shipml.monitoring.windows import split_windows

    frame = make_transactions(rows, seed=77, drift=0.3)
    frame["score"] = predictor.predict_proba(frame[predictor.schema.names])[:, 1]
    frame["time"] = np.arange(rows)
    started = time.perf_counter()
    result = detect_drift(reference, frame)
    one = time.perf_counter() - started
    started = time.perf_counter()
    table = drift_over_windows(reference, split_windows(frame, 5000))
    many = time.perf_counter() - started
    return {"rows": rows, "one_window_s": one, "windows_5000_s": many, "windows": int(table["window"].nunique()),
            "drifted_in_one_window": result.drifted}


def bench_detection(reference, predictor, window: int, seeds: int, calm_windows: int = 5) -> dict:
    from shipml.data import make_transactions
    from shipml.monitoring.drift import detect_drift

    out = {}
    for level in (0.25, 0.5, 1.0):
        delays = []
        for s in range(seeds):
            calm = make_transactions(window * calm_windows, seed=1000 + s)
            drifted = make_transactions(window * 40, seed=2000 + s, drift=level, start_id=window * calm_windows)
            delay = None
            for i in range(40):
                part = drifted.iloc[i * window:(i + 1) * window]
                part = part.assign(score=predictor.predict_proba(part[predictor.schema.names])[:, 1])
                if detect_drift(reference, part).flagged:
                    delay = (i + 1) * window
                    break
            delays.append(delay)
            del calm
        found = [d for d in delays if d is not None]
        out[str(level)] = {"median_rows": float(np.median(found)) if found else None,
                           "max_rows": max(found) if found else None, "missed": len(delays) - len(found),
                           "seeds": seeds}
    return out


def bench_false_alarms(reference, predictor, sizes: list[int], windows: int) -> dict:
    from shipml.data import make_transactions
    from shipml.monitoring.drift import detect_drift

    out = {}
    for size in sizes:
        flags = 0
        for s in range(windows):
            part = make_transactions(size, seed=5000 + s)
            part = part.assign(score=predictor.predict_proba(part[predictor.schema.names])[:, 1])
            flags += detect_drift(reference, part).flagged
        out[str(size)] = {"windows": windows, "flagged": int(flags), "rate": flags / windows}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    parser.add_argument("--rows", type=int, default=50_000, help="training rows of the bundle")
    parser.add_argument("--backend", choices=["onnx", "sklearn"], default="onnx")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--requests", type=int, default=5000, help="requests per round (log on vs off)")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--soak", type=int, default=20_000, help="requests of the rows-logged run")
    parser.add_argument("--drift-rows", type=int, default=1_000_000)
    parser.add_argument("--window", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--false-windows", type=int, default=200)
    parser.add_argument("--only-soak", action="store_true", help="only the rows-logged run (prints its JSON)")
    args = parser.parse_args(argv)

    from shipml.monitoring.reference import load_reference
    from shipml.predictor import load_predictor
    from shipml.timing import Measurement

    measurement = Measurement()  # the code that runs is the code at the start
    workdir = Path(tempfile.mkdtemp(prefix="bench-monitoring-"))
    try:
        sk, repo = prepare(workdir, args.rows, args.backend)
        reference, predictor = load_reference(sk), load_predictor(sk)
        if args.only_soak:
            print(json.dumps(bench_rows_logged(repo, workdir, args.soak, args.connections), indent=2))
            return 0
        print("log on vs off ...", flush=True)
        overhead = bench_log_overhead(repo, workdir, args.rounds, args.requests, args.connections)
        print(f"  ratio {overhead['ratio_on_off']:.3f}", flush=True)
        print(f"{args.soak:,} requests with the log ...", flush=True)
        soak = bench_rows_logged(repo, workdir, args.soak, args.connections)
        print(f"  {soak}", flush=True)
        print(f"drift on {args.drift_rows:,} rows ...", flush=True)
        drift_time = bench_drift_time(reference, predictor, args.drift_rows)
        print(f"  {drift_time}", flush=True)
        print("detection delay ...", flush=True)
        detection = bench_detection(reference, predictor, args.window, args.seeds)
        print(f"  {detection}", flush=True)
        print("false alarms ...", flush=True)
        false = bench_false_alarms(reference, predictor, sorted({args.window, 5000}), args.false_windows)
        print(f"  {false}", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results = measurement.write({
        "benchmark": "bench_monitoring", "backend": args.backend, "train_rows": args.rows,
        "log_overhead": overhead, "rows_logged": soak, "drift_time": drift_time,
        "detection_delay": {"window_rows": args.window, **detection}, "false_alarms": false,
        "decision": "test p < 0.01 / tests (Bonferroni) and PSI >= 0.02"}, args.json)
    print(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

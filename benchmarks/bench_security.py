"""What the security defences cost: signature checks at start-up, API keys, rate limiting, TLS.

    .venv/bin/python benchmarks/bench_security.py [--json PATH] [--md PATH] [--duration 5] [--repeat 3]

One ONNX lr bundle (signed), served by ``shipml serve`` as one uvicorn worker on 127.0.0.1, under the
same ``wrk`` load of single-row ``POST /predict`` (8 connections), in these configurations, side by side
in interleaved rounds (median reported):

* ``plain``: no key, no limit, HTTP; ``key``: ``SHIPML_API_KEY`` required;
* ``key+signed``: plus ``SHIPML_TRUSTED_KEYS`` (the bundle's signature checked when it is loaded);
* ``key+ratelimit``: plus the per-key limiter on every request (a rate so high it never refuses, so
  what is measured is its cost on the hot path);
* ``key+tls``: plus HTTPS (``SHIPML_TLS_CERT``/``KEY``, a certificate made by ``shipml.tls``).

Also: start-up to ready with and without signature checks (median of ``--startups``), and in-process
costs per call of ``verify_bundle`` (hashes vs hashes + signature), ``ApiKeys.match`` and
``RateLimiter.allow``. The commit and the load average before and after are recorded: the machine is
shared, read ratios, not absolute numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from shipml.net import free_port
from shipml.processes import stop_process
from shipml.timing import Measurement, describe
from shipml.waiting import wait_until

CONFIGS = ("plain", "key", "key+signed", "key+ratelimit", "key+tls")
KEY = "bench-key-5c2a91e0d7"
RECORD = {"amount": 182.4, "hour": 23, "merchant_category": "online_retail", "distance_from_home_km": 12.5,
          "card_present": False, "txn_count_24h": 5, "account_age_days": 420}
LUA = """wrk.method = "POST"
wrk.body = [[%s]]
wrk.headers["Content-Type"] = "application/json"
%s
done = function(summary, latency, requests)
  io.write(string.format("RESULT %%d %%d %%d %%d %%d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), summary.errors.status + summary.errors.connect
    + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""



def prepare(workdir: Path, rows: int) -> dict[str, Path]:
    """An ONNX lr bundle signed by a fresh key, its repository, a trusted folder, a TLS pair."""
    from shipml.bundle import sign_bundle
    from shipml.data import make_transactions
    from shipml.edge.export import export_bundle
    from shipml.models import train_bundle
    from shipml.signing import new_keypair
    from shipml.tls import make_local_certificate

    sk = train_bundle(make_transactions(rows, seed=0), "lr", workdir / "sk", seed=0)
    repo = workdir / "repo"
    export_bundle(sk, repo / "fraud-lr" / "1", parity_rows=2000, name="fraud-lr")
    pair = new_keypair("bench", workdir / "keys")
    sign_bundle(repo / "fraud-lr" / "1", pair.private_path)
    trusted = workdir / "trusted"
    trusted.mkdir()
    shutil.copy(pair.public_path, trusted)
    cert = make_local_certificate(workdir / "certs")
    return {"repo": repo, "bundle": repo / "fraud-lr" / "1", "trusted": trusted, "cert": cert.cert,
            "key": cert.key, "ca": cert.ca}


def config_env(config: str, paths: dict[str, Path]) -> tuple[dict[str, str], str]:
    env: dict[str, str] = {}
    if config != "plain":
        env["SHIPML_API_KEY"] = KEY
    if config == "key+signed":
        env["SHIPML_TRUSTED_KEYS"] = str(paths["trusted"])
    if config == "key+ratelimit":
        env.update(SHIPML_RATE_LIMIT="1000000000", SHIPML_RATE_BURST="1000000000")
    scheme = "http"
    if config == "key+tls":
        env.update(SHIPML_TLS_CERT=str(paths["cert"]), SHIPML_TLS_KEY=str(paths["key"]))
        scheme = "https"
    return env, scheme


def start(config: str, paths: dict[str, Path], log: Path) -> tuple[subprocess.Popen, str, float]:
    """Start the server; return it, its base URL and the seconds from spawn to ready."""
    import ssl

    import httpx

    env, scheme = config_env(config, paths)
    port = free_port()
    base = f"{scheme}://{'localhost' if scheme == 'https' else '127.0.0.1'}:{port}"
    verify = ssl.create_default_context(cafile=str(paths["ca"])) if scheme == "https" else True
    started = time.perf_counter()
    with open(log, "ab") as f:
        proc = subprocess.Popen([sys.executable, "-m", "shipml", "serve", "--models", str(paths["repo"]),
                                 "--port", str(port)], stdout=f, stderr=subprocess.STDOUT,
                                env={**os.environ, **env, "PYTHONUNBUFFERED": "1"}, start_new_session=True)
    def ready() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"{config}: the server exited: {log.read_text()[-1500:]}")
        return httpx.get(f"{base}/v2/health/ready", verify=verify, timeout=1).status_code == 200

    try:
        wait_until(ready, 90, interval=0.02, what=f"{config}: the server", retry_on=(httpx.HTTPError,))
    except BaseException:
        stop_process(proc)
        raise
    return proc, base, time.perf_counter() - started


def wrk(url: str, script: Path, connections: int, seconds: float) -> dict:
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "5s", "-s", str(script),
                          url], capture_output=True, text=True, timeout=seconds + 60)
    m = re.search(r"RESULT (\d+) (\d+) (\d+) (\d+) (\d+)", out.stdout)
    if not m:
        raise RuntimeError(f"wrk said: {out.stdout}\n{out.stderr}")
    n, dur, p50, p99, errors = map(int, m.groups())
    return {"rps": n / (dur / 1e6), "p50_ms": p50 / 1000, "p99_ms": p99 / 1000, "errors": errors, "requests": n}


def measure(config: str, paths: dict[str, Path], seconds: float, connections: int, workdir: Path) -> dict:
    script = workdir / f"{config}.lua"
    header = f'wrk.headers["X-API-Key"] = "{KEY}"' if config != "plain" else ""
    script.write_text(LUA % (json.dumps(RECORD), header))
    proc, base, ready_s = start(config, paths, workdir / f"{config}.log")
    try:
        wrk(f"{base}/predict", script, connections, min(2.0, seconds))  # warm-up
        row = wrk(f"{base}/predict", script, connections, seconds)
    finally:
        stop_process(proc)
    return {"config": config, "connections": connections, "ready_s": ready_s, **row}


def startup_times(paths: dict[str, Path], n: int, workdir: Path) -> dict[str, float]:
    times: dict[str, list[float]] = {"key": [], "key+signed": []}
    for _ in range(n):
        for config in times:
            proc, _, seconds = start(config, paths, workdir / f"startup-{config}.log")
            stop_process(proc)
            times[config].append(seconds)
    return {c: statistics.median(v) for c, v in times.items()}


def micro(paths: dict[str, Path], n: int = 2000) -> dict[str, float]:
    """Microseconds per call of the in-process pieces."""
    from shipml.bundle import verify_bundle
    from shipml.serving.auth import ApiKeys
    from shipml.serving.ratelimit import RateLimiter

    def per_call(fn, calls: int) -> float:
        fn()
        started = time.perf_counter()
        for _ in range(calls):
            fn()
        return (time.perf_counter() - started) / calls * 1e6

    keys = ApiKeys([KEY.encode(), b"second-key-for-rotation"])
    limiter = RateLimiter(1e9, 10**9)
    bundle, trusted = paths["bundle"], paths["trusted"]
    return {"verify_hashes_us": per_call(lambda: verify_bundle(bundle, trusted_keys=False), n // 10),
            "verify_signed_us": per_call(lambda: verify_bundle(bundle, trusted_keys=trusted), n // 10),
            "api_key_match_us": per_call(lambda: keys.match(KEY.encode()), n * 10),
            "rate_limit_allow_us": per_call(lambda: limiter.allow("k1"), n * 10)}


def markdown(r: dict) -> str:
    base = next(x for x in r["rows"] if x["config"] == "key")
    lines = [f"`POST /predict` (ONNX lr, one uvicorn worker), `wrk` {r['connections']} connections, "
             f"{r['duration_s']:g} s per cell, median of {r['repeat']} interleaved round(s). "
             f"{describe(r['context'])} (Shared machine: read the ratios.)", "",
             "| configuration | req/s | × key | p50 ms | p99 ms | errors |", "|---|---:|---:|---:|---:|---:|"]
    for x in r["rows"]:
        lines.append(f"| {x['config']} | {x['rps']:,.0f} | {x['rps'] / base['rps']:.2f} | {x['p50_ms']:.2f} | "
                     f"{x['p99_ms']:.2f} | {x['errors']} |")
    s, m = r["startup_s"], r["micro_us"]
    lines += ["", f"Start-up to ready (median of {r['startups']}): {s['key']:.2f} s without signature checks, "
              f"{s['key+signed']:.2f} s with (×{s['key+signed'] / s['key']:.2f}).",
              f"In process: verify_bundle {m['verify_hashes_us']:.0f} µs (hashes) vs {m['verify_signed_us']:.0f} µs "
              f"(hashes + ed25519 signature); ApiKeys.match {m['api_key_match_us']:.2f} µs; "
              f"RateLimiter.allow {m['rate_limit_allow_us']:.2f} µs per call."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--md", type=Path)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--startups", type=int, default=5)
    parser.add_argument("--rows", type=int, default=20_000)
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        print("bench_security: needs wrk (apt-get install wrk)", file=sys.stderr)
        return 1
    measurement = Measurement()
    workdir = Path(tempfile.mkdtemp(prefix="bench-security-"))
    try:
        paths = prepare(workdir, args.rows)
        runs: dict[str, list[dict]] = {c: [] for c in CONFIGS}
        for i in range(args.repeat):
            for config in CONFIGS if i % 2 == 0 else reversed(CONFIGS):
                row = measure(config, paths, args.duration, args.connections, workdir)
                runs[config].append(row)
                print(f"round {i + 1} {config:<14} {row['rps']:8,.0f} req/s p99 {row['p99_ms']:.2f} ms", flush=True)
        rows = []
        for group in runs.values():
            row = dict(group[0])
            for k in ("rps", "p50_ms", "p99_ms", "ready_s"):
                row[k] = statistics.median(g[k] for g in group)
            row["errors"] = sum(g["errors"] for g in group)
            rows.append(row)
        results = measurement.write({
            "duration_s": args.duration, "repeat": args.repeat, "connections": args.connections,
            "startups": args.startups, "rows": rows, "startup_s": startup_times(paths, args.startups, workdir),
            "micro_us": micro(paths)}, args.json, markdown=markdown, md_path=args.md)
        print(markdown(results))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

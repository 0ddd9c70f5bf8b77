"""Batch scoring: the lecture's way against the kit's streaming engine, and the limits of this machine.

    python benchmarks/bench_batch.py --rows 1000000 [--rounds 3] [--json benchmarks/results/bench_batch.json]

On the same generated CSV and for both models (``lr``, ``hgb``), each approach runs in its own Python
process, so its peak RSS (``ru_maxrss``) is its own:

* ``seed``: the lecture's snippet, completed — ``pd.read_csv`` of the whole file, ``predict_proba``,
  the prediction and probability added as columns, ``to_csv`` of the whole frame (the bare pickle and
  the libraries' default thread settings, as the lecture runs it);
* ``kit``: ``shipml.batch.score`` with its defaults (CSV in, Parquet out, chunks of 100,000 rows,
  validation, quarantine, model loading included);
* ``read-only``: the kit's reader alone, every chunk read and dropped — the I/O limit. Only the reading
  is timed (the schema comes from the bundle's metadata, no model is loaded);
* ``predict-only``: the rows already in memory, in chunks of the same size and in the form the kit hands
  the model, ``predict_proba`` on the kit's own scoring threads with the kit's thread settings — the
  compute limit. Only the predicting is timed.

The approaches run in interleaved rounds (``--rounds``, every approach once per round) and each keeps its
best wall time — a shared machine's noise only ever adds time — and its largest peak RSS. The load
average is recorded before and after. Wall time, rows/s and peak RSS are printed and written to
``--json`` (merged by row count, so one file holds the 1M and the 5M run); a Markdown table is written
next to it.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

APPROACHES = ("seed", "kit", "read-only", "predict-only")
MODELS = ("lr", "hgb")
CHUNK_ROWS = 100_000


def _child(approach: str, bundle: str, data: str, out: str) -> dict:
    import joblib  # noqa: F401  (imports are not part of any approach's time)
    import pandas  # noqa: F401
    import shipml.batch  # noqa: F401
    import shipml.models  # noqa: F401
    import sklearn.compose  # noqa: F401  (nor the imports that unpickling a model triggers)
    import sklearn.ensemble  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    import sklearn.pipeline  # noqa: F401
    import sklearn.preprocessing  # noqa: F401

    started = time.perf_counter()
    rows = 0
    if approach == "seed":
        import joblib  # the lecture had `from sklearn.externals import joblib`: removed in scikit-learn 0.23
        import pandas as pd

        model = joblib.load(Path(bundle) / "model.joblib")  # the bare pickle, as in the lecture
        data_frame = pd.read_csv(data)
        proba = model.predict_proba(data_frame)
        data_frame["prediction"] = proba.argmax(axis=1)
        data_frame["probability"] = proba[:, 1]
        data_frame.to_csv(out, index=False)
        rows = len(data_frame)
    elif approach == "kit":
        from shipml.batch import score

        summary = score(bundle, data, out, chunk_rows=CHUNK_ROWS, progress=False)
        rows = summary.rows_in
        assert summary.rows_scored == rows, summary
    elif approach == "read-only":
        from shipml.batch import iter_chunks
        from shipml.bundle import read_metadata

        schema = read_metadata(bundle).schema
        started = time.perf_counter()  # only the reading counts
        rows = sum(c.batch.num_rows for c in iter_chunks([Path(data)], schema, CHUNK_ROWS))
    elif approach == "predict-only":
        import pandas as pd
        from shipml.batch import score
        from shipml.batch.local import in_order, scoring_pool
        from shipml.predictor import load_predictor
        from threadpoolctl import threadpool_limits

        predictor = load_predictor(bundle)
        frame = pd.read_csv(data, dtype={"merchant_category": "category"})
        numbers = [f.name for f in predictor.schema.features if f.dtype != "category"]
        parts = [{**{n: part[n].to_numpy(dtype="float64") for n in numbers},  # what the kit hands the model
                  **{n: part[n].array for n in predictor.schema.names if n not in numbers}}
                 for part in (frame.iloc[i:i + CHUNK_ROWS] for i in range(0, len(frame), CHUNK_ROWS))]
        rows = len(frame)
        del frame
        workers, threads = (inspect.signature(score).parameters[k].default for k in ("workers", "threads"))
        with threadpool_limits(limits=threads), scoring_pool(workers, threads) as pool:
            started = time.perf_counter()  # only the predicting counts
            for _ in in_order(lambda part: pool.submit(predictor.predict_proba, part), parts, workers + 1):
                pass
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    return {"rows": rows, "seconds": round(seconds, 3), "rows_per_s": round(rows / seconds),
            "peak_rss_mb": round(peak_mb, 1)}


def _run(approach: str, bundle: Path, data: Path, workdir: Path) -> dict:
    suffix = {"seed": ".csv", "kit": ".parquet"}.get(approach, ".none")
    out = workdir / f"out-{approach}-{bundle.name}{suffix}"
    proc = subprocess.run([sys.executable, __file__, "--child", approach, str(bundle), str(data), str(out)],
                          capture_output=True, text=True, check=False)
    out.unlink(missing_ok=True)
    for extra in workdir.glob("out-*"):
        extra.unlink()
    if proc.returncode != 0:
        raise SystemExit(f"{approach} on {bundle.name} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _prepare(rows: int, workdir: Path) -> tuple[Path, dict[str, Path]]:
    from shipml.data import make_transactions, write_transactions
    from shipml.models import save_bundle, train

    data = write_transactions(workdir / f"tx-{rows}.csv", rows, seed=42)
    train_df = make_transactions(50_000, seed=1)
    bundles = {kind: save_bundle(train(train_df, kind, seed=0), workdir / f"fraud-{kind}") for kind in MODELS}
    return data, bundles


def _figures(results: dict) -> list[str]:
    """The issue's figures, checked on whatever row counts are present."""
    lines = []
    by_rows = {int(r): v for r, v in results.items()}
    for kind in MODELS:
        for rows, res in sorted(by_rows.items()):
            r = res[kind]
            limit = min(r["read-only"]["rows_per_s"], r["predict-only"]["rows_per_s"])
            ratio_seed = r["kit"]["rows_per_s"] / r["seed"]["rows_per_s"]
            ratio_limit = r["kit"]["rows_per_s"] / limit
            target = f" (target >= 4x at 1M: {'met' if ratio_seed >= 4 else 'NOT met'})" if rows == 1_000_000 else ""
            lines.append(f"- {kind}, {rows:,} rows: kit rows/s = {ratio_seed:.2f}x the seed approach's{target}; "
                         f"{ratio_limit:.0%} of min(read-only, predict-only) = {limit:,} rows/s "
                         f"(target >= 60 %: {'met' if ratio_limit >= 0.6 else 'NOT met'})")
        if 1_000_000 in by_rows and 5_000_000 in by_rows:
            k1 = by_rows[1_000_000][kind]["kit"]["peak_rss_mb"]
            k5 = by_rows[5_000_000][kind]["kit"]["peak_rss_mb"]
            s5 = by_rows[5_000_000][kind]["seed"]["peak_rss_mb"]
            lines.append(f"- {kind}: kit peak RSS at 5M = {k5 / k1:.2f}x its peak at 1M (target <= 1.2x: "
                         f"{'met' if k5 <= 1.2 * k1 else 'NOT met'}); = {k5 / s5:.2f} of the seed's peak at 5M "
                         f"(target <= 1/3: {'met' if k5 <= s5 / 3 else 'NOT met'})")
    return lines


def markdown(doc: dict) -> str:
    out = ["| rows | model | approach | wall s | rows/s | peak RSS MB |", "|---:|---|---|---:|---:|---:|"]
    for rows, res in sorted(doc["results"].items(), key=lambda kv: int(kv[0])):
        for kind in MODELS:
            for approach in APPROACHES:
                r = res[kind][approach]
                out.append(f"| {int(rows):,} | {kind} | {approach} | {r['seconds']:.2f} | {r['rows_per_s']:,} "
                           f"| {r['peak_rss_mb']:,.0f} |")
    runs = " ".join(f"{int(rows):,} rows: best of {run['rounds']} interleaved round(s). " + _where(run, doc)
                     for rows, run in sorted(doc.get("runs", {}).items(), key=lambda kv: int(kv[0])))
    out += ["", "seed = pandas reads the whole CSV, predicts, writes CSV; kit = "
            f"`shipml batch score` (CSV in, Parquet out, {doc['chunk_rows'] // 1000}k-row chunks, "
            f"{doc['kit_settings']}); read-only = the kit's reader alone; predict-only = predict_proba on "
            "in-memory chunks on the kit's scoring threads. " + (f"Runs: {runs}" if runs else ""),
            "", *_figures(doc["results"])]
    return "\n".join(out) + "\n"


def _where(run: dict, doc: dict) -> str:
    """Where a run was measured; runs recorded before shipml.timing.Measurement kept only the load average."""
    from shipml.timing import describe

    if "load_average_after" in run.get("context", {}):
        return describe(run["context"])
    return (f"{doc.get('machine', 'Machine not recorded')}; load average {run['load_before']} before, "
            f"{run['load_after']} after.")


def _load() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(_child(*sys.argv[2:6])))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; each approach keeps its best")
    parser.add_argument("--json", type=Path, help="merge results into this JSON file (and write a .md next to it)")
    parser.add_argument("--workdir", type=Path, help="scratch folder (default: a temporary one)")
    args = parser.parse_args()
    from shipml.batch import score
    from shipml.timing import Measurement, write_results

    defaults = inspect.signature(score).parameters
    kit_settings = (f"{defaults['workers'].default} scoring threads of {defaults['threads'].default} "
                    "model thread each")
    with tempfile.TemporaryDirectory(prefix="bench-batch-", dir=args.workdir) as tmp:
        workdir = Path(tmp)
        data, bundles = _prepare(args.rows, workdir)
        print(f"{args.rows:,} rows, {data.stat().st_size / 2**20:,.0f} MB of CSV; load average {_load()}")
        measurement = Measurement()
        runs: dict = {kind: {approach: [] for approach in APPROACHES} for kind in MODELS}
        for round_no in range(1, args.rounds + 1):
            for kind, bundle in bundles.items():
                for approach in APPROACHES:
                    r = _run(approach, bundle, data, workdir)
                    runs[kind][approach].append(r)
                    print(f"round {round_no} {kind:4s} {approach:13s} {r['seconds']:8.2f} s {r['rows_per_s']:>11,} "
                          f"rows/s {r['peak_rss_mb']:>8,.0f} MB peak RSS (load {_load()})", flush=True)
        context = measurement.finished()
    results = {kind: {approach: {**min(rs, key=lambda r: r["seconds"]),
                                 "peak_rss_mb": max(r["peak_rss_mb"] for r in rs),
                                 "all_seconds": [r["seconds"] for r in rs]}
                      for approach, rs in by_approach.items()}
               for kind, by_approach in runs.items()}
    doc = {"chunk_rows": CHUNK_ROWS, "results": {}}
    if args.json and args.json.exists():
        doc = json.loads(args.json.read_text())
    doc["kit_settings"] = kit_settings
    doc["results"][str(args.rows)] = results
    doc.setdefault("runs", {})[str(args.rows)] = {"rounds": args.rounds, "context": context}
    print("best of each:")
    for kind in MODELS:
        for approach in APPROACHES:
            r = results[kind][approach]
            print(f"{kind:4s} {approach:13s} {r['seconds']:8.2f} s {r['rows_per_s']:>11,} rows/s "
                  f"{r['peak_rss_mb']:>8,.0f} MB peak RSS")
    for line in _figures({str(args.rows): results}):
        print(line)
    if args.json:
        written = write_results(doc, args.json, markdown=markdown(doc))
        print(f"wrote {' and '.join(map(str, written))}")


if __name__ == "__main__":
    main()

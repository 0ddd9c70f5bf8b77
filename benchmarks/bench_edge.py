"""Edge benchmark: scikit-learn vs onnxruntime (one thread) for lr and hgb, plus int8 MLP.

For each model: train a bundle, export it to an ONNX edge bundle, then measure
  * single-row latency p50/p99 (scikit-learn: ``SklearnPredictor.predict_proba`` on a one-row frame;
    ONNX: ``OnnxPredictor.predict_proba_one`` on a dict — what an API server holds per request),
  * batch throughput on ``--rows`` rows (one ``predict_proba`` call each),
  * parity on the same rows (max |Δp|, label flips) and sizes on disk.
Both runtimes get one thread (threadpoolctl for scikit-learn's OpenMP/BLAS, session options for ORT).

    python benchmarks/bench_edge.py [--json benchmarks/results/bench_edge.json] [--rows 100000]

Figures to reach (issue 4): ONNX single-row p50 at least 20x lower than scikit-learn's for both
models; parity max |Δp| <= 1e-5 with no label flips on 100k rows.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from shipml.data import make_transactions
from shipml.edge.export import export_bundle, measure_parity
from shipml.edge.runtime import OnnxPredictor
from shipml.models import SklearnPredictor, save_bundle, train
from shipml.timing import Measurement, best_of, describe, time_calls
from threadpoolctl import threadpool_limits

TARGET_SPEEDUP = 20.0
TARGET_PARITY = 1e-5


def _latency_us(call, calls: int) -> tuple[float, float, float]:
    samples_us = time_calls(lambda _: call(), calls, warmup=min(50, calls)) * 1000
    return float(np.percentile(samples_us, 50)), float(np.percentile(samples_us, 99)), float(samples_us.min())


def _throughput(call, rows: int, repeat: int = 3) -> float:
    return rows / best_of(call, repeat)


def bench_model(kind: str, train_df, rows_df, workdir: Path, calls: int) -> dict:
    bundle = save_bundle(train(train_df, kind, seed=0), workdir / kind)
    quantize = kind == "mlp"
    edge = export_bundle(bundle, workdir / f"{kind}-edge", holdout=rows_df, quantize=quantize,
                         tolerance=TARGET_PARITY)
    skl, onx = SklearnPredictor.load(bundle), OnnxPredictor.load(edge.path)
    frame = rows_df[skl.schema.names]
    one_frame = frame.iloc[[0]]
    one_row = {k: (v.item() if hasattr(v, "item") else v) for k, v in frame.iloc[0].to_dict().items()}
    skl_p50, skl_p99, skl_min = _latency_us(lambda: skl.predict_proba(one_frame), max(calls // 5, 200))
    onx_p50, onx_p99, onx_min = _latency_us(lambda: onx.predict_proba_one(one_row), calls)
    expected, got = skl.predict_proba(frame), onx.predict_proba(frame)
    parity = measure_parity(expected, got, TARGET_PARITY)
    result = {
        "model": kind, "rows": len(frame),
        "sklearn_p50_us": skl_p50, "sklearn_p99_us": skl_p99,
        "onnx_p50_us": onx_p50, "onnx_p99_us": onx_p99, "p50_speedup": skl_p50 / onx_p50,
        "sklearn_min_us": skl_min, "onnx_min_us": onx_min, "min_speedup": skl_min / onx_min,
        "sklearn_rows_per_s": _throughput(lambda: skl.predict_proba(frame), len(frame)),
        "onnx_rows_per_s": _throughput(lambda: onx.predict_proba(frame), len(frame)),
        "parity_max_abs_diff": parity.max_abs_diff, "label_flips": parity.label_flips,
        "joblib_bytes": (bundle / "model.joblib").stat().st_size, "onnx_bytes": edge.size_bytes,
        "quantized": quantize, "roc_auc": skl.metadata.metrics["roc_auc"],
    }
    if quantize:
        q = edge.quantization
        result["int8"] = {k: q[k] for k in ("size_before", "size_after", "p50_us_before", "p50_us_after",
                                             "accuracy_before", "accuracy_after", "roc_auc_before", "roc_auc_after")}
        result["int8"]["max_abs_diff_vs_float"] = q["vs_float_onnx"]["max_abs_diff"]
        result["int8"]["label_agreement_vs_float"] = q["vs_float_onnx"]["label_agreement"]
    return result


def markdown(report: dict) -> str:
    lines = [
        f"Edge benchmark (`benchmarks/bench_edge.py`); one thread for both runtimes; "
        f"{report['rows']:,} held-out rows, models trained on {report['train_rows']:,}.",
        describe(report["context"]) + " (A shared, noisy machine: ratios measured side by side in one run are the "
        "figures to trust.)",
        "",
        "| model | runtime | single-row p50 | p99 | batch rows/s | model size | parity max \\|Δp\\| | label flips |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["models"]:
        if r["quantized"]:
            continue
        lines.append(f"| {r['model']} | scikit-learn | {r['sklearn_p50_us']:,.0f} µs | {r['sklearn_p99_us']:,.0f} µs | "
                     f"{r['sklearn_rows_per_s']:,.0f} | {r['joblib_bytes'] / 1024:,.1f} KiB | | |")
        lines.append(f"| {r['model']} | onnxruntime | {r['onnx_p50_us']:,.1f} µs | {r['onnx_p99_us']:,.1f} µs | "
                     f"{r['onnx_rows_per_s']:,.0f} | {r['onnx_bytes'] / 1024:,.1f} KiB | "
                     f"{r['parity_max_abs_diff']:.1e} | {r['label_flips']} |")
    lines += ["", "| figure | target | measured | reached |", "|---|---|---|---|"]
    for r in report["models"]:
        if r["quantized"]:
            continue
        lines.append(f"| {r['model']}: ONNX single-row p50 vs scikit-learn | ≥ {TARGET_SPEEDUP:.0f}× lower | "
                     f"{r['p50_speedup']:.0f}× (fastest call: {r['sklearn_min_us']:,.0f} vs {r['onnx_min_us']:.1f} µs, "
                     f"{r['min_speedup']:.0f}×) | {'yes' if r['p50_speedup'] >= TARGET_SPEEDUP else 'no'} |")
        ok = r["parity_max_abs_diff"] <= TARGET_PARITY and r["label_flips"] == 0
        lines.append(f"| {r['model']}: parity on {r['rows']:,} rows | max \\|Δp\\| ≤ 1e-5, 0 flips | "
                     f"{r['parity_max_abs_diff']:.1e}, {r['label_flips']} flips | {'yes' if ok else 'no'} |")
    for r in report["models"]:
        if r["quantized"]:
            q = r["int8"]
            lines += ["", f"Dynamic int8 quantization of the {r['model']} (ONNX float32 → int8): size "
                      f"{q['size_before'] / 1024:.1f} → {q['size_after'] / 1024:.1f} KiB, single-row p50 "
                      f"{q['p50_us_before']:.0f} → {q['p50_us_after']:.0f} µs, accuracy "
                      f"{q['accuracy_before']:.4f} → {q['accuracy_after']:.4f}, ROC AUC {q['roc_auc_before']:.4f} → "
                      f"{q['roc_auc_after']:.4f}, max |Δp| vs float {q['max_abs_diff_vs_float']:.3f}, labels agree "
                      f"on {q['label_agreement_vs_float']:.2%}."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the figures here (and a Markdown table beside it)")
    parser.add_argument("--rows", type=int, default=100_000, help="held-out rows for throughput and parity")
    parser.add_argument("--train-rows", type=int, default=200_000)
    parser.add_argument("--calls", type=int, default=3_000, help="single-row calls for ONNX (scikit-learn: a fifth)")
    parser.add_argument("--models", default="lr,hgb,mlp")
    args = parser.parse_args()
    train_df = make_transactions(args.train_rows, seed=1)
    rows_df = make_transactions(args.rows, seed=2024)
    measurement = Measurement()
    report = {"rows": args.rows, "train_rows": args.train_rows, "models": []}
    with tempfile.TemporaryDirectory(prefix="bench-edge-") as tmp, threadpool_limits(limits=1):
        for kind in args.models.split(","):
            result = bench_model(kind, train_df, rows_df, Path(tmp), args.calls)
            report["models"].append(result)
            print(json.dumps(result))
    print(markdown(measurement.write(report, args.json, markdown=markdown)))


if __name__ == "__main__":
    main()

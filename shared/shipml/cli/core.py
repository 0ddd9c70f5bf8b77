"""``shipml data make``, ``shipml train``, ``shipml info`` and ``shipml doctor``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    data_app = typer.Typer(help="Generate the synthetic card-transactions dataset.", no_args_is_help=True)
    data_app.command("make")(make_data)
    app.add_typer(data_app, name="data")
    app.command("train")(train)
    app.command("info")(info)
    app.command("doctor")(doctor)


def make_data(
    rows: int = typer.Option(100_000, "--rows", help="how many transactions (1e3 to 1e7 is typical)"),
    seed: int = typer.Option(0, "--seed", help="same seed, same rows"),
    out: Path = typer.Option(..., "--out", help="output file: .csv or .parquet"),
    drift: float = typer.Option(0.0, "--drift", help="0 = training world, 1 = fully drifted (monitoring lesson)"),
) -> None:
    """Write ROWS seeded transactions to OUT (CSV or Parquet by suffix)."""
    from shipml.data import table_format, write_transactions

    table_format(out)
    started = time.perf_counter()
    write_transactions(out, rows, seed=seed, drift=drift, progress=True)
    seconds = time.perf_counter() - started
    typer.echo(f"wrote {rows:,} rows to {out} in {seconds:.2f}s ({rows / max(seconds, 1e-9):,.0f} rows/s)")


def train(
    data: Path = typer.Option(..., "--data", help="training data (.csv or .parquet) with is_fraud"),
    model: str = typer.Option("lr", "--model", help="lr (logistic regression), hgb (gradient boosting) or mlp"),
    out: Path = typer.Option(..., "--out", help="bundle folder to create"),
    seed: int = typer.Option(0, "--seed"),
    version: int = typer.Option(1, "--version", help="model version recorded in the bundle"),
    name: str = typer.Option(None, "--name", help="model name (default fraud-<model>)"),
) -> None:
    """Train a pipeline and save it as a verified bundle."""
    from shipml.models import train_bundle
    from shipml.predictor import load_predictor

    path = train_bundle(data, model, out, seed=seed, version=version, name=name)
    m = load_predictor(path).metadata
    typer.echo(f"saved {m.name} v{m.version} to {path}: held-out ROC AUC {m.metrics['roc_auc']:.3f}, "
               f"average precision {m.metrics['average_precision']:.3f}")


def info(
    bundle: Path = typer.Argument(..., help="a bundle folder"),
    as_json: bool = typer.Option(False, "--json", help="print the whole metadata as JSON"),
    trusted_keys: Path = typer.Option(None, "--trusted-keys", help="check the signature against these keys "
                                      "(default SHIPML_TRUSTED_KEYS)"),
) -> None:
    """Verify a bundle's hashes (and signature, with trusted keys), show what it holds and who signed it."""
    from shipml.bundle import verify_bundle
    from shipml.signing import describe_signature

    m = verify_bundle(bundle, trusted_keys=trusted_keys)
    if as_json:
        typer.echo(json.dumps(m.to_dict(), indent=2))
        return
    typer.echo(f"{m.name} v{m.version} ({m.model_kind}, backend {m.backend}), created {m.created_at}")
    typer.echo("hashes: ok")
    typer.echo(describe_signature(bundle, trusted_keys))
    typer.echo("metrics: " + ", ".join(f"{k}={v:.4g}" for k, v in m.metrics.items()))
    typer.echo("libraries: " + ", ".join(f"{k} {v}" for k, v in m.libraries.items()))
    typer.echo("features:")
    for f in m.schema.features:
        detail = f"one of {len(f.categories)} categories" if f.categories else (
            f"[{f.min:g}, {f.max:g}]" if f.min is not None and f.max is not None else "")
        typer.echo(f"  {f.name:<24} {f.dtype:<9} {detail}")


def doctor() -> None:
    """Report what this machine can run: Python, packages, Docker, kind, kubectl."""
    from shipml.doctor import environment_report, format_report

    typer.echo(format_report(environment_report()))

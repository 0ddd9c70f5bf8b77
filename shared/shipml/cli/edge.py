"""``shipml edge export`` and ``shipml edge predict`` (the device runs ``python -m shipml.edge``)."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Edge deployment: export a bundle to ONNX with a parity check, score with onnxruntime.",
                  no_args_is_help=True)


@app.command("export")
def export(
    bundle: Path = typer.Argument(..., help="a scikit-learn bundle folder (from 'shipml train')"),
    out: Path = typer.Option(..., "--out", help="edge bundle folder to create"),
    quantize: bool = typer.Option(False, "--quantize", help="dynamic int8 quantization (mlp models)"),
    tolerance: float = typer.Option(1e-5, "--tolerance", help="largest |Δ probability| allowed vs scikit-learn"),
    parity_rows: int = typer.Option(20_000, "--parity-rows", help="fresh held-out rows for the parity check"),
    data: Path = typer.Option(None, "--data", help="held-out rows (.csv/.parquet) instead of fresh ones"),
    version: int = typer.Option(None, "--version", help="edge bundle version (default: the source's)"),
) -> None:
    """Export BUNDLE to ONNX, verify parity on held-out rows, write an edge bundle (refused beyond tolerance)."""
    from shipml.edge.export import export_bundle, size_on_disk
    from shipml.errors import ShipmlError

    if parity_rows < 1:
        raise ShipmlError(f"--parity-rows must be at least 1, got {parity_rows}")
    holdout = None
    if data is not None:
        from shipml.data import read_table

        holdout = read_table(data)
    result = export_bundle(bundle, out, holdout=holdout, parity_rows=parity_rows, tolerance=tolerance,
                           quantize=quantize, version=version)
    typer.echo(result.summary())
    sizes = size_on_disk(result.path)
    typer.echo("size on disk: " + ", ".join(f"{k} {v:,} B" for k, v in sizes.items()))
    if result.quantization:
        q = result.quantization
        typer.echo(f"int8: size {q['size_before']:,} -> {q['size_after']:,} B, single-row p50 "
                   f"{q['p50_us_before']:.0f} -> {q['p50_us_after']:.0f} µs, ROC AUC "
                   f"{q.get('roc_auc_before', float('nan')):.4f} -> {q.get('roc_auc_after', float('nan')):.4f}")


@app.command("predict")
def predict(
    bundle: Path = typer.Argument(..., help="an edge bundle folder (from 'shipml edge export')"),
    input: Path = typer.Option(..., "--input", help=".csv with a header, or .json {\"instances\": [...]}"),
    output: Path = typer.Option(None, "--output", help="write the CSV here instead of stdout"),
) -> None:
    """Score a file with onnxruntime (the same code as the device's 'python -m shipml.edge predict')."""
    from shipml.edge.device import predict_file

    if output is None:
        predict_file(bundle, input)
        return
    with open(output, "w", newline="") as out:
        n = predict_file(bundle, input, out)
    typer.echo(f"scored {n:,} rows -> {output}")

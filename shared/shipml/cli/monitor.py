"""``shipml monitor drift`` and ``shipml monitor performance``: the log against the reference and the labels."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Monitoring: drift of the logged traffic, performance once labels arrive.",
                  no_args_is_help=True)


def _log_of(bundle: Path, log: Path) -> tuple:
    from shipml.bundle import verify_bundle
    from shipml.errors import ShipmlError
    from shipml.monitoring.reference import load_reference
    from shipml.monitoring.windows import read_log

    meta = verify_bundle(bundle)
    reference = load_reference(bundle)
    df = read_log(log)
    names = sorted(df["model"].astype(str).unique())
    if meta.name not in names:
        raise ShipmlError(f"{log}: the log holds model(s) {', '.join(names)}, not this bundle's '{meta.name}'")
    df = df[df["model"].astype(str) == meta.name]
    versions = sorted(int(v) for v in df["model_version"].unique())
    if meta.version not in versions:
        raise ShipmlError(f"{log}: the log holds version(s) {versions} of '{meta.name}', not the bundle's "
                          f"v{meta.version}")
    return meta, reference, df[df["model_version"] == meta.version].reset_index(drop=True)


@app.command("drift")
def drift(
    bundle: Path = typer.Option(..., "--bundle", help="the served bundle (its reference.json is the baseline)"),
    log: Path = typer.Option(..., "--log", help="prediction log folder (SHIPML_MONITOR_LOG_DIR)"),
    window: str = typer.Option("5000", "--window", help="rows per window (5000) or a duration (15min, 1h)"),
    report: Path = typer.Option(None, "--report", help="write an HTML report here"),
    alpha: float = typer.Option(0.01, "--alpha", help="chance an undrifted window flags (Bonferroni over features)"),
    min_psi: float = typer.Option(0.02, "--min-psi", help="smallest PSI that counts as drift"),
    fail_on_drift: bool = typer.Option(False, "--fail-on-drift", help="exit 4 when the last window drifted"),
) -> None:
    """Drift of every feature and of the score per window of the log, against the bundle's reference."""
    from shipml.errors import ShipmlError
    from shipml.monitoring.drift import detect_drift, drift_over_windows
    from shipml.monitoring.windows import parse_window, split_windows

    if not 0 < alpha < 1:
        raise ShipmlError(f"--alpha must be between 0 and 1, got {alpha}")
    size = parse_window(window)
    meta, reference, df = _log_of(bundle, log)
    windows = [w for w in split_windows(df, size) if len(w.frame) >= 100]
    if not windows:
        raise ShipmlError(f"{log}: every window of {window} holds fewer than 100 rows ({len(df)} rows logged); "
                          "choose a larger window")
    table = drift_over_windows(reference, windows, alpha=alpha, min_psi=min_psi)
    typer.echo(f"{meta.name} v{meta.version}: {len(df):,} logged rows, {len(windows)} window(s) of {window}")
    flagged = table.groupby("window")["window_flagged"].first()
    for w in windows:
        part = table[table["window"] == w.index]
        drifted = ", ".join(part.loc[part["drifted"], "feature"]) or "-"
        typer.echo(f"  window {w.index:>3}  {str(w.start)[:19]}  rows {len(w.frame):>7,}  "
                   f"max PSI {part['psi'].max():.3f}  drifted: {drifted}")
    last = detect_drift(reference, windows[-1].frame, alpha=alpha, min_psi=min_psi)
    typer.echo("last window:")
    typer.echo(last.to_frame()[["feature", "psi", "band", "test", "p_value", "drifted"]].to_string(index=False))
    if report is not None:
        from shipml.monitoring.report import drift_report_html, write_report

        html = drift_report_html(reference, windows[-1].frame, last, table,
                                 title=f"Drift report: {meta.name} v{meta.version}")
        typer.echo(f"report: {write_report(report, html)}")
    typer.echo(f"{int(flagged.sum())} of {len(flagged)} window(s) flagged")
    if fail_on_drift and last.flagged:
        raise typer.Exit(4)


@app.command("performance")
def performance(
    log: Path = typer.Option(..., "--log", help="prediction log folder"),
    labels: Path = typer.Option(..., "--labels", help="labels file (.csv/.parquet): id, label[, label_time]"),
    window: str = typer.Option("5000", "--window", help="rows per window (5000) or a duration (15min, 1h)"),
    bundle: Path = typer.Option(None, "--bundle", help="the bundle: its threshold and held-out ROC AUC as baseline"),
    model: str = typer.Option(None, "--model", help="keep this model's records (default: the only one logged)"),
    threshold: float = typer.Option(None, "--threshold", help="serving threshold (default: the bundle's, or 0.5)"),
    min_labels: int = typer.Option(200, "--min-labels", help="fewer labels in a window: no metrics for it"),
    label_column: str = typer.Option("label", "--label-column", help="the labels file's label column"),
    auc_tolerance: float = typer.Option(0.05, "--auc-tolerance", help="ROC AUC fall below the baseline that counts"),
    calibration_tolerance: float = typer.Option(0.02, "--calibration-tolerance",
                                                help="calibration error rise above the baseline that counts"),
) -> None:
    """Join delayed labels to the log by id; ROC AUC, precision, recall and calibration per window."""
    from shipml.errors import ShipmlError
    from shipml.monitoring.performance import find_drop, join_labels, performance_by_window, read_labels
    from shipml.monitoring.windows import parse_window, read_log

    size = parse_window(window)
    baseline = None
    if bundle is not None:
        meta, reference, df = _log_of(bundle, log)
        baseline = reference.metrics
        threshold = reference.threshold if threshold is None else threshold
    else:
        df = read_log(log, model=model)
        names = sorted(df["model"].astype(str).unique())
        if len(names) > 1:
            raise ShipmlError(f"{log}: the log holds several models ({', '.join(names)}); choose one with --model")
    threshold = 0.5 if threshold is None else threshold
    join = join_labels(df, read_labels(labels, label_column))
    typer.echo(join.summary())
    if join.matched == 0:
        raise ShipmlError(f"{labels}: none of its {join.labels:,} ids is in the log; is it the labels of this "
                          "log (ids are the request ids the server logged)?")
    table = performance_by_window(join.joined, size, threshold=threshold, min_labels=min_labels)
    cols = ["window", "rows", "labels", "fraud_rate", "roc_auc", "average_precision", "precision", "recall",
            "calibration_error", "status"]
    typer.echo(table[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if baseline is not None:
        drop = find_drop(table, baseline, auc_tolerance=auc_tolerance, calibration_tolerance=calibration_tolerance)
        held_out = (f"held-out ROC AUC {baseline.get('roc_auc', float('nan')):.3f}, calibration error "
                    f"{baseline.get('calibration_error', float('nan')):.3f}")
        typer.echo(f"baseline: {held_out}; " + (
            f"performance dropped in window {drop}" if drop is not None else
            f"no window fell {auc_tolerance} in ROC AUC or rose {calibration_tolerance} in calibration error"))

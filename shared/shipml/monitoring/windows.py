"""The prediction log as a table, and windows of it: by row count or by time.

A window is the unit of monitoring: too small and chance looks like drift (and a few labels give no
ROC AUC), too large and drift is seen late. ``--window 5000`` cuts every 5,000 rows, ``--window 1h`` (or
``15min``, ``30s``, ``1d``) by the log's ``time`` column.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from shipml.errors import ShipmlError

LOG_COLUMNS = ("id", "time", "model", "model_version", "score", "prediction")
_UNITS = {"s": "s", "sec": "s", "min": "min", "m": "min", "h": "h", "d": "D"}


@dataclass
class Window:
    index: int
    start: Any
    end: Any
    frame: pd.DataFrame


def log_files(directory: str | Path) -> list[Path]:
    """Complete Parquet files of a log folder (files still being written end in ``.partial``)."""
    directory = Path(directory)
    if directory.is_file() and directory.suffix == ".parquet":
        return [directory]
    if not directory.is_dir():
        raise ShipmlError(f"{directory}: no such prediction log folder")
    files = sorted(directory.glob("*.parquet"))
    if not files:
        raise ShipmlError(f"{directory}: no prediction log files (*.parquet) in it; is the log switched on?")
    return files


def read_log(directory: str | Path, model: str | None = None, version: int | None = None) -> pd.DataFrame:
    """Every record of a log folder, sorted by time; ``model``/``version`` keep one model's records."""
    import pyarrow.parquet as pq

    frames = []
    for path in log_files(directory):
        try:
            frames.append(pq.read_table(path).to_pandas())
        except Exception as exc:  # pyarrow raises several types for a damaged file
            raise ShipmlError(f"{path}: cannot read this prediction log file ({type(exc).__name__}: {exc})") from None
    df = pd.concat(frames, ignore_index=True)
    missing = [c for c in LOG_COLUMNS if c not in df.columns]
    if missing:
        raise ShipmlError(f"{directory}: not a prediction log (no column(s) {', '.join(missing)})")
    if model is not None:
        served = sorted(df["model"].astype(str).unique())
        df = df[df["model"].astype(str) == model]
        if df.empty:
            raise ShipmlError(f"{directory}: no records of model '{model}' (the log holds {', '.join(served)})")
    if version is not None:
        df = df[df["model_version"] == version]
        if df.empty:
            raise ShipmlError(f"{directory}: no records of version {version} of the model")
    return df.sort_values("time", kind="stable").reset_index(drop=True)


def parse_window(text: str) -> int | pd.Timedelta:
    """``"5000"`` (rows) or ``"1h"``, ``"15min"``, ``"30s"``, ``"1d"`` (time) — or a one-line error."""
    text = str(text).strip().lower()
    m = re.fullmatch(r"(\d+)\s*(rows?)?", text)
    if m:
        n = int(m.group(1))
        if n < 1:
            raise ShipmlError("--window must be at least 1 row")
        return n
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(s|sec|min|m|h|d)", text)
    if not m or float(m.group(1)) <= 0:
        raise ShipmlError(f"--window {text!r}: give a row count (5000) or a duration (30s, 15min, 1h, 1d)")
    return pd.Timedelta(float(m.group(1)), unit=_UNITS[m.group(2)])


def split_windows(df: pd.DataFrame, window: int | str | pd.Timedelta) -> Iterator[Window]:
    """Consecutive windows of ``df`` (sorted by time): every ``window`` rows, or per ``window`` of time."""
    if isinstance(window, str):
        window = parse_window(window)
    if isinstance(window, int):
        for i, first in enumerate(range(0, len(df), window)):
            part = df.iloc[first:first + window]
            yield Window(i, part["time"].iloc[0] if "time" in part else first,
                         part["time"].iloc[-1] if "time" in part else first + len(part) - 1, part)
        return
    if "time" not in df.columns:
        raise ShipmlError("windows by time need a 'time' column")
    times = pd.to_datetime(df["time"], utc=True)
    start = times.min().floor(window) if len(times) else None
    if start is None:
        return
    keys = ((times - start) // window).to_numpy()
    for i, (key, part) in enumerate(df.groupby(keys, sort=True)):
        yield Window(i, start + key * window, start + (key + 1) * window, part)

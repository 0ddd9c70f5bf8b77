"""The drift report: a table, reference-vs-current histograms and drift over time, as HTML or figures.

One self-contained HTML file (plots embedded as PNG, no JavaScript, nothing fetched), so it can be
mailed, attached to a ticket or opened offline. The notebook shows the same figures inline.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import numpy as np

from shipml.monitoring.drift import PSI_BANDS, DriftResult
from shipml.monitoring.reference import ReferenceProfile, category_text


def plot_histograms(reference: ReferenceProfile, data: Any, result: DriftResult | None = None) -> Any:
    """One panel per feature (and the score): reference vs current share per reference bin."""
    import matplotlib.pyplot as plt

    profiles = {k: v for k, v in reference.profiles().items() if k in data}
    cols = 4
    rows = -(-len(profiles) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.8 * rows), squeeze=False)
    for ax, (name, profile) in zip(axes.ravel(), profiles.items(), strict=False):
        values = np.asarray(data[name])
        if profile.kind == "category" and values.dtype != bool:
            values = category_text(values)
        cur = profile.bin_counts(values).astype(float)
        ref = np.asarray(profile.counts, dtype=float)
        x = np.arange(len(ref))
        ax.bar(x - 0.2, ref / ref.sum(), width=0.4, label="reference", color="#8c8c8c")
        ax.bar(x + 0.2, cur / max(cur.sum(), 1), width=0.4, label="current", color="#d95f02")
        labels = profile.categories if profile.kind == "category" else [f"b{i}" for i in x]
        ax.set_xticks(x, labels, rotation=60 if profile.kind == "category" else 0, fontsize=7)
        title = name
        if result is not None:
            f = result.get(name)
            title += f"  PSI {f.psi:.3f}" + ("  DRIFT" if f.drifted else "")
        ax.set_title(title, fontsize=9, color="#b00" if result is not None and result.get(name).drifted else "k")
    for ax in axes.ravel()[len(profiles):]:
        ax.axis("off")
    axes.ravel()[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_drift_over_time(table: Any, features: list[str] | None = None) -> Any:
    """PSI per window (from :func:`~shipml.monitoring.drift.drift_over_windows`), with the 0.1 / 0.25 bands."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 3.5))
    for name, part in table.groupby("feature", sort=False):
        if features and name not in features:
            continue
        ax.plot(part["window"], part["psi"], marker="o", ms=3, label=name)
        hits = part[part["drifted"]]
        ax.scatter(hits["window"], hits["psi"], s=40, facecolors="none", edgecolors="red")
    for level, style in zip(PSI_BANDS, (":", "--"), strict=True):
        ax.axhline(level, color="grey", ls=style, lw=1)
    ax.set_xlabel("window")
    ax.set_ylabel("PSI")
    ax.set_title("drift over time (red circles: flagged)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def drift_report_html(reference: ReferenceProfile, data: Any, result: DriftResult, over_time: Any = None,
                      title: str = "Drift report") -> str:
    """The report as one HTML string."""
    rows = []
    for f in result.features:
        style = ' style="background:#fdd"' if f.drifted else ""
        rows.append(f"<tr{style}><td>{html.escape(f.feature)}</td><td>{f.kind}</td><td>{f.rows:,}</td>"
                    f"<td>{f.psi:.4f}</td><td>{f.band}</td><td>{f.test}</td><td>{f.statistic:.4g}</td>"
                    f"<td>{f.p_value:.3g}</td><td>{'yes' if f.drifted else 'no'}</td></tr>")
    verdict = (f"drift in {', '.join(map(html.escape, result.drifted))}" if result.flagged
               else "no drift detected")
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>Model {html.escape(reference.model)} v{reference.version}; reference: {reference.rows:,} held-out rows; "
        f"current: {result.rows:,} rows. <b>{verdict}</b> (a feature drifts when its test's p-value is below "
        f"{result.alpha:g}/{len(result.features)} and its PSI is at least {result.min_psi:g}; PSI bands: "
        f"&lt; {PSI_BANDS[0]} stable, {PSI_BANDS[0]}-{PSI_BANDS[1]} moderate, &gt; {PSI_BANDS[1]} major).</p>",
        "<table><tr><th>feature</th><th>kind</th><th>rows</th><th>PSI</th><th>band</th><th>test</th>"
        "<th>statistic</th><th>p-value</th><th>drifted</th></tr>", *rows, "</table>",
        "<h2>Reference vs current</h2>",
        f"<img alt='histograms' src='data:image/png;base64,{_png(plot_histograms(reference, data, result))}'>",
    ]
    if over_time is not None:
        parts += ["<h2>Drift over time</h2>",
                  f"<img alt='drift over time' src='data:image/png;base64,{_png(plot_drift_over_time(over_time))}'>"]
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(path: str | Path, html_text: str) -> Path:
    """Write the report atomically (a half-written report is never left behind)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(html_text)
    tmp.replace(path)
    return path

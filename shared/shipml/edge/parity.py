"""Parity: how closely one model's probabilities reproduce another's on the same rows.

The export measures the ONNX graph against scikit-learn, the quantizer the int8 graph against both;
both need only numpy, so this module is shared by :mod:`shipml.edge.export` and
:mod:`shipml.edge.quantize` without either importing the other's heavy dependencies.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from shipml.errors import ShipmlError

DEFAULT_TOLERANCE = 1e-5


class ParityError(ShipmlError):
    """The ONNX graph does not reproduce the scikit-learn pipeline within tolerance."""


@dataclass
class Parity:
    """How closely the ONNX graph reproduces scikit-learn on the same rows."""

    rows: int
    max_abs_diff: float  # max over rows and classes of |p_onnx - p_sklearn|
    mean_abs_diff: float
    label_agreement: float  # share of rows with the same predicted class
    label_flips: int
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= self.tolerance and self.label_flips == 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        return (f"max |Δp| {self.max_abs_diff:.2e} (tolerance {self.tolerance:.0e}), "
                f"labels agree on {self.label_agreement:.4%} of {self.rows:,} held-out rows "
                f"({self.label_flips} flips)")


# ---- parity --------------------------------------------------------------------------------------

def measure_parity(reference: np.ndarray, candidate: np.ndarray, tolerance: float = DEFAULT_TOLERANCE) -> Parity:
    """Compare two (rows, classes) probability arrays."""
    reference, candidate = np.asarray(reference, np.float64), np.asarray(candidate, np.float64)
    if reference.shape != candidate.shape:
        raise ShipmlError(f"cannot compare probabilities of shape {reference.shape} and {candidate.shape}")
    diff = np.abs(reference - candidate)
    same = reference.argmax(axis=1) == candidate.argmax(axis=1)
    return Parity(rows=len(reference), max_abs_diff=float(diff.max(initial=0.0)),
                  mean_abs_diff=float(diff.mean()) if diff.size else 0.0,
                  label_agreement=float(same.mean()) if len(same) else 1.0,
                  label_flips=int((~same).sum()), tolerance=float(tolerance))

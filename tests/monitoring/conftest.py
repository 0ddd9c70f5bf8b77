"""Fixtures of the monitoring tests: the lr bundle's reference profile and logged-looking frames."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def reference(lr_bundle):
    from shipml.monitoring.reference import load_reference

    return load_reference(lr_bundle)


@pytest.fixture(scope="session")
def lr_predictor(lr_bundle):
    from shipml.predictor import load_predictor

    return load_predictor(lr_bundle)


def scored(predictor, frame):
    """``frame`` with the ``score`` column the log would hold."""
    return frame.assign(score=predictor.predict_proba(frame[predictor.schema.names])[:, 1])

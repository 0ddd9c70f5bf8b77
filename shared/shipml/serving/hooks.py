"""Where other parts plug into the server: extensions, and the one place a completed prediction is published.

An **extension** is any object with some of these (all optional):

* ``name`` — its key in ``app.state.extensions``;
* ``install(app)`` — called by :func:`~shipml.serving.app.create_app` before the app starts: add
  middleware, routes or exception handlers (e.g. API keys, rate limits, an admin router);
* ``async startup(app)`` / ``async shutdown(app)`` — called by the lifespan, after the repository is
  open / before it is closed (start a writer thread, flush a log);
* ``on_prediction(event)`` — called once per scored request with a :class:`CompletedPrediction`.
  It runs **on the request's path**: put the event on a queue and return (a prediction log is written
  by a thread of its own, never in the request). An exception here is logged, never sent to the client.

``create_app(settings, extensions=[...])`` takes them explicitly; without the argument
:func:`default_extensions` decides from the settings (one line per concern: monitoring, security, rollouts).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from shipml.serving.repository import ServedModel
    from shipml.settings import Settings

log = logging.getLogger("shipml.serving")


@dataclass(frozen=True, slots=True)
class CompletedPrediction:
    """One scored request, as the prediction routes hand it to ``on_prediction`` hooks.

    ``features`` are the validated columns (feature name to one value per row), ``scores`` the class
    probabilities (rows x classes, in ``class_names`` order), ``labels`` the predicted class labels.
    """

    request_id: str
    route: str
    model: str
    version: int
    backend: str
    features: Mapping[str, Sequence[Any]]
    scores: np.ndarray
    labels: list[Any]
    class_names: list[str]

    @property
    def n_rows(self) -> int:
        return len(self.labels)


class PredictionHooks:
    """The ``on_prediction`` callables of the installed extensions (``app.state.prediction_hooks``)."""

    def __init__(self) -> None:
        self.callbacks: list[Any] = []

    def __bool__(self) -> bool:
        return bool(self.callbacks)

    def publish(self, request_id: str, route: str, served: ServedModel, features: Mapping[str, Sequence[Any]],
                scores: np.ndarray, index: Sequence[int]) -> None:
        """Build the event once and hand it to every hook (nothing is built when there is no hook)."""
        if not self.callbacks:
            return
        labels = [served.class_labels[int(i)] for i in index]
        event = CompletedPrediction(request_id, route, served.name, served.version, served.backend, features,
                                    np.asarray(scores).reshape(len(labels), -1), labels, served.class_names)
        for callback in self.callbacks:
            try:
                callback(event)
            except Exception:  # a monitoring bug must not fail a prediction the client already has
                log.exception("prediction hook failed", extra={"hook": getattr(callback, "__qualname__", "?")})


def default_extensions(settings: Settings) -> list[Any]:
    """The extensions ``create_app`` installs when none are given (decided from ``settings``)."""
    extensions: list[Any] = []
    # one line per concern (monitoring: issue 15; security: issue 17)
    if getattr(settings, "monitor", False):
        from shipml.monitoring.hook import MonitoringExtension

        extensions.append(MonitoringExtension(settings))
    from shipml.serving.rollout import RolloutExtension  # canary and shadow releases (issue 16)

    extensions.append(RolloutExtension(settings))
    return extensions
